//! How the hooks of one event run and how their results merge (docs/protocol.md §6.2),
//! as OpenClaw's hook runner does it.
//!
//! # Theory of operation
//!
//! Every event has a [`Rule`] in one table ([`RULES`]): its kind, what ends its chain,
//! which result fields rewrite the payload later handlers see, whether a failing
//! handler fails closed, and its default budget. The router ([`super::route`]) runs the
//! handlers of an event by priority (higher first; ties in registration order, plugins
//! in precedence order) and feeds each run to [`HookOutcome::push`], which merges it
//! and says whether the chain stops:
//!
//! - **observe**: every handler at once; results are recorded, never merged.
//! - **modify**: one after another; each handler gets the payload as the handlers
//!   before it changed it (the fields listed in `rewrites`); results merge field by
//!   field ([`MERGES`]); a terminal result (`{block: true}` for `before_tool_call`,
//!   `{cancel: true}` for `message_sending`...) ends the chain.
//! - **claim**: one after another; the first `{handled: true}` is the result and ends
//!   the chain; other results are ignored.
//!
//! A handler that fails or runs out of time is skipped and logged, and the chain goes
//! on, except for the gates OpenClaw fails closed (`before_tool_call`,
//! `before_agent_run`, `before_install`): there a failure is a block.
//!
//! # Caveats
//!
//! OpenClaw's per-event merges keep only the fields each event documents; this merge
//! keeps every field, merged as [`MERGES`] says (first one wins when not listed).

use serde::Serialize;
use serde_json::{Map, Value, json};

use outpost_protocol::{ErrorObject, HookRegistration};

use crate::shown::for_log;
use crate::spec::HookPolicy;

/// How an event's handlers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// All at once; results ignored.
    Observe,
    /// In order; results merged; a terminal result stops the chain.
    Modify,
    /// In order; the first `{handled: true}` wins.
    Claim,
}

/// A result that ends a modifying chain.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    /// The field is `true` (`block`, `cancel`).
    True(&'static str),
    /// The field has this string value (`outcome: "block"`).
    Equals(&'static str, &'static str),
}

impl Stop {
    fn reached(self, result: &Map<String, Value>) -> bool {
        match self {
            Self::True(field) => result.get(field) == Some(&Value::Bool(true)),
            Self::Equals(field, value) => result.get(field).and_then(Value::as_str) == Some(value),
        }
    }

    /// Sets the terminal value in a merged result, whatever earlier handlers set.
    fn mark(self, result: &mut Map<String, Value>) {
        match self {
            Self::True(field) => result.insert(field.to_owned(), Value::Bool(true)),
            Self::Equals(field, value) => result.insert(field.to_owned(), json!(value)),
        };
    }

    /// The result a failed handler of a fail-closed gate comes to.
    fn failure(self, why: &str) -> Map<String, Value> {
        let value = match self {
            Self::True(field) => json!({ field: true, format!("{field}Reason"): why }),
            Self::Equals(field, value) => json!({ field: value, "reason": why }),
        };
        match value {
            Value::Object(map) => map,
            _ => unreachable!("built as an object"),
        }
    }
}

/// One event's rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    pub(crate) kind: Kind,
    /// What ends a modifying chain early.
    stop: Option<Stop>,
    /// Result fields that replace the payload field of the same name for the handlers
    /// after (a rewritten tool call's `params`, a message's `content`...).
    rewrites: &'static [&'static str],
    /// A handler that fails or times out blocks (the `stop` result) instead of being
    /// skipped.
    fail_closed: bool,
    /// The budget of each handler when neither it nor the operator sets one.
    default_timeout_ms: Option<u64>,
}

const fn observe(default_timeout_ms: Option<u64>) -> Rule {
    Rule {
        kind: Kind::Observe,
        stop: None,
        rewrites: &[],
        fail_closed: false,
        default_timeout_ms,
    }
}

const fn modify(default_timeout_ms: Option<u64>) -> Rule {
    Rule {
        kind: Kind::Modify,
        stop: None,
        rewrites: &[],
        fail_closed: false,
        default_timeout_ms,
    }
}

const fn claim() -> Rule {
    Rule {
        kind: Kind::Claim,
        stop: None,
        rewrites: &[],
        fail_closed: false,
        default_timeout_ms: None,
    }
}

const fn gate(stop: Stop, rewrites: &'static [&'static str], fail_closed: bool) -> Rule {
    Rule {
        kind: Kind::Modify,
        stop: Some(stop),
        rewrites,
        fail_closed,
        default_timeout_ms: Some(15_000),
    }
}

const S15: Option<u64> = Some(15_000);
const S30: Option<u64> = Some(30_000);

/// Every typed hook event and how it runs (OpenClaw's hook catalog).
pub(crate) const RULES: &[(&str, Rule)] = &[
    ("before_model_resolve", modify(None)),
    ("agent_turn_prepare", modify(None)),
    ("before_prompt_build", modify(S15)),
    ("before_agent_start", modify(None)),
    (
        "before_agent_run",
        gate(Stop::Equals("outcome", "block"), &[], true),
    ),
    ("before_agent_reply", claim()),
    ("before_agent_finalize", modify(S15)),
    ("agent_end", observe(S30)),
    ("heartbeat_prompt_contribution", modify(None)),
    ("model_call_started", observe(None)),
    ("model_call_ended", observe(None)),
    ("llm_input", observe(None)),
    ("llm_output", observe(None)),
    (
        "before_tool_call",
        gate(Stop::True("block"), &["params"], true),
    ),
    ("after_tool_call", observe(None)),
    ("resolve_exec_env", modify(S15)),
    (
        "tool_result_persist",
        gate(Stop::True("block"), &["message"], false),
    ),
    (
        "before_message_write",
        gate(Stop::True("block"), &["message"], false),
    ),
    ("inbound_claim", claim()),
    ("channel_pairing_requested", observe(Some(2_000))),
    ("message_received", observe(None)),
    (
        "message_sending",
        gate(Stop::True("cancel"), &["content"], false),
    ),
    (
        "reply_payload_sending",
        gate(Stop::True("cancel"), &["payload"], false),
    ),
    ("message_sent", observe(None)),
    ("before_dispatch", claim()),
    ("reply_dispatch", claim()),
    ("session_start", observe(None)),
    ("session_end", observe(None)),
    ("before_compaction", observe(S30)),
    ("after_compaction", observe(S30)),
    ("before_reset", observe(None)),
    ("subagent_delivery_target", modify(None)),
    ("subagent_spawned", observe(None)),
    ("subagent_progress", observe(None)),
    ("subagent_ended", observe(None)),
    ("gateway_start", observe(None)),
    ("gateway_stop", observe(Some(5_000))),
    ("cron_reconciled", observe(None)),
    ("cron_changed", observe(None)),
    ("before_install", gate(Stop::True("block"), &[], true)),
    ("skill_proposal_evaluate", observe(Some(120_000))),
    ("skill_proposal_changed", observe(S30)),
    ("skill_changed", observe(S30)),
];

/// The rule of `event`; an event missing from the table is observed.
pub(crate) fn rule(event: &str) -> Rule {
    RULES
        .iter()
        .find(|(name, _)| *name == event)
        .map_or(observe(None), |(_, rule)| *rule)
}

/// How one result field merges with the same field of earlier handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    /// Strings joined in execution order, a blank line between.
    Concat,
    /// Lists of tool names: only the names in every list (`*` allows all).
    Intersect,
    /// Lists appended in execution order.
    Append,
    /// The last handler that sets it wins.
    Last,
    /// `true` once any handler says so.
    Sticky,
    /// The first handler that sets it wins (every field not listed).
    First,
}

/// Fields that do not merge first-one-wins.
const MERGES: &[(&str, Merge)] = &[
    ("prependContext", Merge::Concat),
    ("appendContext", Merge::Concat),
    ("prependSystemContext", Merge::Concat),
    ("appendSystemContext", Merge::Concat),
    ("toolsAllow", Merge::Intersect),
    ("findings", Merge::Append),
    ("params", Merge::Last),
    ("content", Merge::Last),
    ("payload", Merge::Last),
    ("message", Merge::Last),
    ("metadata", Merge::Last),
    ("blockReason", Merge::Last),
    ("cancelReason", Merge::Last),
    ("reason", Merge::Last),
    ("block", Merge::Sticky),
    ("cancel", Merge::Sticky),
];

/// Fields of `before_agent_start` kept when prompt injection is disabled.
const LEGACY_KEPT_WITHOUT_INJECTION: &[&str] = &["modelOverride", "providerOverride"];

/// Payload fields a plugin without conversation access never receives: the prompt,
/// the system prompt, the transcript and model output (what OpenClaw keeps for
/// conversation hooks).
pub(crate) const WITHHELD_WITHOUT_CONVERSATION_ACCESS: &[&str] = &[
    "prompt",
    "systemPrompt",
    "messages",
    "historyMessages",
    "assistantTexts",
    "lastAssistant",
];

/// Takes the conversation fields out of a payload.
pub(crate) fn withhold_conversation(payload: &mut Value) {
    if let Value::Object(fields) = payload {
        for field in WITHHELD_WITHOUT_CONVERSATION_ACCESS {
            fields.remove(*field);
        }
    }
}

/// Whether a handler runs for this payload: its `matcher` names the tool the payload's
/// `toolName` names (no matcher: every tool).
pub(crate) fn matches(hook: &HookRegistration, payload: &Value) -> bool {
    match &hook.matcher {
        None => true,
        Some(tools) => payload
            .get("toolName")
            .and_then(Value::as_str)
            .is_some_and(|tool| tools.iter().any(|t| t == tool)),
    }
}

/// A handler's budget in milliseconds: `hooks.timeouts.<event>`, else `hooks.timeoutMs`,
/// else the handler's own `timeoutMs`, else the event's default; `None`: the plugin's
/// call timeout.
pub(crate) fn budget_ms(rule: Rule, hook: &HookRegistration, policy: &HookPolicy) -> Option<u64> {
    policy
        .timeouts
        .get(&hook.event)
        .copied()
        .or(policy.timeout_ms)
        .or(hook.timeout_ms)
        .or(rule.default_timeout_ms)
}

/// What running one event's hooks came to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// The merged result: for a modifying event every handler's fields merged; for a
    /// claiming event the claim (`{}` when nobody claimed); for an observed event `{}`.
    pub result: Map<String, Value>,
    /// Each handler that ran, in order (observed events: in priority order).
    pub runs: Vec<HookRun>,
    /// The plugin whose result ended the chain early: a claim, a terminal result
    /// (`block`, `cancel`), or a fail-closed gate that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// One handler's run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// The plugin.
    pub plugin: String,
    /// The handler's id, when it has one (several handlers of one plugin for one event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its priority.
    pub priority: i32,
    /// What it returned, or why it failed (a failed hook does not stop the others,
    /// except a fail-closed gate).
    #[serde(flatten)]
    pub outcome: HookRunOutcome,
}

/// A hook's result or error.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HookRunOutcome {
    /// Its result (`null` or an object).
    Result(Option<Map<String, Value>>),
    /// Its error (a timeout is `-32001`).
    Error(ErrorObject),
}

impl HookOutcome {
    /// Adds one handler's run, in execution order: merges its result as `rule` says and
    /// applies its rewrites to `payload` (what the next handler gets). Returns whether
    /// the chain stops here.
    pub(crate) fn push(
        &mut self,
        event: &str,
        rule: Rule,
        payload: &mut Value,
        allow_prompt_injection: bool,
        run: HookRun,
    ) -> bool {
        let mut stop = false;
        match (&run.outcome, rule.kind) {
            (_, Kind::Observe) | (HookRunOutcome::Result(None), _) => {}
            (HookRunOutcome::Error(error), _) => {
                tracing::warn!(plugin = %run.plugin, event, code = ?error.code, "hook handler skipped: {}", for_log(&error.message));
                if rule.fail_closed
                    && let Some(terminal) = rule.stop
                {
                    self.result = terminal.failure(&format!(
                        "the `{event}` hook of plugin `{}` failed ({}), so it fails closed",
                        run.plugin, error.message
                    ));
                    self.decided_by = Some(run.plugin.clone());
                    stop = true;
                }
            }
            (HookRunOutcome::Result(Some(fields)), Kind::Claim) => {
                if fields.get("handled") == Some(&Value::Bool(true)) {
                    self.result.clone_from(fields);
                    self.decided_by = Some(run.plugin.clone());
                    stop = true;
                }
            }
            (HookRunOutcome::Result(Some(fields)), Kind::Modify) => {
                for (name, value) in fields {
                    if event == "before_agent_start"
                        && !allow_prompt_injection
                        && !LEGACY_KEPT_WITHOUT_INJECTION.contains(&name.as_str())
                    {
                        continue;
                    }
                    merge_field(&mut self.result, name, value);
                    if rule.rewrites.contains(&name.as_str())
                        && !value.is_null()
                        && let Value::Object(payload) = payload
                    {
                        payload.insert(name.clone(), value.clone());
                    }
                }
                // This handler's own answer decides: an earlier `outcome: "pass"` must
                // not hide a later block in the merged result.
                if let Some(terminal) = rule.stop
                    && terminal.reached(fields)
                {
                    terminal.mark(&mut self.result);
                    self.decided_by = Some(run.plugin.clone());
                    stop = true;
                }
            }
        }
        self.runs.push(run);
        stop
    }
}

fn merge_field(result: &mut Map<String, Value>, name: &str, value: &Value) {
    if value.is_null() {
        return;
    }
    let merge = MERGES
        .iter()
        .find(|(field, _)| *field == name)
        .map_or(Merge::First, |(_, merge)| *merge);
    let Some(existing) = result.get_mut(name) else {
        result.insert(name.to_owned(), value.clone());
        return;
    };
    match (merge, existing, value) {
        (Merge::Concat, Value::String(existing), Value::String(more)) if !more.is_empty() => {
            if !existing.is_empty() {
                existing.push_str("\n\n");
            }
            existing.push_str(more);
        }
        (Merge::Intersect, existing @ Value::Array(_), Value::Array(more)) => {
            let Value::Array(have) = &*existing else {
                unreachable!("matched as an array")
            };
            let everything = |list: &[Value]| list.iter().any(|v| v == "*");
            *existing = if everything(have) {
                Value::Array(more.clone())
            } else if everything(more) {
                return;
            } else {
                Value::Array(have.iter().filter(|v| more.contains(v)).cloned().collect())
            };
        }
        (Merge::Append, Value::Array(existing), Value::Array(more)) => {
            existing.extend(more.iter().cloned());
        }
        (Merge::Last, existing, value) => *existing = value.clone(),
        (Merge::Sticky, existing, Value::Bool(true)) => *existing = Value::Bool(true),
        // The first handler that set it wins (and mismatched types keep the first).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use outpost_protocol::{ErrorCode, HOOK_EVENTS};
    use serde_json::json;

    use super::*;

    fn run(plugin: &str, result: Value) -> HookRun {
        HookRun {
            plugin: plugin.into(),
            id: None,
            priority: 0,
            outcome: HookRunOutcome::Result(serde_json::from_value(result).unwrap()),
        }
    }

    fn failed(plugin: &str, code: ErrorCode) -> HookRun {
        HookRun {
            plugin: plugin.into(),
            id: None,
            priority: 0,
            outcome: HookRunOutcome::Error(ErrorObject::new(code, "boom")),
        }
    }

    /// Runs `runs` through one event's chain; returns the outcome, the payload the
    /// next handler would get, and how many runs were taken before the chain stopped.
    fn chain(event: &str, payload: Value, runs: Vec<HookRun>) -> (HookOutcome, Value, usize) {
        let mut outcome = HookOutcome::default();
        let mut payload = payload;
        let mut taken = 0;
        for run in runs {
            taken += 1;
            if outcome.push(event, rule(event), &mut payload, true, run) {
                break;
            }
        }
        (outcome, payload, taken)
    }

    #[test]
    fn every_hook_event_has_a_rule() {
        for event in HOOK_EVENTS {
            assert!(
                RULES.iter().any(|(name, _)| name == event),
                "{event} has no rule"
            );
        }
        assert_eq!(RULES.len(), HOOK_EVENTS.len());
    }

    #[test]
    fn the_table() {
        // (event, payload, results in order, merged result, payload after, runs taken,
        // decided by)
        type Case = (
            &'static str,
            Value,
            Vec<HookRun>,
            Value,
            Value,
            usize,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "before_prompt_build",
                json!({}),
                vec![
                    run(
                        "high",
                        json!({"prependContext": "A", "systemPrompt": "first", "appendContext": "x", "toolsAllow": ["read", "exec", "web"]}),
                    ),
                    run("mid", json!(null)),
                    failed("broken", ErrorCode::Timeout),
                    run(
                        "low",
                        json!({"prependContext": "B", "systemPrompt": "second", "appendContext": "y", "appendSystemContext": "C", "toolsAllow": ["web", "read"]}),
                    ),
                ],
                json!({"prependContext": "A\n\nB", "systemPrompt": "first", "appendContext": "x\n\ny", "appendSystemContext": "C", "toolsAllow": ["read", "web"]}),
                json!({}),
                4,
                None,
            ),
            (
                "before_tool_call",
                json!({"toolName": "exec", "params": {"cmd": "ls"}}),
                vec![
                    run("a", json!({"params": {"cmd": "ls -l"}})),
                    run("b", json!({"block": true, "blockReason": "no"})),
                    run("never", json!({"params": {"cmd": "rm"}})),
                ],
                json!({"params": {"cmd": "ls -l"}, "block": true, "blockReason": "no"}),
                json!({"toolName": "exec", "params": {"cmd": "ls -l"}}),
                2,
                Some("b"),
            ),
            (
                "before_tool_call",
                json!({"toolName": "exec"}),
                vec![failed("gate", ErrorCode::Timeout), run("never", json!({}))],
                json!({"block": true, "blockReason": "the `before_tool_call` hook of plugin `gate` failed (boom), so it fails closed"}),
                json!({"toolName": "exec"}),
                1,
                Some("gate"),
            ),
            (
                "message_sending",
                json!({"content": "hi"}),
                vec![
                    run("a", json!({"content": "hi!"})),
                    run("b", json!({"content": "HI!"})),
                    run("c", json!({"cancel": true, "cancelReason": "spam"})),
                    run("never", json!({"content": "?"})),
                ],
                json!({"content": "HI!", "cancel": true, "cancelReason": "spam"}),
                json!({"content": "HI!"}),
                3,
                Some("c"),
            ),
            (
                "message_sending",
                json!({"content": "hi"}),
                vec![
                    failed("slow", ErrorCode::Timeout),
                    run("b", json!({"content": "ok"})),
                ],
                json!({"content": "ok"}),
                json!({"content": "ok"}),
                2,
                None,
            ),
            (
                "inbound_claim",
                json!({}),
                vec![
                    run("a", json!({"handled": false, "note": "x"})),
                    failed("b", ErrorCode::HandlerFailed),
                    run("c", json!({"handled": true, "reply": {"text": "mine"}})),
                    run("never", json!({"handled": true})),
                ],
                json!({"handled": true, "reply": {"text": "mine"}}),
                json!({}),
                3,
                Some("c"),
            ),
            (
                "agent_end",
                json!({}),
                vec![
                    run("a", json!({"ignored": 1})),
                    run("b", json!({"ignored": 2})),
                ],
                json!({}),
                json!({}),
                2,
                None,
            ),
            (
                "before_agent_run",
                json!({}),
                vec![
                    run("a", json!({"outcome": "block", "reason": "policy"})),
                    run("never", json!({})),
                ],
                json!({"outcome": "block", "reason": "policy"}),
                json!({}),
                1,
                Some("a"),
            ),
            (
                // A pass first, then a block: the block holds.
                "before_agent_run",
                json!({}),
                vec![
                    run("a", json!({"outcome": "pass"})),
                    run("b", json!({"outcome": "block", "reason": "policy"})),
                    run("never", json!({})),
                ],
                json!({"outcome": "block", "reason": "policy"}),
                json!({}),
                2,
                Some("b"),
            ),
        ];
        for (event, payload, runs, result, payload_after, taken, decided_by) in cases {
            let (outcome, after, n) = chain(event, payload, runs);
            assert_eq!(Value::Object(outcome.result), result, "{event}");
            assert_eq!(after, payload_after, "{event}");
            assert_eq!(n, taken, "{event}");
            assert_eq!(outcome.runs.len(), taken, "{event}");
            assert_eq!(outcome.decided_by.as_deref(), decided_by, "{event}");
        }
    }

    #[test]
    fn legacy_prompt_fields_are_dropped_without_prompt_injection() {
        let mut outcome = HookOutcome::default();
        outcome.push(
            "before_agent_start",
            rule("before_agent_start"),
            &mut json!({}),
            false,
            run("p", json!({"prependContext": "sneaky", "systemPrompt": "x", "modelOverride": "m", "providerOverride": "p"})),
        );
        assert_eq!(
            Value::Object(outcome.result),
            json!({"modelOverride": "m", "providerOverride": "p"})
        );
    }

    #[test]
    fn matchers_budgets_and_withheld_fields() {
        let mut hook = HookRegistration::new("before_tool_call");
        assert!(matches(&hook, &json!({"toolName": "exec"})));
        hook.matcher = Some(vec!["exec".into()]);
        assert!(matches(&hook, &json!({"toolName": "exec"})));
        assert!(!matches(&hook, &json!({"toolName": "read"})));
        assert!(!matches(&hook, &json!({})));

        let rule = rule("before_tool_call");
        let mut policy = HookPolicy::default();
        assert_eq!(budget_ms(rule, &hook, &policy), Some(15_000));
        hook.timeout_ms = Some(100);
        assert_eq!(budget_ms(rule, &hook, &policy), Some(100));
        policy.timeout_ms = Some(200);
        assert_eq!(budget_ms(rule, &hook, &policy), Some(200));
        policy.timeouts.insert("before_tool_call".into(), 300);
        assert_eq!(budget_ms(rule, &hook, &policy), Some(300));
        assert_eq!(
            budget_ms(
                super::rule("inbound_claim"),
                &HookRegistration::new("inbound_claim"),
                &HookPolicy::default()
            ),
            None
        );

        let mut payload =
            json!({"prompt": "secret", "messages": [1], "toolName": "exec", "systemPrompt": "s"});
        withhold_conversation(&mut payload);
        assert_eq!(payload, json!({"toolName": "exec"}));
    }
}
