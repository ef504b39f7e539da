//! What the data plane needs to know about one plugin: the output of the control plane.

use std::collections::{BTreeMap, BTreeSet};

use outpost_protocol::{ManifestField, ProviderCapability, RegistrationKind};
use serde_json::{Map, Value};

use crate::launch::LaunchSpec;

/// One plugin the supervisor runs: what the control plane decided, and all the data
/// plane knows about it.
///
/// Build one with [`PluginSpec::new`] and the `with_` methods (the control plane builds
/// them from the config: [`Inventory::plugin_specs`](crate::control::Inventory::plugin_specs)).
/// Two specs are equal when every field is: that is how
/// [`Supervisor::apply`](crate::Supervisor::apply) tells an unchanged plugin.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PluginSpec {
    /// The manifest id.
    pub id: String,
    /// How to start it.
    pub launch: LaunchSpec,
    /// The plugin's config, validated, with schema defaults applied.
    pub config: Map<String, Value>,
    /// The `channels.<id>` config of each channel its manifest declares that the
    /// operator configured, by channel id (sent in `initialize` and `host/getConfig`).
    pub channels: Map<String, Value>,
    /// What the manifest declares, for the coverage rule.
    pub declarations: Declarations,
    /// `plugins.entries.<id>.hooks.allowPromptInjection` (default true).
    pub allow_prompt_injection: bool,
    /// Gateway methods this plugin may call through `host/callMethod`: exact names or
    /// `prefix.*` patterns. Empty: none.
    pub host_methods: Vec<String>,
    /// `outpost.plugins.<id>.allowCatchAllRoute` (default false): whether the plugin
    /// may register a prefix route on `/`, which receives every request no other
    /// route takes.
    pub allow_catch_all_route: bool,
    /// Found among the bundled plugins (`outpost.bundledDir`): bundled plugins have
    /// conversation access unless the operator refuses it.
    pub bundled: bool,
    /// `plugins.entries.<id>.hooks`, but `allowPromptInjection`.
    pub hooks: HookPolicy,
}

/// The operator's hook policy for one plugin (`plugins.entries.<id>.hooks`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookPolicy {
    /// `hooks.allowConversationAccess`; `None` when not set: a bundled plugin has it,
    /// any other plugin does not.
    pub allow_conversation_access: Option<bool>,
    /// `hooks.timeoutMs`: each hook handler's budget, over the one it registered.
    pub timeout_ms: Option<u64>,
    /// `hooks.timeouts.<event>`: per event, over `timeout_ms`.
    pub timeouts: BTreeMap<String, u64>,
}

impl HookPolicy {
    /// Whether the plugin may register conversation hooks and receive conversation
    /// content (`bundled`: whether the plugin is bundled).
    pub fn conversation_access(&self, bundled: bool) -> bool {
        if bundled {
            self.allow_conversation_access != Some(false)
        } else {
            self.allow_conversation_access == Some(true)
        }
    }
}

impl PluginSpec {
    /// The plugin `id`, started as `launch` says, with an empty config, no manifest
    /// declarations, prompt injection allowed and no host methods granted.
    pub fn new(id: impl Into<String>, launch: LaunchSpec) -> Self {
        Self {
            id: id.into(),
            launch,
            config: Map::new(),
            channels: Map::new(),
            declarations: Declarations::default(),
            allow_prompt_injection: true,
            host_methods: Vec::new(),
            allow_catch_all_route: false,
            bundled: false,
            hooks: HookPolicy::default(),
        }
    }

    /// Whether it is a bundled plugin.
    #[must_use]
    pub fn with_bundled(mut self, bundled: bool) -> Self {
        self.bundled = bundled;
        self
    }

    /// Its hook policy (`hooks.allowConversationAccess`, `hooks.timeoutMs`,
    /// `hooks.timeouts`).
    #[must_use]
    pub fn with_hook_policy(mut self, hooks: HookPolicy) -> Self {
        self.hooks = hooks;
        self
    }

    /// The plugin's config (already validated against its schema).
    #[must_use]
    pub fn with_config(mut self, config: Map<String, Value>) -> Self {
        self.config = config;
        self
    }

    /// The config of the channels it declares, by channel id.
    #[must_use]
    pub fn with_channels(mut self, channels: Map<String, Value>) -> Self {
        self.channels = channels;
        self
    }

    /// What its manifest declares, for the coverage rule.
    #[must_use]
    pub fn with_declarations(mut self, declarations: Declarations) -> Self {
        self.declarations = declarations;
        self
    }

    /// `hooks.allowPromptInjection`.
    #[must_use]
    pub fn with_prompt_injection(mut self, allowed: bool) -> Self {
        self.allow_prompt_injection = allowed;
        self
    }

    /// Whether it may register a prefix route on `/` (a catch-all).
    #[must_use]
    pub fn with_catch_all_route(mut self, allowed: bool) -> Self {
        self.allow_catch_all_route = allowed;
        self
    }

    /// The gateway methods it may call through `host/callMethod`: exact names,
    /// `prefix.*` patterns or `*`.
    #[must_use]
    pub fn with_host_methods(
        mut self,
        methods: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.host_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this plugin's manifest claims the registration `kind`/`key`, judged
    /// without running it: tools, channels and providers (`<capability>:<id>`) must be
    /// declared in the manifest, and a gateway method lives in the plugin's namespace.
    /// `None` for kinds a manifest does not declare (commands, hooks, routes...), which
    /// any plugin may register.
    pub fn claims(&self, kind: RegistrationKind, key: &str) -> Option<bool> {
        let declarations = &self.declarations;
        Some(match kind {
            RegistrationKind::Tool => declarations.declares(ManifestField::Contracts("tools"), key),
            RegistrationKind::Channel => {
                declarations.declares(ManifestField::TopLevel("channels"), key)
            }
            RegistrationKind::Provider => key.split_once(':').is_some_and(|(capability, id)| {
                ProviderCapability::ALL.iter().any(|c| {
                    c.as_str() == capability && declarations.declares(c.manifest_field(), id)
                })
            }),
            RegistrationKind::GatewayMethod => key
                .strip_prefix(self.id.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
            _ => return None,
        })
    }
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
    }

    #[test]
    fn what_a_manifest_claims() {
        let spec = |manifest: Value| {
            PluginSpec::new("acme", LaunchSpec::new("/bin/true", "/"))
                .with_declarations(Declarations::from_manifest(&manifest))
        };
        let acme = spec(json!({
            "channels": ["acmechat"],
            "contracts": {"tools": ["search"], "embeddingProviders": ["vec"]},
        }));
        let cases = [
            (RegistrationKind::Tool, "search", Some(true)),
            (RegistrationKind::Tool, "other", Some(false)),
            (RegistrationKind::Channel, "acmechat", Some(true)),
            (RegistrationKind::Provider, "embedding:vec", Some(true)),
            (RegistrationKind::Provider, "speech:vec", Some(false)),
            (RegistrationKind::Provider, "vec", Some(false)),
            (RegistrationKind::GatewayMethod, "acme.status", Some(true)),
            (RegistrationKind::GatewayMethod, "acmex.status", Some(false)),
            (RegistrationKind::Command, "anything", None),
            (RegistrationKind::Hook, "before_prompt_build", None),
        ];
        for (kind, key, expected) in cases {
            assert_eq!(acme.claims(kind, key), expected, "{kind:?} {key}");
        }
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
