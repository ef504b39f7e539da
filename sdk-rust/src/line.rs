//! A call read straight from its line: the envelope and the params in one pass.
//!
//! The session offers the peer to read the host's lines itself while it is running and
//! idle (`PeerConfig::take_lines`). [`CallLine::read`] accepts only a well-formed
//! request; anything else (a notification, a response, a line with anything wrong) is
//! given back to the peer, which parses it as usual and refuses it in its own words.
//! `tool/invoke`'s params are read into [`ToolInvokeText`] in the same pass when
//! `method` comes before `params` (as every encoder writes them); other params, and
//! params that come first, are kept as text and read by the route.

use std::borrow::Cow;
use std::fmt;

use outpost_protocol::RequestId;
use outpost_protocol::methods::{CallContext, RequestType, ToolInvoke};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A request, read from its line.
pub(crate) struct CallLine<'a> {
    pub(crate) id: RequestId,
    pub(crate) method: Cow<'a, str>,
    pub(crate) params: CallParams<'a>,
}

/// A request's params.
pub(crate) enum CallParams<'a> {
    /// As the JSON text they arrived as; `None` when absent or `null`.
    Text(Option<&'a RawValue>),
    /// `tool/invoke`'s, already read.
    Tool(ToolInvokeText<'a>),
}

/// `tool/invoke`'s params with the arguments left as text where they arrived, read once
/// by the handler.
#[derive(Deserialize)]
pub(crate) struct ToolInvokeText<'a> {
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) arguments: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) context: CallContext,
}

impl<'a> CallLine<'a> {
    /// The request `line` is, if it is a well-formed one.
    pub(crate) fn read(line: &'a str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

impl<'de> Deserialize<'de> for CallLine<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CallVisitor)
    }
}

struct CallVisitor;

/// A request's fields, read without a copy of the key.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    #[serde(other)]
    Other,
}

/// A string, borrowed from the line unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Visitor<'de> for CallVisitor {
    type Value = CallLine<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC 2.0 request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut version = false;
        let mut id = None;
        let mut method: Option<Cow<'de, str>> = None;
        let mut params = None;
        while let Some(key) = map.next_key::<Key>()? {
            let seen = match key {
                Key::Jsonrpc => {
                    if map.next_value::<Text<'_>>()?.0 != "2.0" {
                        return Err(de::Error::custom("not JSON-RPC 2.0"));
                    }
                    std::mem::replace(&mut version, true)
                }
                Key::Id => id.replace(map.next_value::<RequestId>()?).is_some(),
                Key::Method => method.replace(map.next_value::<Text<'_>>()?.0).is_some(),
                Key::Params => {
                    let value = if method.as_deref() == Some(ToolInvoke::METHOD) {
                        CallParams::Tool(map.next_value::<Object<_>>()?.0)
                    } else {
                        CallParams::Text(map.next_value()?)
                    };
                    params.replace(value).is_some()
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    false
                }
            };
            if seen {
                return Err(de::Error::custom("a field appears twice"));
            }
        }
        match (version, id, method) {
            (true, Some(id), Some(method)) => Ok(CallLine {
                id,
                method,
                params: params.unwrap_or(CallParams::Text(None)),
            }),
            _ => Err(de::Error::custom("not a request")),
        }
    }
}

/// A struct read only from a JSON object: serde's derive also reads structs from
/// arrays, and this protocol has no positional params.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::{CallLine, CallParams};

    fn read(line: &str) -> Option<(String, String, String)> {
        let call = CallLine::read(line)?;
        let params = match call.params {
            CallParams::Text(None) => "none".to_owned(),
            CallParams::Text(Some(raw)) => format!("text {raw}"),
            CallParams::Tool(tool) => format!(
                "tool {} {}",
                tool.name,
                tool.arguments.map_or("-", |raw| raw.get())
            ),
        };
        Some((call.id.to_string(), call.method.into_owned(), params))
    }

    #[test]
    fn a_tool_call_is_read_in_one_pass_and_other_params_are_kept_as_text() {
        let tool = r#"{"jsonrpc":"2.0","id":7,"method":"tool/invoke","params":{"name":"echo","arguments":{"text":"hi"},"context":{"requestId":"r1"}}}"#;
        assert_eq!(
            read(tool),
            Some((
                "7".into(),
                "tool/invoke".into(),
                r#"tool echo {"text":"hi"}"#.into()
            ))
        );
        let hook = r#"{"jsonrpc":"2.0","id":"a","method":"hook/run","params":{"event":"x"}}"#;
        assert_eq!(
            read(hook),
            Some((
                r#""a""#.into(),
                "hook/run".into(),
                r#"text {"event":"x"}"#.into()
            ))
        );
        // Params before the method stay text; the route reads them.
        let first = r#"{"params":{"name":"echo"},"method":"tool/invoke","id":1,"jsonrpc":"2.0"}"#;
        assert_eq!(
            read(first),
            Some((
                "1".into(),
                "tool/invoke".into(),
                r#"text {"name":"echo"}"#.into()
            ))
        );
        let none = r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":null,"extra":[1]}"#;
        assert_eq!(read(none), Some(("2".into(), "ping".into(), "none".into())));
    }

    #[test]
    fn anything_but_a_well_formed_request_is_left_to_the_peer() {
        for line in [
            // A notification, a response, no version, a wrong version.
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
            r#"{"id":3,"method":"tool/invoke","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"1.0","id":3,"method":"tool/invoke","params":{"name":"echo"}}"#,
            // A `null` id, an id of the wrong type, a method that is not a string.
            r#"{"jsonrpc":"2.0","id":null,"method":"tool/invoke"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"tool/invoke"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            // A field twice, tool params that do not fit, text after the object.
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tool/invoke"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tool/invoke","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tool/invoke","params":["echo"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tool/invoke"} {}"#,
            // Not an object at all.
            r#"[{"jsonrpc":"2.0","id":1,"method":"tool/invoke"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tool/inv"#,
        ] {
            assert!(read(line).is_none(), "{line}");
        }
    }
}
