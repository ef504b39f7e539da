use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A JSON-RPC request id: a string or a number, with its JSON type.
///
/// Ids are compared by JSON type and value (docs/protocol.md §4): `7` and `7.0` are the
/// same id (a JavaScript plugin cannot tell them apart), `"7"` is another. Written back
/// as received. `null` is not a valid request id in this protocol (JSON-RPC only
/// discourages it; we refuse it, because a `null` id cannot be told apart from the
/// `null` of an error response to an unreadable request).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RequestId {
    /// A JSON number, integer or not, kept as written.
    Number(serde_json::Number),
    /// A JSON string.
    String(String),
}

/// A number's value, for comparing ids: integers exactly, other numbers by their bits.
#[derive(PartialEq, Eq, Hash)]
enum NumberKey {
    Integer(i128),
    Float(u64),
}

fn number_key(n: &serde_json::Number) -> NumberKey {
    if let Some(i) = n.as_i64() {
        return NumberKey::Integer(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return NumberKey::Integer(i128::from(u));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // An integral value within i128 is the integer it is: `7.0` is `7`.
    if f.fract() == 0.0 && f.abs() < 1.0e38 {
        #[expect(clippy::cast_possible_truncation, reason = "integral and within range")]
        return NumberKey::Integer(f as i128);
    }
    NumberKey::Float(f.to_bits())
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => number_key(a) == number_key(b),
            (Self::String(a), Self::String(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Self::Number(n) => {
                0_u8.hash(state);
                number_key(n).hash(state);
            }
            Self::String(s) => {
                1_u8.hash(state);
                s.hash(state);
            }
        }
    }
}

/// Read straight from the JSON's type, without the buffering of an `untagged` derive:
/// an id is read from every message, by both sides.
impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Id;
        impl Visitor<'_> for Id {
            type Value = RequestId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RequestId, E> {
                Ok(RequestId::Number(n.into()))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RequestId, E> {
                Ok(RequestId::Number(n.into()))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<RequestId, E> {
                serde_json::Number::from_f64(n)
                    .map(RequestId::Number)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(n), &self))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<RequestId, E> {
                Ok(RequestId::String(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<RequestId, E> {
                Ok(RequestId::String(s))
            }
        }
        deserializer.deserialize_any(Id)
    }
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
        // Whatever is not a string or a number is not an id.
        for text in ["null", "true", "[1]", "{}"] {
            let refused = serde_json::from_str::<RequestId>(text).unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("expected a string or a number"),
                "{text}: {refused}"
            );
        }
        let from_value: RequestId = serde_json::from_value(serde_json::json!(-7)).unwrap();
        assert_eq!(from_value, RequestId::from(-7));
        let number: RequestId = serde_json::from_str("7").unwrap();
        let string: RequestId = serde_json::from_str("\"7\"").unwrap();
        assert_ne!(number, string);
    }

    #[test]
    fn ids_compare_by_json_type_and_value() {
        use std::collections::HashSet;
        let id = |text: &str| serde_json::from_str::<RequestId>(text).unwrap();
        assert_eq!(id("7"), id("7.0"));
        assert_eq!(id("7"), id("7e0"));
        assert_eq!(id("-0"), id("0"));
        assert_eq!(id("9007199254740991"), id("9007199254740991.0"));
        assert_ne!(id("7"), id("7.5"));
        assert_ne!(id("7"), id("\"7\""));
        assert_ne!(id("18446744073709551615"), id("18446744073709551614"));
        let set: HashSet<RequestId> = ["7", "7.0", "\"7\"", "7.5"].into_iter().map(id).collect();
        assert_eq!(set.len(), 3, "7 and 7.0 are one id");
    }

    #[test]
    fn null_and_objects_are_not_ids() {
        for text in ["null", "{}", "[]", "true"] {
            assert!(serde_json::from_str::<RequestId>(text).is_err(), "{text}");
        }
    }
}
