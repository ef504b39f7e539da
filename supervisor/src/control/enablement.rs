//! Enablement: whether a discovered plugin is on, and why.
//!
//! The rules, in the order OpenClaw applies them (the first that decides wins):
//!
//! 1. `plugins.enabled: false` disables every plugin;
//! 2. `plugins.deny` disables (deny always wins);
//! 3. `plugins.entries.<id>.enabled: false` disables; so does `channels.<channel>.enabled:
//!    false` for a channel the manifest declares, unless the entry says `enabled: true`;
//! 4. a workspace plugin is off unless allowlisted, enabled in its entry, or selected
//!    by `plugins.slots.contextEngine`;
//! 5. `plugins.slots.memory` / `plugins.slots.contextEngine` naming the plugin enables
//!    it (a slot can force-enable its plugin, even past the allowlist);
//! 6. a non-empty `plugins.allow` that does not list the plugin disables;
//! 7. `plugins.entries.<id>.enabled: true` enables; so does `plugins.allow` for a
//!    non-bundled plugin;
//! 8. a bundled plugin is on when a channel it declares is configured (`channels.<id>`
//!    present, `enabled` not false), OpenClaw's implicit channel enablement; otherwise
//!    a bundled plugin is on only when its manifest says `enabledByDefault` (or lists
//!    this platform in `enabledByDefaultOnPlatforms`);
//! 9. anything else (installed: config paths and the global directory) is on.
//!
//! Then the exclusive slots: an enabled plugin whose only kind is `memory` stays on only
//! if `plugins.slots.memory` selects it (default `memory-core`; `"none"` selects none);
//! likewise `context-engine` and `plugins.slots.contextEngine` (default: the built-in
//! `legacy` engine, so no plugin). A plugin declaring both kinds is never disabled by a
//! slot. Ids in `allow`, `deny` and `entries` are compared case-insensitively, slot ids
//! exactly, as in OpenClaw.

use serde::Serialize;

use super::config::{PluginsConfig, Slot, SlotKey, normalize_id};
use super::discovery::Origin;
use super::manifest::PluginKind;

/// The rule that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// `plugins.enabled: false`.
    PluginsDisabled,
    /// Listed in `plugins.deny`.
    Denylist,
    /// `plugins.entries.<id>.enabled: false`.
    DisabledInConfig,
    /// `channels.<id>.enabled: false` for a channel it declares.
    ChannelDisabled,
    /// A bundled plugin whose channel is configured under `channels.<id>`.
    ChannelConfigured,
    /// A workspace plugin not enabled explicitly.
    WorkspaceDefaultOff,
    /// Selected by `plugins.slots.memory`.
    SelectedMemorySlot,
    /// Selected by `plugins.slots.contextEngine`.
    SelectedContextEngineSlot,
    /// `plugins.allow` is set and does not list it.
    NotInAllowlist,
    /// `plugins.entries.<id>.enabled: true`.
    EnabledInConfig,
    /// Listed in `plugins.allow` (non-bundled).
    SelectedInAllowlist,
    /// A bundled plugin on by default.
    BundledDefaultOn,
    /// A bundled plugin off by default.
    BundledDefaultOff,
    /// An installed plugin (config path or global directory), on by default.
    InstalledDefaultOn,
    /// An exclusive slot selects another plugin (or none).
    SlotTaken,
    /// A higher-precedence copy of the same id won.
    Shadowed,
}

/// What one rule said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The rule did not apply; the next one is asked.
    Pass,
    /// The rule enabled the plugin.
    Enable,
    /// The rule disabled the plugin.
    Disable,
}

/// One rule consulted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The config key or rule (`plugins.deny`, `bundled default`...).
    pub rule: String,
    /// What it said.
    pub verdict: Verdict,
    /// Why, in words.
    pub detail: String,
}

/// Whether a plugin is enabled, the rule that decided, and every rule consulted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enablement {
    /// On or off.
    pub enabled: bool,
    /// The rule that decided.
    pub cause: Cause,
    /// The deciding rule's detail.
    pub reason: String,
    /// Every rule consulted, in order.
    pub trace: Vec<Step>,
}

impl Enablement {
    /// Off because a higher-precedence copy of the id won.
    pub(crate) fn shadowed(by: String) -> Self {
        Self {
            enabled: false,
            cause: Cause::Shadowed,
            reason: by.clone(),
            trace: vec![Step {
                rule: "discovery precedence".to_owned(),
                verdict: Verdict::Disable,
                detail: by,
            }],
        }
    }
}

/// What enablement needs to know about a plugin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub(crate) id: &'a str,
    pub(crate) origin: Origin,
    pub(crate) kind: &'a [PluginKind],
    pub(crate) default_on: bool,
    pub(crate) channel: ChannelSwitch<'a>,
}

/// What the `channels` block says about the channels a plugin declares; the `&str` is
/// the `channels.<key>` as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ChannelSwitch<'a> {
    /// No declared channel is configured.
    #[default]
    Unset,
    /// A declared channel is configured and not turned off.
    On(&'a str),
    /// Every configured channel it declares says `enabled: false`.
    Off(&'a str),
}

struct Trace {
    steps: Vec<Step>,
}

impl Trace {
    fn pass(&mut self, rule: impl Into<String>, detail: impl Into<String>) {
        self.steps.push(Step {
            rule: rule.into(),
            verdict: Verdict::Pass,
            detail: detail.into(),
        });
    }

    fn decide(
        mut self,
        enabled: bool,
        cause: Cause,
        rule: impl Into<String>,
        detail: impl Into<String>,
    ) -> Enablement {
        let detail = detail.into();
        self.steps.push(Step {
            rule: rule.into(),
            verdict: if enabled {
                Verdict::Enable
            } else {
                Verdict::Disable
            },
            detail: detail.clone(),
        });
        Enablement {
            enabled,
            cause,
            reason: detail,
            trace: self.steps,
        }
    }
}

/// Applies the rules to one plugin, slots included.
pub(crate) fn decide(subject: Subject<'_>, plugins: &PluginsConfig) -> Enablement {
    let decision = activation(subject, plugins);
    if decision.enabled {
        exclusive_slots(subject, plugins, decision)
    } else {
        decision
    }
}

fn activation(subject: Subject<'_>, plugins: &PluginsConfig) -> Enablement {
    let mut trace = Trace { steps: Vec::new() };
    let id = subject.id;
    let policy_id = normalize_id(id);
    if !plugins.enabled {
        return trace.decide(
            false,
            Cause::PluginsDisabled,
            "plugins.enabled",
            "plugins.enabled is false: every plugin is off",
        );
    }
    trace.pass("plugins.enabled", "plugins are enabled");
    if plugins.deny.contains(&policy_id) {
        return trace.decide(
            false,
            Cause::Denylist,
            "plugins.deny",
            "listed in plugins.deny",
        );
    }
    trace.pass("plugins.deny", "not listed");
    let entry = plugins.entries.get(&policy_id);
    let entry_rule = format!("plugins.entries.{id}.enabled");
    let entry_enabled = entry.and_then(|entry| entry.enabled);
    if entry_enabled == Some(false) {
        return trace.decide(
            false,
            Cause::DisabledInConfig,
            entry_rule,
            format!("plugins.entries.{id}.enabled is false"),
        );
    }
    trace.pass(
        &entry_rule,
        if entry_enabled == Some(true) {
            "true"
        } else {
            "not set"
        },
    );
    if let ChannelSwitch::Off(key) = subject.channel
        && entry_enabled != Some(true)
    {
        return trace.decide(
            false,
            Cause::ChannelDisabled,
            format!("channels.{key}.enabled"),
            format!("channels.{key}.enabled is false: the plugin of that channel is off"),
        );
    }
    let allowlisted = plugins.allow.contains(&policy_id);
    // The memory slot selects `memory-core` when unset; the context engine slot selects
    // a plugin only when set (its default is the built-in engine).
    let selected = |key: SlotKey| match key {
        SlotKey::Memory => plugins.slots.selected(key) == Some(id),
        SlotKey::ContextEngine => {
            matches!(plugins.slots.get(key), Slot::Plugin(slot) if slot == id)
        }
    };
    if subject.origin == Origin::Workspace {
        if !allowlisted && entry_enabled != Some(true) && !selected(SlotKey::ContextEngine) {
            return trace.decide(
                false,
                Cause::WorkspaceDefaultOff,
                "workspace default",
                format!(
                    "workspace plugins are off by default: set plugins.entries.{id}.enabled to true or add it to plugins.allow"
                ),
            );
        }
        trace.pass("workspace default", "enabled explicitly");
    }
    for (key, cause) in [
        (SlotKey::Memory, Cause::SelectedMemorySlot),
        (SlotKey::ContextEngine, Cause::SelectedContextEngineSlot),
    ] {
        let rule = format!("plugins.slots.{}", key.config_key());
        if selected(key) {
            return trace.decide(true, cause, &rule, format!("selected by {rule}"));
        }
    }
    trace.pass("plugins.slots", "selects another plugin or none");
    if !plugins.allow.is_empty() && !allowlisted {
        return trace.decide(
            false,
            Cause::NotInAllowlist,
            "plugins.allow",
            "plugins.allow is set and does not list it",
        );
    }
    trace.pass(
        "plugins.allow",
        if plugins.allow.is_empty() {
            "empty: no restriction"
        } else {
            "listed"
        },
    );
    if entry_enabled == Some(true) {
        return trace.decide(
            true,
            Cause::EnabledInConfig,
            entry_rule,
            format!("plugins.entries.{id}.enabled is true"),
        );
    }
    if allowlisted && subject.origin != Origin::Bundled {
        return trace.decide(
            true,
            Cause::SelectedInAllowlist,
            "plugins.allow",
            "listed in plugins.allow",
        );
    }
    if let ChannelSwitch::On(key) = subject.channel
        && subject.origin == Origin::Bundled
    {
        return trace.decide(
            true,
            Cause::ChannelConfigured,
            format!("channels.{key}"),
            format!(
                "channels.{key} is configured: the bundled plugin declaring that channel is on"
            ),
        );
    }
    match subject.origin {
        Origin::Bundled if subject.default_on => trace.decide(
            true,
            Cause::BundledDefaultOn,
            "bundled default",
            "bundled, on by default (enabledByDefault in its manifest)",
        ),
        Origin::Bundled => trace.decide(
            false,
            Cause::BundledDefaultOff,
            "bundled default",
            format!("bundled plugins are off by default: set plugins.entries.{id}.enabled to true"),
        ),
        Origin::Config | Origin::Global | Origin::Workspace => trace.decide(
            true,
            Cause::InstalledDefaultOn,
            "installed default",
            format!("{} plugins are on by default", subject.origin),
        ),
    }
}

fn exclusive_slots(
    subject: Subject<'_>,
    plugins: &PluginsConfig,
    mut decision: Enablement,
) -> Enablement {
    let [only_kind] = subject.kind else {
        return decision;
    };
    let Some(key) = SlotKey::ALL
        .into_iter()
        .find(|key| key.kind() == *only_kind)
    else {
        return decision;
    };
    let rule = format!("plugins.slots.{}", key.config_key());
    let lost = match plugins.slots.selected(key) {
        Some(selected) if selected == subject.id => {
            decision.trace.push(Step {
                rule,
                verdict: Verdict::Pass,
                detail: format!("selects this {} plugin", only_kind.as_str()),
            });
            return decision;
        }
        None => format!(
            "{rule} is \"none\": no {} plugin is enabled",
            only_kind.as_str()
        ),
        Some(selected) if key.is_built_in(selected) => format!(
            "{rule} uses the built-in `{selected}` engine; set it to `{}` to use this one",
            subject.id
        ),
        Some(selected) => format!(
            "{rule} selects `{selected}`{}; only one {} plugin is enabled",
            if matches!(plugins.slots.get(key), Slot::Default) {
                " (the default)"
            } else {
                ""
            },
            only_kind.as_str()
        ),
    };
    decision.trace.push(Step {
        rule,
        verdict: Verdict::Disable,
        detail: lost.clone(),
    });
    Enablement {
        enabled: false,
        cause: Cause::SlotTaken,
        reason: lost,
        trace: decision.trace,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::control::config::{PluginEntry, Slots};

    fn config() -> PluginsConfig {
        PluginsConfig {
            enabled: true,
            allow: Vec::new(),
            deny: Vec::new(),
            load_paths: Vec::new(),
            slots: Slots::default(),
            entries: BTreeMap::new(),
        }
    }

    fn entry(enabled: bool) -> PluginEntry {
        PluginEntry {
            enabled: Some(enabled),
            ..PluginEntry::default()
        }
    }

    type Setup = fn(&mut PluginsConfig);
    /// (what, config change, origin, kinds, default-on, expected enabled, expected cause)
    type Case = (
        &'static str,
        Setup,
        Origin,
        &'static [PluginKind],
        bool,
        bool,
        Cause,
    );

    #[test]
    fn the_rules_in_order() {
        let cases: &[Case] = &[
            (
                "installed",
                |_| {},
                Origin::Global,
                &[],
                false,
                true,
                Cause::InstalledDefaultOn,
            ),
            (
                "config path",
                |_| {},
                Origin::Config,
                &[],
                false,
                true,
                Cause::InstalledDefaultOn,
            ),
            (
                "all off",
                |c| c.enabled = false,
                Origin::Config,
                &[],
                false,
                false,
                Cause::PluginsDisabled,
            ),
            (
                "deny beats entry",
                |c| {
                    c.deny.push("acme".into());
                    c.entries.insert("acme".into(), entry(true));
                },
                Origin::Config,
                &[],
                false,
                false,
                Cause::Denylist,
            ),
            (
                "deny beats slot",
                |c| {
                    c.deny.push("acme".into());
                    c.slots.memory = Slot::Plugin("acme".into());
                },
                Origin::Config,
                &[PluginKind::Memory],
                false,
                false,
                Cause::Denylist,
            ),
            (
                "entry off",
                |c| {
                    c.entries.insert("acme".into(), entry(false));
                },
                Origin::Bundled,
                &[],
                true,
                false,
                Cause::DisabledInConfig,
            ),
            (
                "workspace off",
                |_| {},
                Origin::Workspace,
                &[],
                false,
                false,
                Cause::WorkspaceDefaultOff,
            ),
            (
                "workspace allowlisted",
                |c| c.allow.push("acme".into()),
                Origin::Workspace,
                &[],
                false,
                true,
                Cause::SelectedInAllowlist,
            ),
            (
                "workspace entry on",
                |c| {
                    c.entries.insert("acme".into(), entry(true));
                },
                Origin::Workspace,
                &[],
                false,
                true,
                Cause::EnabledInConfig,
            ),
            (
                "workspace memory slot is not enough",
                |c| c.slots.memory = Slot::Plugin("acme".into()),
                Origin::Workspace,
                &[PluginKind::Memory],
                false,
                false,
                Cause::WorkspaceDefaultOff,
            ),
            (
                "workspace context engine slot is enough",
                |c| c.slots.context_engine = Slot::Plugin("acme".into()),
                Origin::Workspace,
                &[PluginKind::ContextEngine],
                false,
                true,
                Cause::SelectedContextEngineSlot,
            ),
            (
                "not in allowlist",
                |c| c.allow.push("other".into()),
                Origin::Global,
                &[],
                false,
                false,
                Cause::NotInAllowlist,
            ),
            (
                "slot beats allowlist",
                |c| {
                    c.allow.push("other".into());
                    c.slots.memory = Slot::Plugin("acme".into());
                },
                Origin::Bundled,
                &[PluginKind::Memory],
                false,
                true,
                Cause::SelectedMemorySlot,
            ),
            (
                "bundled off",
                |_| {},
                Origin::Bundled,
                &[],
                false,
                false,
                Cause::BundledDefaultOff,
            ),
            (
                "bundled default on",
                |_| {},
                Origin::Bundled,
                &[],
                true,
                true,
                Cause::BundledDefaultOn,
            ),
            (
                "bundled allowlisted is still off",
                |c| c.allow.push("acme".into()),
                Origin::Bundled,
                &[],
                false,
                false,
                Cause::BundledDefaultOff,
            ),
            (
                "bundled enabled in entry",
                |c| {
                    c.entries.insert("acme".into(), entry(true));
                },
                Origin::Bundled,
                &[],
                false,
                true,
                Cause::EnabledInConfig,
            ),
            (
                "memory-core is selected by the default memory slot",
                |_| {},
                Origin::Bundled,
                &[PluginKind::Memory],
                false,
                true,
                Cause::SelectedMemorySlot,
            ),
            (
                "memory plugin loses the default slot",
                |_| {},
                Origin::Global,
                &[PluginKind::Memory],
                false,
                false,
                Cause::SlotTaken,
            ),
            (
                "memory slot none",
                |c| c.slots.memory = Slot::None,
                Origin::Global,
                &[PluginKind::Memory],
                false,
                false,
                Cause::SlotTaken,
            ),
            (
                "context engine loses to legacy",
                |_| {},
                Origin::Global,
                &[PluginKind::ContextEngine],
                false,
                false,
                Cause::SlotTaken,
            ),
            (
                "channel on enables a bundled plugin",
                |_| {},
                Origin::Bundled,
                &[],
                false,
                true,
                Cause::ChannelConfigured,
            ),
            (
                "channel on does not pass the allowlist",
                |c| c.allow.push("other".into()),
                Origin::Bundled,
                &[],
                false,
                false,
                Cause::NotInAllowlist,
            ),
            (
                "channel on does not enable a workspace plugin",
                |_| {},
                Origin::Workspace,
                &[],
                false,
                false,
                Cause::WorkspaceDefaultOff,
            ),
            (
                "channel off disables a default-on plugin",
                |_| {},
                Origin::Bundled,
                &[],
                true,
                false,
                Cause::ChannelDisabled,
            ),
            (
                "channel off loses to the plugin's own entry",
                |c| {
                    c.entries.insert("acme".into(), entry(true));
                },
                Origin::Global,
                &[],
                false,
                true,
                Cause::EnabledInConfig,
            ),
            (
                "a plugin of both kinds keeps running",
                |c| c.slots.memory = Slot::Plugin("other".into()),
                Origin::Global,
                &[PluginKind::Memory, PluginKind::ContextEngine],
                false,
                true,
                Cause::InstalledDefaultOn,
            ),
        ];
        for (what, setup, origin, kind, default_on, enabled, cause) in cases {
            let mut plugins = config();
            setup(&mut plugins);
            let decision = decide(
                Subject {
                    id: if what.starts_with("memory-core") {
                        "memory-core"
                    } else {
                        "acme"
                    },
                    origin: *origin,
                    kind,
                    default_on: *default_on,
                    channel: if what.starts_with("channel on") {
                        ChannelSwitch::On("acmechat")
                    } else if what.starts_with("channel off") {
                        ChannelSwitch::Off("acmechat")
                    } else {
                        ChannelSwitch::Unset
                    },
                },
                &plugins,
            );
            assert_eq!(
                (decision.enabled, decision.cause),
                (*enabled, *cause),
                "{what}: {decision:#?}"
            );
            let deciding = decision
                .trace
                .iter()
                .rev()
                .find(|step| step.verdict != Verdict::Pass);
            assert_eq!(
                deciding.map(|step| &step.detail),
                Some(&decision.reason),
                "{what}"
            );
        }
    }

    #[test]
    fn ids_match_case_insensitively_except_in_slots() {
        let mut plugins = config();
        plugins.deny.push("acme".into());
        let subject = Subject {
            id: "Acme",
            origin: Origin::Global,
            kind: &[],
            default_on: false,
            channel: ChannelSwitch::Unset,
        };
        assert_eq!(decide(subject, &plugins).cause, Cause::Denylist);
        let mut plugins = config();
        plugins.slots.memory = Slot::Plugin("acme".into());
        let subject = Subject {
            kind: &[PluginKind::Memory],
            ..subject
        };
        assert_eq!(decide(subject, &plugins).cause, Cause::SlotTaken);
    }
}
