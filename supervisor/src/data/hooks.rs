//! Merging the results of one hook event across plugins (docs/protocol.md §6.2).
//!
//! Hooks run one after another, highest priority first. Fields that add context are
//! concatenated in that order, separated by a blank line; for every other field the
//! first hook that sets it wins. A plugin whose operator disabled prompt injection
//! keeps only `modelOverride` and `providerOverride` from the legacy
//! `before_agent_start` (its prompt hooks were already refused at registration).

use serde::Serialize;
use serde_json::{Map, Value};

use outpost_protocol::ErrorObject;

/// Fields whose values from several hooks are joined rather than overridden.
const CONCATENATED: &[&str] = &[
    "prependContext",
    "prependSystemContext",
    "appendSystemContext",
];

/// Fields of `before_agent_start` kept when prompt injection is disabled.
const LEGACY_KEPT_WITHOUT_INJECTION: &[&str] = &["modelOverride", "providerOverride"];

/// What running one event's hooks came to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// The merged result.
    pub result: Map<String, Value>,
    /// Each hook that ran, in order.
    pub runs: Vec<HookRun>,
}

/// One plugin's hook run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// The plugin.
    pub plugin: String,
    /// Its priority.
    pub priority: i32,
    /// What it returned, or why it failed (a failed hook does not stop the others).
    #[serde(flatten)]
    pub outcome: HookRunOutcome,
}

/// A hook's result or error.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HookRunOutcome {
    /// Its result (`null` or an object).
    Result(Option<Map<String, Value>>),
    /// Its error.
    Error(ErrorObject),
}

impl HookOutcome {
    /// Adds one hook's run, in execution order.
    pub(crate) fn push(&mut self, event: &str, allow_prompt_injection: bool, run: HookRun) {
        if let HookRunOutcome::Result(Some(fields)) = &run.outcome {
            for (name, value) in fields {
                if event == "before_agent_start"
                    && !allow_prompt_injection
                    && !LEGACY_KEPT_WITHOUT_INJECTION.contains(&name.as_str())
                {
                    continue;
                }
                merge_field(&mut self.result, name, value);
            }
        }
        self.runs.push(run);
    }
}

fn merge_field(result: &mut Map<String, Value>, name: &str, value: &Value) {
    if value.is_null() {
        return;
    }
    match result.get_mut(name) {
        None => {
            result.insert(name.to_owned(), value.clone());
        }
        Some(Value::String(existing)) if CONCATENATED.contains(&name) => {
            if let Value::String(more) = value
                && !more.is_empty()
            {
                if !existing.is_empty() {
                    existing.push_str("\n\n");
                }
                existing.push_str(more);
            }
        }
        // The first hook that set it wins.
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(plugin: &str, result: Value) -> HookRun {
        HookRun {
            plugin: plugin.into(),
            priority: 0,
            outcome: HookRunOutcome::Result(serde_json::from_value(result).unwrap()),
        }
    }

    #[test]
    fn context_is_concatenated_in_order_and_other_fields_first_wins() {
        let mut outcome = HookOutcome::default();
        outcome.push(
            "before_prompt_build",
            true,
            run(
                "high",
                json!({"prependContext": "A", "systemPrompt": "first"}),
            ),
        );
        outcome.push("before_prompt_build", true, run("mid", json!(null)));
        outcome.push(
            "before_prompt_build",
            true,
            HookRun {
                plugin: "broken".into(),
                priority: 0,
                outcome: HookRunOutcome::Error(ErrorObject::new(
                    outpost_protocol::ErrorCode::HandlerFailed,
                    "boom",
                )),
            },
        );
        outcome.push("before_prompt_build", true, run("low", json!({"prependContext": "B", "systemPrompt": "second", "appendSystemContext": "C"})));
        assert_eq!(
            Value::Object(outcome.result),
            json!({"prependContext": "A\n\nB", "systemPrompt": "first", "appendSystemContext": "C"})
        );
        assert_eq!(outcome.runs.len(), 4);
    }

    #[test]
    fn legacy_prompt_fields_are_dropped_without_prompt_injection() {
        let mut outcome = HookOutcome::default();
        outcome.push(
            "before_agent_start",
            false,
            run("p", json!({"prependContext": "sneaky", "systemPrompt": "x", "modelOverride": "m", "providerOverride": "p"})),
        );
        assert_eq!(
            Value::Object(outcome.result),
            json!({"modelOverride": "m", "providerOverride": "p"})
        );
    }
}
