//! Supervision policy as plain data: timeouts, health checks, restart, stop and limits.
//!
//! Every value has a documented default (docs/operators.md repeats the table). A plugin's
//! effective policy is built from layers, later layers winning member by member:
//!
//! 1. the defaults below;
//! 2. `outpost.defaults` in the config file;
//! 3. the `outpost` block of the plugin's manifest (`timeouts`, `health`, `restart`,
//!    `stop`, `limits`): what the plugin author knows it needs;
//! 4. `outpost.plugins.<id>` in the config file: the operator has the last word.
//!
//! Layers are JSON objects merged deeply ([`SupervisionPolicy::from_layers`]); unknown
//! keys are refused so a typo in a config file is an error, not a silently ignored
//! setting.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything that governs how one plugin is supervised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SupervisionPolicy {
    /// Handshake and call deadlines.
    pub timeouts: Timeouts,
    /// Liveness pings.
    pub health: HealthPolicy,
    /// What happens after an exit nobody asked for.
    pub restart: RestartPolicy,
    /// The stop escalation.
    pub stop: StopPolicy,
    /// Resource and traffic limits.
    pub limits: Limits,
}

/// Deadlines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Timeouts {
    /// From spawn to the `initialize` answer. Default 10 s: interpreted plugins need room.
    pub handshake_ms: u64,
    /// A call's deadline when the caller gives none. Default 30 s.
    pub call_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake_ms: 10_000,
            call_ms: 30_000,
        }
    }
}

/// Liveness pings while a plugin is ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthPolicy {
    /// Between pings. Default 15 s. `0` disables pings.
    pub interval_ms: u64,
    /// A ping not answered within this is a miss. Default 5 s.
    pub timeout_ms: u64,
    /// Consecutive misses that make the plugin "unresponsive" and restart it. Default 3.
    pub misses: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            interval_ms: 15_000,
            timeout_ms: 5_000,
            misses: 3,
        }
    }
}

/// Restarts after a crash (any exit not asked for, except exit code 78).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// Restart at all. Default true.
    pub enabled: bool,
    /// The first backoff delay. Default 250 ms.
    pub initial_backoff_ms: u64,
    /// Each further crash multiplies the delay by this. Default 2.
    pub multiplier: f64,
    /// The longest delay. Default 30 s.
    pub max_backoff_ms: u64,
    /// Each delay is moved by up to this fraction, up or down, so plugins that crashed
    /// together do not restart together. Default 0.2.
    pub jitter: f64,
    /// An incarnation that was ready this long before it crashed starts the backoff
    /// over at `initial_backoff_ms` (the give-up window still counts the crash).
    /// Default 60 s.
    pub reset_after_ms: u64,
    /// More than this many crashes within `window_ms` gives up: state `failed`.
    /// Default 5.
    pub max_crashes: u32,
    /// See `max_crashes`. Default 180 s.
    pub window_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_backoff_ms: 250,
            multiplier: 2.0,
            max_backoff_ms: 30_000,
            jitter: 0.2,
            reset_after_ms: 60_000,
            max_crashes: 5,
            window_ms: 180_000,
        }
    }
}

/// The stop escalation: `shutdown` request, close stdin, SIGTERM to the process group,
/// SIGKILL to the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct StopPolicy {
    /// How long the `shutdown` request may take. Default 3 s.
    pub shutdown_ms: u64,
    /// After stdin is closed, how long to wait for the exit. Default 2 s.
    pub eof_ms: u64,
    /// After SIGTERM, how long to wait before SIGKILL. Default 3 s.
    pub term_ms: u64,
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self {
            shutdown_ms: 3_000,
            eof_ms: 2_000,
            term_ms: 3_000,
        }
    }
}

/// Resource and traffic limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Calls in flight to the plugin at once. Default 64: chosen from the curve of calls
    /// per second and memory against the limit in docs/performance.md (16 throttled a
    /// gateway with 64 callers; the memory of a plugin and of the supervisor does not
    /// move with the limit).
    pub max_concurrent_requests: u32,
    /// Calls waiting for a slot; more fail at once with `-32009`. Default 64.
    pub max_queued_requests: u32,
    /// Longest line either way. Default 16 MiB.
    pub max_message_bytes: u64,
    /// `RLIMIT_NOFILE` for the plugin. Default: inherited.
    pub open_files: Option<u64>,
    /// `RLIMIT_AS` (address space) for the plugin, in MiB. Default: none. See
    /// docs/operators.md for why address space is a blunt measure of memory.
    pub memory_mib: Option<u64>,
    /// Recent stderr lines kept for crash reports. Default 200.
    pub stderr_lines: u32,
    /// Registrations one handshake may make; a plugin that makes more fails to start.
    /// Default 10,000.
    pub max_registrations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 64,
            max_queued_requests: 64,
            max_message_bytes: outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES as u64,
            open_files: None,
            memory_mib: None,
            stderr_lines: 200,
            max_registrations: 10_000,
        }
    }
}

impl SupervisionPolicy {
    /// The defaults overridden by each layer in turn (objects merged member by member).
    pub fn from_layers<'a>(
        layers: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Self, serde_json::Error> {
        let mut merged = Value::Object(Map::new());
        for layer in layers {
            merge(&mut merged, layer);
        }
        serde_json::from_value(merged)
    }
}

impl SupervisionPolicy {
    /// Values that deserialize but cannot work, as `(section.field, message)`: checked
    /// with the config (`outpost plugins validate`), not first at launch.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut at_least = |path: &'static str, value: u64, min: u64, why: &str| {
            if value < min {
                problems.push((path, format!("is {value}; {why} (use {min} or more)")));
            }
        };
        let limits = &self.limits;
        if let Some(open_files) = limits.open_files {
            at_least(
                "limits.openFiles",
                open_files,
                8,
                "a plugin needs its three standard streams and a few more",
            );
        }
        if let Some(mib) = limits.memory_mib {
            at_least(
                "limits.memoryMib",
                mib,
                32,
                "no runtime starts in less address space (Node and the JVM want several GiB)",
            );
        }
        at_least(
            "limits.maxConcurrentRequests",
            limits.max_concurrent_requests.into(),
            1,
            "no call could ever be sent",
        );
        at_least(
            "limits.maxMessageBytes",
            limits.max_message_bytes,
            4096,
            "the handshake alone needs more",
        );
        at_least(
            "limits.maxRegistrations",
            limits.max_registrations.into(),
            1,
            "a plugin registers at least one thing",
        );
        at_least(
            "timeouts.handshakeMs",
            self.timeouts.handshake_ms,
            1,
            "no plugin could start",
        );
        at_least(
            "timeouts.callMs",
            self.timeouts.call_ms,
            1,
            "every call would time out",
        );
        if self.health.interval_ms > 0 {
            at_least(
                "health.timeoutMs",
                self.health.timeout_ms,
                1,
                "every ping would be missed",
            );
            at_least(
                "health.misses",
                self.health.misses.into(),
                1,
                "the first ping would restart the plugin",
            );
        }
        let restart = &self.restart;
        if !(restart.multiplier >= 1.0 && restart.multiplier.is_finite()) {
            problems.push((
                "restart.multiplier",
                format!(
                    "is {}; backoff must not shrink (use 1 or more)",
                    restart.multiplier
                ),
            ));
        }
        if !(0.0..=1.0).contains(&restart.jitter) {
            problems.push((
                "restart.jitter",
                format!("is {}; it is a fraction from 0 to 1", restart.jitter),
            ));
        }
        problems
    }
}

/// The most a manifest may ask for, member by member. A plugin's author is not its
/// operator: a manifest that asked for an 8 GB line, hour-long stops or a million
/// crashes before giving up would turn the supervisor's protections against the plugin
/// itself. A manifest's value beyond its ceiling is lowered to it
/// ([`within_manifest_bounds`]); the operator's layers may go further.
pub(crate) const MANIFEST_CEILINGS: &[(&str, &str, u64)] = &[
    ("timeouts", "handshakeMs", 60_000),
    ("timeouts", "callMs", 3_600_000),
    ("health", "intervalMs", 300_000),
    ("health", "timeoutMs", 60_000),
    ("health", "misses", 10),
    ("restart", "initialBackoffMs", 60_000),
    ("restart", "maxBackoffMs", 300_000),
    ("restart", "resetAfterMs", 3_600_000),
    ("restart", "maxCrashes", 20),
    ("restart", "windowMs", 3_600_000),
    ("stop", "shutdownMs", 30_000),
    ("stop", "eofMs", 30_000),
    ("stop", "termMs", 30_000),
    ("limits", "maxConcurrentRequests", 1_024),
    ("limits", "maxQueuedRequests", 1_024),
    ("limits", "maxMessageBytes", 64 * 1024 * 1024),
    ("limits", "openFiles", 65_536),
    ("limits", "stderrLines", 10_000),
    ("limits", "maxRegistrations", 10_000),
];

/// A manifest may not turn the health pings off (`0`), nor ping more often than this.
pub(crate) const MANIFEST_HEALTH_FLOOR_MS: u64 = 1_000;

/// The least a manifest may ask for, member by member: a manifest may not restart its
/// plugin sooner than 100 ms after a crash (a 10 ms crash loop is a hundred starts a
/// second: a way to win a race against the supervisor), nor count crashes over less
/// than a minute (over 1 ms, no number of crashes would ever give up; with 20 crashes at
/// most, a loop of 100 ms gives up within seconds).
pub(crate) const MANIFEST_FLOORS: &[(&str, &str, u64)] = &[
    ("health", "intervalMs", MANIFEST_HEALTH_FLOOR_MS),
    ("restart", "initialBackoffMs", 100),
    ("restart", "maxBackoffMs", 100),
    ("restart", "windowMs", 60_000),
];

/// The most jitter a manifest may ask for: more could pull a restart's delay to 0.
pub(crate) const MANIFEST_JITTER_CEILING: f64 = 0.5;

/// What [`within_manifest_bounds`] changed in a manifest's layer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lowered {
    /// e.g. `limits.maxMessageBytes`.
    pub(crate) path: String,
    /// What the manifest asked for.
    pub(crate) asked: Value,
    /// What is used instead.
    pub(crate) used: Value,
}

/// A manifest's policy layer within what a manifest may ask for ([`MANIFEST_CEILINGS`],
/// [`MANIFEST_FLOORS`], [`MANIFEST_JITTER_CEILING`]), and what was changed. Values that are not numbers are
/// left for [`SupervisionPolicy::from_layers`] to refuse.
pub(crate) fn within_manifest_bounds(layer: &Value) -> (Value, Vec<Lowered>) {
    let mut layer = layer.clone();
    let mut lowered = Vec::new();
    for &(section, key, ceiling) in MANIFEST_CEILINGS {
        let Some(value) = layer.get_mut(section).and_then(|s| s.get_mut(key)) else {
            continue;
        };
        // Anything but a whole number is the parser's to refuse.
        let Some(asked) = value.as_u64() else {
            continue;
        };
        let floor = MANIFEST_FLOORS
            .iter()
            .find(|&&(s, k, _)| s == section && k == key)
            .map_or(0, |&(_, _, floor)| floor);
        let used = match (section, key) {
            // Pings off is no value but a switch: the default, not the floor.
            ("health", "intervalMs") if asked == 0 => HealthPolicy::default().interval_ms,
            _ => asked.clamp(floor, ceiling),
        };
        if asked == used {
            continue;
        }
        lowered.push(Lowered {
            path: format!("{section}.{key}"),
            asked: value.clone(),
            used: Value::from(used),
        });
        *value = Value::from(used);
    }
    if let Some(value) = layer.get_mut("restart").and_then(|s| s.get_mut("jitter"))
        && let Some(asked) = value.as_f64()
        && asked > MANIFEST_JITTER_CEILING
    {
        lowered.push(Lowered {
            path: "restart.jitter".to_owned(),
            asked: value.clone(),
            used: Value::from(MANIFEST_JITTER_CEILING),
        });
        *value = Value::from(MANIFEST_JITTER_CEILING);
    }
    (layer, lowered)
}

/// Deep merge: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, layer: &Value) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) => {
            for (key, value) in layer {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, layer) => *base = layer.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn no_layers_give_the_documented_defaults() {
        let policy = SupervisionPolicy::from_layers([]).unwrap();
        assert_eq!(policy, SupervisionPolicy::default());
        assert_eq!(policy.timeouts.handshake_ms, 10_000);
        assert_eq!(policy.restart.max_crashes, 5);
        assert_eq!(policy.stop.term_ms, 3_000);
    }

    #[test]
    fn later_layers_win_member_by_member() {
        let config_defaults = json!({"timeouts": {"callMs": 5000}, "restart": {"maxCrashes": 2}});
        let manifest = json!({"timeouts": {"handshakeMs": 60_000, "callMs": 120_000}});
        let operator = json!({"timeouts": {"callMs": 1000}, "limits": {"openFiles": 64}});
        let policy =
            SupervisionPolicy::from_layers([&config_defaults, &manifest, &operator]).unwrap();
        assert_eq!(policy.timeouts.handshake_ms, 60_000);
        assert_eq!(policy.timeouts.call_ms, 1_000);
        assert_eq!(policy.restart.max_crashes, 2);
        assert_eq!(policy.restart.initial_backoff_ms, 250);
        assert_eq!(policy.limits.open_files, Some(64));
    }

    #[test]
    fn values_that_cannot_work_are_problems() {
        let policy = SupervisionPolicy::from_layers([&json!({
            "limits": {"openFiles": 3, "memoryMib": 0, "maxConcurrentRequests": 0},
            "restart": {"jitter": 2.0, "multiplier": 0.5},
        })])
        .unwrap();
        let paths: Vec<&str> = policy.problems().iter().map(|(path, _)| *path).collect();
        assert_eq!(
            paths,
            [
                "limits.openFiles",
                "limits.memoryMib",
                "limits.maxConcurrentRequests",
                "restart.multiplier",
                "restart.jitter"
            ]
        );
        assert!(SupervisionPolicy::default().problems().is_empty());
    }

    #[test]
    fn a_manifest_asks_within_its_ceilings_and_the_operator_has_the_last_word() {
        let manifest = json!({
            "limits": {"maxMessageBytes": 4_000_000_000_u64, "stderrLines": 100_000_000, "maxConcurrentRequests": 8},
            "stop": {"shutdownMs": 3_600_000, "eofMs": 3_600_000, "termMs": 3_600_000},
            "health": {"intervalMs": 0},
            "restart": {"maxCrashes": 100_000_000},
            "timeouts": {"callMs": 1_000_000_000_000_u64, "handshakeMs": "soon"},
        });
        let (bounded, lowered) = within_manifest_bounds(&manifest);
        let paths: Vec<&str> = lowered.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "timeouts.callMs",
                "health.intervalMs",
                "restart.maxCrashes",
                "stop.shutdownMs",
                "stop.eofMs",
                "stop.termMs",
                "limits.maxMessageBytes",
                "limits.stderrLines",
            ]
        );
        assert_eq!(
            bounded["limits"]["maxConcurrentRequests"], 8,
            "within: kept"
        );
        assert_eq!(bounded["health"]["intervalMs"], 15_000, "pings stay on");
        assert_eq!(
            bounded["timeouts"]["handshakeMs"], "soon",
            "left for the parser"
        );
        assert_eq!(
            within_manifest_bounds(&json!({"health": {"intervalMs": 10}})).0["health"]["intervalMs"],
            1_000
        );
        let (restart, lowered) = within_manifest_bounds(&json!({"restart": {
            "initialBackoffMs": 10, "maxBackoffMs": 0, "windowMs": 1, "jitter": 1.0,
        }}));
        assert_eq!(
            restart["restart"],
            json!({"initialBackoffMs": 100, "maxBackoffMs": 100, "windowMs": 60_000, "jitter": 0.5})
        );
        assert_eq!(lowered.len(), 4);
        let operator = json!({"stop": {"termMs": 600_000}});
        let bounded = json!({"stop": bounded["stop"].clone(), "limits": bounded["limits"].clone()});
        let policy = SupervisionPolicy::from_layers([&bounded, &operator]).unwrap();
        assert_eq!(policy.limits.max_message_bytes, 64 * 1024 * 1024);
        assert_eq!(policy.stop.shutdown_ms, 30_000);
        assert_eq!(policy.stop.term_ms, 600_000, "the operator may go further");
    }

    #[test]
    fn a_typo_is_an_error_that_names_the_key() {
        let error =
            SupervisionPolicy::from_layers([&json!({"timeouts": {"handshakeMS": 1}})]).unwrap_err();
        assert!(error.to_string().contains("handshakeMS"), "{error}");
    }
}
