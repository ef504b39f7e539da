//! Why a plugin is in its state, as data: a gateway matches on the variant ("crash loop"
//! or "version mismatch"), a person reads the [`Display`](fmt::Display) rendering.
//!
//! Both travel together: every [`Reason`] in an event, a snapshot or an error is
//! serialized as `{"kind": ..., "message": ..., ...details}` (see [`with_message`]).

use std::fmt;
use std::path::PathBuf;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::os::ExitDescription;

/// Why a plugin is in its current state.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Reason {
    /// Being started: the first time, after a backoff, or on request.
    Starting,
    /// Its process is ending without having been asked to; what happens next (a
    /// restart or giving up) follows at once.
    Exiting {
        /// What happened.
        cause: ExitCause,
    },
    /// It ended without being asked to and starts again after `backoff_ms`.
    Restarting {
        /// How it ended.
        exit: Exit,
        /// The wait before the next start.
        backoff_ms: u64,
        /// Crashes within the give-up window, this one included.
        crashes: u32,
        /// More than this many within the window gives up.
        max_crashes: u32,
        /// The give-up window.
        window_ms: u64,
    },
    /// It crashed more than `restart.maxCrashes` times within `restart.windowMs`, so the
    /// supervisor gave up on it.
    CrashLoop {
        /// Crashes within the window.
        crashes: u32,
        /// The window.
        window_ms: u64,
        /// The last of them.
        last: Exit,
    },
    /// It exited with status 78: it cannot work with its config or environment, and
    /// restarting would not help (docs/protocol.md §3.3).
    PermanentFailure {
        /// The exit.
        exit: Exit,
    },
    /// It ended, and `restart.enabled` is false for it.
    RestartsDisabled {
        /// The exit.
        exit: Exit,
    },
    /// It speaks none of the protocol versions this host offered.
    VersionMismatch {
        /// What this host offered.
        offered: Vec<String>,
        /// What the plugin says it supports, as it said it (`null` if it did not).
        supported: Value,
    },
    /// It chose a protocol version this host did not offer.
    UnofferedVersion {
        /// Its choice.
        chosen: String,
        /// What this host offered.
        offered: Vec<String>,
    },
    /// It answered `initialize` as another plugin.
    WrongId {
        /// The manifest's id.
        expected: String,
        /// The id it answered with.
        answered: String,
    },
    /// Its `initialize` result does not follow the protocol.
    BadHandshake {
        /// What is wrong with it.
        detail: String,
    },
    /// The supervisor refuses to start it as configured (a resource limit the system
    /// cannot grant, for example).
    CannotStart {
        /// Why.
        detail: String,
    },
    /// Someone (an operator, the gateway) asked it to stop.
    StopRequested,
    /// The supervisor is shutting down.
    Shutdown,
    /// A reload removed it from the set of plugins.
    Removed,
    /// A reload changed how it runs; it restarts with the new spec.
    Reconfigured,
}

impl Reason {
    /// Whether the state this reason explains needs a person: the plugin was given up
    /// on or cannot start until something is fixed.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            Self::CrashLoop { .. }
                | Self::PermanentFailure { .. }
                | Self::RestartsDisabled { .. }
                | Self::VersionMismatch { .. }
                | Self::UnofferedVersion { .. }
                | Self::WrongId { .. }
                | Self::BadHandshake { .. }
                | Self::CannotStart { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Starting => f.write_str("starting"),
            Self::Exiting { cause } => cause.fmt(f),
            Self::Restarting {
                exit,
                backoff_ms,
                crashes,
                max_crashes,
                window_ms,
            } => write!(
                f,
                "{exit}; restarting in {backoff_ms} ms (crash {crashes} of at most {max_crashes} within {} s)",
                window_ms / 1000
            ),
            Self::CrashLoop {
                crashes,
                window_ms,
                last,
            } => write!(
                f,
                "crashed {crashes} times within {} s, so it was given up on; the last time: {last}",
                window_ms / 1000
            ),
            Self::PermanentFailure { exit } => write!(
                f,
                "exited with status 78, which means it cannot work with its config or environment: {exit}"
            ),
            Self::RestartsDisabled { exit } => write!(
                f,
                "{exit}; restarts are disabled for it (restart.enabled = false)"
            ),
            Self::VersionMismatch { offered, supported } => write!(
                f,
                "speaks none of this host's protocol versions ({offered:?}); it supports {supported}. Update the plugin or Outpost"
            ),
            Self::UnofferedVersion { chosen, offered } => write!(
                f,
                "chose protocol version {chosen:?}, which this host did not offer (it offered {offered:?})"
            ),
            Self::WrongId { expected, answered } => write!(
                f,
                "answered as plugin `{answered}`, but its manifest says `{expected}`; the manifest is what the operator reviewed, so fix the plugin"
            ),
            Self::BadHandshake { detail } => write!(
                f,
                "its `initialize` result is malformed ({detail}); fix the plugin (docs/protocol.md §5.2)"
            ),
            Self::CannotStart { detail } => write!(f, "cannot be started: {detail}"),
            Self::StopRequested => f.write_str("asked to stop"),
            Self::Shutdown => f.write_str("the supervisor is shutting down"),
            Self::Removed => f.write_str("removed from the config by a reload"),
            Self::Reconfigured => {
                f.write_str("its spec changed in a reload; restarting with the new one")
            }
        }
    }
}

/// How one process of a plugin ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Exit {
    /// What happened.
    pub cause: ExitCause,
    /// Its exit status or signal (`"not started"` when it never ran).
    pub status: ExitDescription,
    /// The last lines it wrote to stderr, oldest first.
    pub stderr_tail: Vec<String>,
}

impl fmt::Display for Exit {
    /// One line: cause, status, and the last stderr line that says anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.cause, self.status)?;
        if let Some(last) = self.stderr_tail.iter().rev().find(|l| !l.trim().is_empty()) {
            write!(f, "; last stderr line: {}", last.trim())?;
        }
        Ok(())
    }
}

/// What ended a plugin's process.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum ExitCause {
    /// It exited on its own while serving.
    Crashed,
    /// It exited before answering `initialize`.
    ExitedDuringHandshake,
    /// It did not answer `initialize` in time.
    HandshakeTimeout {
        /// `timeouts.handshakeMs`.
        timeout_ms: u64,
        /// A line it wrote meanwhile that could not be read (too long, not JSON-RPC),
        /// and why: most likely its answer.
        #[serde(skip_serializing_if = "Option::is_none")]
        unreadable: Option<String>,
    },
    /// Its answer to `initialize` could not be read (too long, not JSON-RPC).
    HandshakeUnreadable {
        /// The line, and why it could not be read.
        line: String,
    },
    /// It answered `initialize` with an error.
    HandshakeRefused {
        /// The error, as the plugin sent it.
        error: String,
    },
    /// Its connection broke during the handshake.
    ConnectionLost {
        /// How.
        detail: String,
    },
    /// It stopped answering pings.
    Unresponsive {
        /// Pings missed in a row.
        misses: u32,
        /// Each ping's timeout.
        timeout_ms: u64,
    },
    /// It closed its protocol stream but kept running.
    StreamClosed {
        /// How the stream ended.
        detail: String,
    },
    /// Its program could not be started.
    SpawnFailed {
        /// The program.
        program: PathBuf,
        /// Why.
        detail: String,
    },
    /// It was stopped on purpose.
    Stopped,
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crashed => f.write_str("crashed"),
            Self::ExitedDuringHandshake => f.write_str("exited during the handshake"),
            Self::HandshakeTimeout {
                timeout_ms,
                unreadable: None,
            } => write!(
                f,
                "did not answer `initialize` within {timeout_ms} ms (timeouts.handshakeMs)"
            ),
            Self::HandshakeTimeout {
                timeout_ms,
                unreadable: Some(problem),
            } => write!(
                f,
                "did not answer `initialize` readably within {timeout_ms} ms (timeouts.handshakeMs): a line it wrote could not be read, {problem}"
            ),
            Self::HandshakeUnreadable { line } => {
                write!(
                    f,
                    "answered `initialize` with a line that could not be read: {line}"
                )
            }
            Self::HandshakeRefused { error } => {
                write!(f, "answered `initialize` with an error: {error}")
            }
            Self::ConnectionLost { detail } => {
                write!(f, "lost its connection during the handshake: {detail}")
            }
            Self::Unresponsive { misses, timeout_ms } => write!(
                f,
                "unresponsive: {misses} pings in a row went unanswered within {timeout_ms} ms"
            ),
            Self::StreamClosed { detail } => {
                write!(f, "closed its protocol stream but kept running ({detail})")
            }
            Self::SpawnFailed { program, detail } => {
                write!(f, "could not start `{}`: {detail}", program.display())
            }
            Self::Stopped => f.write_str("stopped on purpose"),
        }
    }
}

/// Serializes a reason as its fields, its `kind`, and its human rendering as `message`.
/// For `#[serde(serialize_with)]` on `Option<Reason>` fields.
#[expect(
    clippy::ref_option,
    reason = "serde's serialize_with passes a reference to the field"
)]
pub(crate) fn with_message<S: Serializer>(
    reason: &Option<Reason>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    reason.as_ref().map(to_value).serialize(serializer)
}

/// A reason as JSON, `message` included.
pub(crate) fn to_value(reason: &Reason) -> Value {
    let mut value = serde_json::to_value(reason).expect("reasons serialize");
    if let Value::Object(fields) = &mut value {
        fields.insert("message".into(), Value::String(reason.to_string()));
    }
    value
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exit() -> Exit {
        Exit {
            cause: ExitCause::Crashed,
            status: ExitDescription {
                text: "exit status 3".into(),
                exit_code: Some(3),
                signal: None,
            },
            stderr_tail: vec!["boom".into(), "  ".into()],
        }
    }

    #[test]
    fn reasons_read_well_and_serialize_with_their_message() {
        let reason = Reason::CrashLoop {
            crashes: 6,
            window_ms: 180_000,
            last: exit(),
        };
        assert_eq!(
            reason.to_string(),
            "crashed 6 times within 180 s, so it was given up on; the last time: crashed (exit status 3); last stderr line: boom"
        );
        let value = to_value(&reason);
        assert_eq!(value["kind"], "crashLoop");
        assert_eq!(value["windowMs"], 180_000);
        assert_eq!(value["last"]["cause"], json!({"kind": "crashed"}));
        assert_eq!(value["last"]["status"]["exitCode"], 3);
        assert_eq!(value["message"], reason.to_string());
        assert!(reason.needs_operator());
        assert!(!Reason::Starting.needs_operator());
        assert_eq!(to_value(&Reason::StopRequested)["kind"], "stopRequested");
    }
}
