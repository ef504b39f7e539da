use std::fmt;

use serde::{Deserialize, Serialize};

/// A JSON-RPC request id, kept with its exact JSON type.
///
/// A peer must echo the id it received byte for byte in meaning: `7`, `7.5` and `"7"`
/// are three different ids. `null` is not a valid request id in this protocol (JSON-RPC
/// only discourages it; we refuse it, because a `null` id cannot be told apart from the
/// `null` of an error response to an unreadable request).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RequestId {
    /// A JSON number, integer or not, kept as written.
    Number(serde_json::Number),
    /// A JSON string.
    String(String),
}

impl RequestId {
    /// Reads an id from a JSON value; `None` for anything but a number or a string.
    pub fn from_value(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Number(n) => Some(Self::Number(n.clone())),
            serde_json::Value::String(s) => Some(Self::String(s.clone())),
            _ => None,
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        Self::Number(n.into())
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

/// Shows the id as it appears on the wire: `7`, `"abc"`.
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_json_type() {
        for text in ["7", "7.5", "-3", "\"7\"", "\"\"", "18446744073709551615"] {
            let id: RequestId = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&id).unwrap(), text, "{text}");
        }
        let number: RequestId = serde_json::from_str("7").unwrap();
        let string: RequestId = serde_json::from_str("\"7\"").unwrap();
        assert_ne!(number, string);
    }

    #[test]
    fn null_and_objects_are_not_ids() {
        for text in ["null", "{}", "[]", "true"] {
            assert!(serde_json::from_str::<RequestId>(text).is_err(), "{text}");
        }
    }
}
