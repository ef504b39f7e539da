use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The error codes of protocol v1, with stable meanings.
///
/// The standard JSON-RPC codes, the LSP-style `-32800` for a cancelled request, and
/// Outpost's own codes in the implementation range `-32000..=-32099`. Codes this
/// version does not know are kept in [`ErrorCode::Other`], so a newer peer never breaks
/// an older one. docs/protocol.md ("Error codes") is the normative table.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `-32700`: the line was not JSON (or not UTF-8).
    ParseError,
    /// `-32600`: JSON, but not a JSON-RPC 2.0 message this protocol accepts (a batch
    /// included).
    InvalidRequest,
    /// `-32601`: the method is not known to the receiver.
    MethodNotFound,
    /// `-32602`: the params do not match the method.
    InvalidParams,
    /// `-32603`: the receiver failed in a way that is not the caller's doing.
    InternalError,
    /// `-32000`: the handler behind a registration failed (an exception, a panic).
    HandlerFailed,
    /// `-32001`: the deadline passed before an answer came.
    Timeout,
    /// `-32002`: a request other than `initialize` arrived before `initialize`.
    NotInitialized,
    /// `-32003`: the plugin cannot take calls now (starting, restarting, failed,
    /// stopped); `data.retryAfterMs` says when to try again, if ever.
    Unavailable,
    /// `-32004`: no protocol version in common; `data.supported` lists the receiver's.
    UnsupportedVersion,
    /// `-32005`: refused by policy (a host helper the plugin may not use, a hook the
    /// operator blocked).
    Forbidden,
    /// `-32006`: a message over the announced size limit.
    MessageTooLarge,
    /// `-32007`: a second `initialize`.
    AlreadyInitialized,
    /// `-32008`: no registration of that kind and name.
    NotFound,
    /// `-32009`: the plugin's concurrency limit and queue are full; retry later.
    Overloaded,
    /// `-32010`: the plugin exited while the call was in flight; the call may or may not
    /// have taken effect.
    PluginExited,
    /// `-32800`: the request was cancelled with `$/cancel`.
    Cancelled,
    /// Any other code, kept as received.
    Other(i64),
}

impl ErrorCode {
    /// Every named code, for tables and tests.
    pub const ALL: [ErrorCode; 17] = [
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::InternalError,
        Self::HandlerFailed,
        Self::Timeout,
        Self::NotInitialized,
        Self::Unavailable,
        Self::UnsupportedVersion,
        Self::Forbidden,
        Self::MessageTooLarge,
        Self::AlreadyInitialized,
        Self::NotFound,
        Self::Overloaded,
        Self::PluginExited,
        Self::Cancelled,
    ];

    /// The integer on the wire.
    pub const fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::HandlerFailed => -32000,
            Self::Timeout => -32001,
            Self::NotInitialized => -32002,
            Self::Unavailable => -32003,
            Self::UnsupportedVersion => -32004,
            Self::Forbidden => -32005,
            Self::MessageTooLarge => -32006,
            Self::AlreadyInitialized => -32007,
            Self::NotFound => -32008,
            Self::Overloaded => -32009,
            Self::PluginExited => -32010,
            Self::Cancelled => -32800,
            Self::Other(code) => code,
        }
    }

    /// The code for an integer from the wire.
    pub fn from_code(code: i64) -> Self {
        Self::ALL
            .into_iter()
            .find(|known| known.code() == code)
            .unwrap_or(Self::Other(code))
    }

    /// A short stable name (`"timeout"`, `"not-found"`), for logs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ParseError => "parse-error",
            Self::InvalidRequest => "invalid-request",
            Self::MethodNotFound => "method-not-found",
            Self::InvalidParams => "invalid-params",
            Self::InternalError => "internal-error",
            Self::HandlerFailed => "handler-failed",
            Self::Timeout => "timeout",
            Self::NotInitialized => "not-initialized",
            Self::Unavailable => "unavailable",
            Self::UnsupportedVersion => "unsupported-version",
            Self::Forbidden => "forbidden",
            Self::MessageTooLarge => "message-too-large",
            Self::AlreadyInitialized => "already-initialized",
            Self::NotFound => "not-found",
            Self::Overloaded => "overloaded",
            Self::PluginExited => "plugin-exited",
            Self::Cancelled => "cancelled",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::from_code)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for ErrorCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A JSON-RPC error code; see docs/protocol.md for the table.",
            "type": "integer"
        })
    }
}

/// The `error` member of a JSON-RPC error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorObject {
    /// What kind of failure; see [`ErrorCode`].
    pub code: ErrorCode,
    /// One sentence for a person: what happened and, where it helps, what to do.
    pub message: String,
    /// Structured detail; its shape depends on the code (docs/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error without data.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error carrying `data`.
    #[must_use]
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// `-32601` for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotFound,
            format!("method `{method}` is not supported by this peer"),
        )
    }

    /// `-32602` with a reason.
    pub fn invalid_params(method: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidParams,
            format!("invalid params for `{method}`: {reason}"),
        )
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code.code())
    }
}

impl std::error::Error for ErrorObject {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_survive() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        assert_eq!(ErrorCode::from_code(-32099), ErrorCode::Other(-32099));
        assert_eq!(ErrorCode::from_code(42).code(), 42);
    }

    #[test]
    fn codes_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "{code} twice");
        }
    }

    #[test]
    fn error_objects_omit_missing_data() {
        let error = ErrorObject::new(ErrorCode::Timeout, "too slow");
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"code":-32001,"message":"too slow"}"#
        );
    }
}
