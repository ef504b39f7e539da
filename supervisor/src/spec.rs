//! What the data plane needs to know about one plugin: the output of the control plane.

use std::collections::{BTreeMap, BTreeSet};

use outpost_protocol::ManifestField;
use serde_json::{Map, Value};

use crate::launch::LaunchSpec;

/// One plugin the supervisor runs.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// The manifest id.
    pub id: String,
    /// How to start it.
    pub launch: LaunchSpec,
    /// The plugin's config, validated, with schema defaults applied.
    pub config: Map<String, Value>,
    /// What the manifest declares, for the coverage rule.
    pub declarations: Declarations,
    /// `plugins.entries.<id>.hooks.allowPromptInjection` (default true).
    pub allow_prompt_injection: bool,
    /// Gateway methods this plugin may call through `host/callMethod`: exact names or
    /// `prefix.*` patterns. Empty: none.
    pub host_methods: Vec<String>,
}

/// The ids a manifest declares per field (`contracts.tools`, `providers`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declarations {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Declarations {
    /// Declarations read from a manifest object.
    pub fn from_manifest(manifest: &Value) -> Self {
        let mut fields = BTreeMap::new();
        let mut collect = |name: String, value: Option<&Value>| {
            let ids: BTreeSet<String> = value
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                fields.insert(name, ids);
            }
        };
        for key in ["providers", "channels", "cliBackends"] {
            collect(key.to_owned(), manifest.get(key));
        }
        if let Some(Value::Object(contracts)) = manifest.get("contracts") {
            for (key, value) in contracts {
                collect(format!("contracts.{key}"), Some(value));
            }
        }
        Self { fields }
    }

    /// Adds `id` to `field`.
    #[must_use]
    pub fn with(mut self, field: ManifestField, id: &str) -> Self {
        self.fields
            .entry(field.to_string())
            .or_default()
            .insert(id.to_owned());
        self
    }

    /// Whether the manifest declares `id` in `field`.
    pub fn declares(&self, field: ManifestField, id: &str) -> bool {
        self.fields
            .get(&field.to_string())
            .is_some_and(|ids| ids.contains(id))
    }

    /// Every declared tool name (`contracts.tools`).
    pub fn tools(&self) -> impl Iterator<Item = &str> {
        self.fields
            .get("contracts.tools")
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Whether `method` matches one of `patterns` (exact, or `prefix.*`).
pub(crate) fn method_allowed(patterns: &[String], method: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix(".*") {
            Some(prefix) => method
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => pattern == "*" || pattern == method,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn declarations_come_from_top_level_lists_and_contracts() {
        let declarations = Declarations::from_manifest(&json!({
            "providers": ["acme"],
            "channels": ["acmechat"],
            "contracts": {"tools": ["a", "b"], "speechProviders": ["voice"], "gatewayMethodDispatch": "x"}
        }));
        assert!(declarations.declares(ManifestField::TopLevel("providers"), "acme"));
        assert!(declarations.declares(ManifestField::TopLevel("channels"), "acmechat"));
        assert!(declarations.declares(ManifestField::Contracts("tools"), "b"));
        assert!(declarations.declares(ManifestField::Contracts("speechProviders"), "voice"));
        assert!(!declarations.declares(ManifestField::Contracts("tools"), "c"));
        assert_eq!(declarations.tools().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn host_method_patterns() {
        let patterns = vec!["notes.*".to_owned(), "clock.now".to_owned()];
        assert!(method_allowed(&patterns, "notes.count"));
        assert!(method_allowed(&patterns, "notes.a.b"));
        assert!(!method_allowed(&patterns, "notesx.count"));
        assert!(method_allowed(&patterns, "clock.now"));
        assert!(!method_allowed(&patterns, "clock.later"));
        assert!(method_allowed(&["*".to_owned()], "anything"));
        assert!(!method_allowed(&[], "anything"));
    }
}
