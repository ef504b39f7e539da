//! JSON-RPC 2.0 messages as this protocol accepts them.
//!
//! Parsing is strict about the envelope (`jsonrpc: "2.0"`, the type of `id`, exactly one
//! of `result` and `error`) and lenient about everything else: unknown members are
//! ignored. What is JSON but not an acceptable message becomes an [`InvalidMessage`]
//! that keeps the request id when one can be recovered, so the receiver can answer
//! `-32600` to the right request.

use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::nesting::{self, MAX_NESTING};
use crate::{ErrorCode, ErrorObject, RequestId};

/// One line of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Expects a [`Response`] with the same id.
    Request(Request),
    /// Expects nothing back, ever.
    Notification(Notification),
    /// Answers a request.
    Response(Response),
}

/// A request: a method call that expects a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Echoed in the response, with its exact JSON type.
    pub id: RequestId,
    /// The method name, e.g. `tool/invoke`.
    pub method: String,
    /// An object (this protocol never uses positional params); `None` when absent.
    pub params: Option<Value>,
}

/// A notification: a method call without an id and without a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method name, e.g. `log`.
    pub method: String,
    /// An object; `None` when absent.
    pub params: Option<Value>,
}

/// A response to a request.
///
/// The result stays the JSON text it arrived as, so that its receiver, which knows the
/// result's type, reads it once, straight into that type ([`Response::result`] reads it
/// as a [`Value`]).
#[derive(Clone, Debug)]
pub struct Response {
    /// The id of the request answered; `None` (`null` on the wire) only in an error
    /// response to a line whose id could not be read.
    pub id: Option<RequestId>,
    /// The `result` member, or the `error` member.
    pub outcome: Result<Box<RawValue>, ErrorObject>,
}

impl Request {
    /// A request with object params.
    pub fn new(id: impl Into<RequestId>, method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            id: id.into(),
            method: method.into(),
            params,
        }
    }
}

impl Notification {
    /// A notification with object params.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            method: method.into(),
            params,
        }
    }
}

impl Response {
    /// A success response.
    pub fn ok(id: RequestId, result: &Value) -> Self {
        Self {
            id: Some(id),
            outcome: Ok(serde_json::value::to_raw_value(result).expect("a JSON value serializes")),
        }
    }

    /// The outcome with the result read as a [`Value`].
    pub fn result(&self) -> Result<Value, ErrorObject> {
        match &self.outcome {
            Ok(raw) => Ok(serde_json::from_str(raw.get()).expect("a raw result is JSON")),
            Err(error) => Err(error.clone()),
        }
    }

    /// An error response; `id` is `None` only when the request's id could not be read.
    pub fn error(id: Option<RequestId>, error: ErrorObject) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }
}

/// Two responses are equal when their ids are and their results are the same JSON value
/// (however it is spaced) or their errors are equal.
impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.result() == other.result()
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Self::Notification(n)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

/// Why a JSON value is not a message this protocol accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidMessage {
    /// The id of the offending request, when it could be read (to answer `-32600` to it).
    pub id: Option<RequestId>,
    /// What is wrong, for a person.
    pub reason: InvalidReason,
}

/// What makes a JSON value an unacceptable message.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// A JSON array: batches are not part of this protocol.
    Batch,
    /// Not a JSON object (a number, a string, `null`...).
    NotAnObject,
    /// `jsonrpc` missing or not `"2.0"`.
    Version,
    /// `method` present but not a string.
    MethodNotString,
    /// `id` present but not a string or a number (or `null` on a request).
    BadId,
    /// Neither a request, a notification nor a response (no `method`, no `id`).
    Shape(&'static str),
    /// A response (an `id` and no `method`) with both `result` and `error`, or neither,
    /// or a success without an id. Never answered (docs/protocol.md §2.3).
    Response(&'static str),
    /// `error` is not an object with an integer `code` and a string `message`.
    BadError(String),
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Batch => {
                f.write_str("batches (JSON arrays) are not supported; send one message per line")
            }
            Self::NotAnObject => f.write_str("a message must be a JSON object"),
            Self::Version => f.write_str("`jsonrpc` must be the string \"2.0\""),
            Self::MethodNotString => f.write_str("`method` must be a string"),
            Self::BadId => f.write_str("`id` must be a string or a number"),
            Self::Shape(what) | Self::Response(what) => f.write_str(what),
            Self::BadError(why) => write!(f, "`error` is malformed: {why}"),
        }
    }
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl std::error::Error for InvalidMessage {}

impl InvalidMessage {
    /// Whether the message was a response, malformed: the receiver does not answer it
    /// (docs/protocol.md §2.3); the request it names, if any, fails at once.
    pub fn is_response(&self) -> bool {
        matches!(
            self.reason,
            InvalidReason::Response(_) | InvalidReason::BadError(_)
        )
    }
}

/// The envelope as it arrives: every member optional and, but for `params`, still raw
/// JSON text borrowed from the line, checked and read by [`Message::from_raw`]. A result
/// is never parsed here at all: its receiver reads it straight into its own type.
/// `null` counts as absent, except for `id` and `result`.
///
/// `P` is how `params` is kept: a [`Value`] for [`Message::parse`], the raw text for a
/// peer that reads requests' params itself (`PeerConfig::raw_params`).
#[derive(Deserialize)]
struct RawMessage<'a, P> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(default = "none")]
    params: Option<P>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

fn none<P>() -> Option<P> {
    None
}

/// A message whose params (of a request or a notification) are kept as `P`.
pub(crate) enum Envelope<P> {
    Request {
        id: RequestId,
        method: String,
        params: Option<P>,
    },
    Notification {
        method: String,
        params: Option<P>,
    },
    Response(Response),
}

/// Keeps `Some` for a member that is present with the value `null` (a plain `Option`
/// would read it as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Whether raw JSON text is the string `"2.0"`, however it is escaped.
fn is_version(raw: &RawValue) -> bool {
    raw.get() == "\"2.0\""
        || serde_json::from_str::<std::borrow::Cow<'_, str>>(raw.get()).is_ok_and(|v| v == VERSION)
}

impl Message {
    /// Parses one line (without its newline). `Err` carries the JSON-RPC error to answer.
    ///
    /// The line must already be known to be UTF-8; the codec checks that first so that
    /// a non-UTF-8 line is reported as such.
    ///
    /// Lines that nest arrays and objects deeper than [`MAX_NESTING`] are refused as
    /// parse errors before they are parsed, wherever the nesting is (results included,
    /// which are otherwise passed on unparsed).
    pub fn parse(line: &str) -> Result<Self, ParseFailure> {
        Ok(match Self::envelope::<Value>(line)? {
            Envelope::Request { id, method, params } => {
                Self::Request(Request { id, method, params })
            }
            Envelope::Notification { method, params } => {
                Self::Notification(Notification { method, params })
            }
            Envelope::Response(response) => Self::Response(response),
        })
    }

    /// [`Message::parse`], keeping params as `P` (a [`Value`], or the raw text).
    pub(crate) fn envelope<'a, P: Deserialize<'a>>(
        line: &'a str,
    ) -> Result<Envelope<P>, ParseFailure> {
        if nesting::exceeds(line, MAX_NESTING).is_some() {
            return Err(ParseFailure::NotJson(format!(
                "arrays and objects nest deeper than {MAX_NESTING} levels"
            )));
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            return match serde_json::from_str::<IgnoredAny>(line) {
                Ok(_) => Err(ParseFailure::Invalid(InvalidMessage {
                    id: None,
                    reason: InvalidReason::Batch,
                })),
                Err(e) => Err(ParseFailure::NotJson(e.to_string())),
            };
        }
        if !trimmed.starts_with('{') {
            // A bare number or string is JSON, but it is not a message.
            return match serde_json::from_str::<IgnoredAny>(line) {
                Ok(_) => Err(ParseFailure::Invalid(InvalidMessage {
                    id: None,
                    reason: InvalidReason::NotAnObject,
                })),
                Err(e) => Err(ParseFailure::NotJson(e.to_string())),
            };
        }
        let raw: RawMessage<'_, P> =
            serde_json::from_str(line).map_err(|e| ParseFailure::NotJson(e.to_string()))?;
        Self::from_raw(raw).map_err(ParseFailure::Invalid)
    }

    /// Checks an envelope from a JSON value (for callers that already hold one).
    pub fn from_value(value: &Value) -> Result<Self, InvalidMessage> {
        match value {
            Value::Array(_) => Err(InvalidMessage {
                id: None,
                reason: InvalidReason::Batch,
            }),
            Value::Object(_) => match Self::parse(&value.to_string()) {
                Ok(message) => Ok(message),
                Err(ParseFailure::Invalid(invalid)) => Err(invalid),
                Err(ParseFailure::NotJson(_)) => unreachable!("a JSON value prints as JSON"),
            },
            _ => Err(InvalidMessage {
                id: None,
                reason: InvalidReason::NotAnObject,
            }),
        }
    }

    fn from_raw<P>(raw: RawMessage<'_, P>) -> Result<Envelope<P>, InvalidMessage> {
        // Recover the id first, so every later complaint can name the request.
        let id = match raw.id.map(RawValue::get) {
            None | Some("null") => None,
            Some(text) => {
                Some(
                    serde_json::from_str::<RequestId>(text).map_err(|_| InvalidMessage {
                        id: None,
                        reason: InvalidReason::BadId,
                    })?,
                )
            }
        };
        let invalid = {
            let id = id.clone();
            move |reason| InvalidMessage {
                id: id.clone(),
                reason,
            }
        };
        if !raw.jsonrpc.is_some_and(is_version) {
            return Err(invalid(InvalidReason::Version));
        }
        if let Some(method) = raw.method {
            let method = serde_json::from_str::<String>(method.get())
                .map_err(|_| invalid(InvalidReason::MethodNotString))?;
            // Params that are not an object are the method's to refuse with `-32602`
            // (docs/protocol.md §4), under the request's own id.
            let params = raw.params;
            return match (raw.id, id) {
                (None, _) => Ok(Envelope::Notification { method, params }),
                (Some(_), Some(id)) => Ok(Envelope::Request { id, method, params }),
                (Some(_), None) => Err(invalid(InvalidReason::BadId)),
            };
        }
        if raw.id.is_none() {
            return Err(invalid(InvalidReason::Shape(
                "a message needs `method` (request or notification) or `id` with `result` or `error` (response)",
            )));
        }
        match (raw.result, raw.error) {
            (Some(_), Some(_)) => Err(invalid(InvalidReason::Response(
                "a response must not carry both `result` and `error`",
            ))),
            (None, None) => Err(invalid(InvalidReason::Response(
                "a response must carry `result` or `error`",
            ))),
            (Some(result), None) => match id {
                Some(id) => Ok(Envelope::Response(Response {
                    id: Some(id),
                    outcome: Ok(result.to_owned()),
                })),
                None => Err(invalid(InvalidReason::Response(
                    "a success response must carry the id of the request it answers",
                ))),
            },
            (None, Some(error)) => {
                let error = serde_json::from_str::<ErrorObject>(error.get())
                    .map_err(|e| invalid(InvalidReason::BadError(e.to_string())))?;
                Ok(Envelope::Response(Response::error(id, error)))
            }
        }
    }

    /// The message as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        to_line(self)
    }

    /// The JSON line of a request whose params are borrowed and of any serializable type:
    /// what `Message::Request(..).to_json()` writes, without building a [`Value`] first.
    pub fn request_json<P: Serialize + ?Sized>(
        id: &RequestId,
        method: &str,
        params: Option<&P>,
    ) -> String {
        to_line(&WireRequest {
            jsonrpc: VERSION,
            id,
            method,
            params,
        })
    }

    /// The JSON line of a response to request `id` (`None`: its id could not be read),
    /// with a result of any serializable type.
    pub fn response_json<R: Serialize + ?Sized>(
        id: Option<&RequestId>,
        outcome: Result<&R, &ErrorObject>,
    ) -> String {
        String::from_utf8(Self::response_bytes(id, outcome)).expect("serde_json writes UTF-8")
    }

    /// [`Message::response_json`] as bytes, for writing: not checked again as UTF-8.
    pub(crate) fn response_bytes<R: Serialize + ?Sized>(
        id: Option<&RequestId>,
        outcome: Result<&R, &ErrorObject>,
    ) -> Vec<u8> {
        match (id, outcome) {
            (Some(id), Ok(result)) => to_line_bytes(&WireSuccess {
                jsonrpc: VERSION,
                id,
                result,
            }),
            (None, Ok(_)) => to_line_bytes(&WireError {
                jsonrpc: VERSION,
                id: None,
                error: &success_without_id(),
            }),
            (id, Err(error)) => to_line_bytes(&WireError {
                jsonrpc: VERSION,
                id,
                error,
            }),
        }
    }

    /// The method of a request or a notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::Request(r) => Some(&r.method),
            Self::Notification(n) => Some(&n.method),
            Self::Response(_) => None,
        }
    }
}

/// Why a line could not be read as a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseFailure {
    /// Not JSON at all (the serde_json error text says where).
    NotJson(String),
    /// JSON, but not an acceptable JSON-RPC message.
    Invalid(InvalidMessage),
}

impl ParseFailure {
    /// The error response the receiver sends back for this line.
    pub fn to_response(&self) -> Response {
        match self {
            Self::NotJson(why) => Response::error(
                None,
                ErrorObject::new(
                    ErrorCode::ParseError,
                    format!("the line is not JSON: {why}"),
                ),
            ),
            Self::Invalid(invalid) => Response::error(
                invalid.id.clone(),
                ErrorObject::new(
                    ErrorCode::InvalidRequest,
                    format!("not a valid JSON-RPC 2.0 message: {}", invalid.reason),
                ),
            ),
        }
    }
}

const VERSION: &str = "2.0";

/// Room for a typical line, so that writing one does not grow its buffer step by step.
pub(crate) const LINE_CAPACITY: usize = 256;

fn to_line(message: &impl Serialize) -> String {
    String::from_utf8(to_line_bytes(message)).expect("serde_json writes UTF-8")
}

fn to_line_bytes(message: &impl Serialize) -> Vec<u8> {
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    serde_json::to_writer(&mut line, message).expect("a message always serializes");
    line
}

/// What a success response without an id degrades to: the other side could not
/// correlate it.
fn success_without_id() -> ErrorObject {
    ErrorObject::new(
        ErrorCode::InternalError,
        "a success response without an id was suppressed",
    )
}

#[derive(Serialize)]
struct WireRequest<'a, P: ?Sized> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a P>,
}

#[derive(Serialize)]
struct WireNotification<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

#[derive(Serialize)]
struct WireSuccess<'a, R: ?Sized> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    result: &'a R,
}

#[derive(Serialize)]
struct WireError<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RequestId>,
    error: &'a ErrorObject,
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Request(r) => WireRequest {
                jsonrpc: VERSION,
                id: &r.id,
                method: &r.method,
                params: r.params.as_ref(),
            }
            .serialize(serializer),
            Self::Notification(n) => WireNotification {
                jsonrpc: VERSION,
                method: &n.method,
                params: n.params.as_ref(),
            }
            .serialize(serializer),
            Self::Response(Response {
                id: Some(id),
                outcome: Ok(result),
            }) => WireSuccess {
                jsonrpc: VERSION,
                id,
                result: &**result,
            }
            .serialize(serializer),
            Self::Response(Response {
                id: None,
                outcome: Ok(_),
            }) => WireError {
                jsonrpc: VERSION,
                id: None,
                error: &success_without_id(),
            }
            .serialize(serializer),
            Self::Response(Response {
                id,
                outcome: Err(error),
            }) => WireError {
                jsonrpc: VERSION,
                id: id.as_ref(),
                error,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
pub(crate) mod schema {
    //! Mirror types that describe the envelope for JSON Schema generation only.
    #![allow(dead_code, unreachable_pub)]

    use schemars::JsonSchema;
    use serde_json::Value;

    use crate::{ErrorObject, RequestId};

    /// The constant `"2.0"`.
    #[derive(JsonSchema)]
    pub enum JsonRpcVersion {
        #[serde(rename = "2.0")]
        V2,
    }

    /// A request: `id` and `method`; answered by exactly one response.
    #[derive(JsonSchema)]
    #[schemars(extend("required" = ["jsonrpc", "id", "method"]))]
    pub struct RequestMessage {
        pub jsonrpc: JsonRpcVersion,
        pub id: RequestId,
        pub method: String,
        #[serde(default)]
        pub params: Option<serde_json::Map<String, Value>>,
    }

    /// A notification: `method` without `id`; never answered.
    #[derive(JsonSchema)]
    #[schemars(extend("not" = {"required": ["id"]}))]
    pub struct NotificationMessage {
        pub jsonrpc: JsonRpcVersion,
        pub method: String,
        #[serde(default)]
        pub params: Option<serde_json::Map<String, Value>>,
    }

    /// A success response.
    #[derive(JsonSchema)]
    #[schemars(extend("required" = ["jsonrpc", "id", "result"]))]
    pub struct SuccessMessage {
        pub jsonrpc: JsonRpcVersion,
        pub id: RequestId,
        pub result: Value,
    }

    /// An error response; `id` is `null` only when the request's id could not be read.
    #[derive(JsonSchema)]
    #[schemars(extend("required" = ["jsonrpc", "id", "error"]))]
    pub struct ErrorMessage {
        pub jsonrpc: JsonRpcVersion,
        pub id: Option<RequestId>,
        pub error: ErrorObject,
    }

    /// Any message of protocol v1: one JSON object per line.
    #[derive(JsonSchema)]
    #[serde(untagged)]
    pub enum AnyMessage {
        Request(RequestMessage),
        Notification(NotificationMessage),
        Success(SuccessMessage),
        Error(ErrorMessage),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(line: &str) -> Result<Message, ParseFailure> {
        Message::parse(line)
    }

    #[test]
    fn the_three_kinds_round_trip() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"log","params":{"level":"info","message":"hi"}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"result":{"ok":true}}"#,
            r#"{"jsonrpc":"2.0","id":"x","result":null}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"slow","data":{"timeoutMs":5}}}"#,
        ];
        for line in cases {
            let message = parse(line).unwrap();
            assert_eq!(message.to_json(), line);
        }
    }

    #[test]
    fn params_of_any_shape_reach_the_method() {
        // The method answers `-32602` under the request's id; a notification's are
        // the handler's to drop.
        let message = parse(r#"{"jsonrpc":"2.0","id":"q","method":"ping","params":3}"#).unwrap();
        assert_eq!(
            message,
            Message::Request(Request::new("q", "ping", Some(json!(3))))
        );
        let message = parse(r#"{"jsonrpc":"2.0","method":"log","params":"x"}"#).unwrap();
        assert_eq!(
            message,
            Message::Notification(Notification::new("log", Some(json!("x"))))
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // 100,000 nested arrays: 200 KB, far under the line limit.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for line in [
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{deep}}}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":1,"result":{deep}}}"#),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":1,"message":"m","data":{deep}}}}}"#
            ),
            deep.clone(),
        ] {
            let failure = parse(&line).unwrap_err();
            assert!(
                matches!(&failure, ParseFailure::NotJson(text) if text.contains("deeper than 128")),
                "{}",
                &format!("{failure:?}")[..100]
            );
        }
    }

    #[test]
    fn an_escaped_version_is_still_the_version() {
        let message = parse(r#"{"jsonrpc":"2\u002e0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(message, Message::Request(Request::new(1, "ping", None)));
    }

    #[test]
    fn null_counts_as_absent_except_for_id_and_result() {
        // `params`, `error` and `method` that are `null` are not there.
        let message = parse(r#"{"jsonrpc":"2.0","method":"log","params":null}"#).unwrap();
        assert_eq!(
            message,
            Message::Notification(Notification::new("log", None))
        );
        let message = parse(r#"{"jsonrpc":"2.0","id":3,"result":7,"error":null}"#).unwrap();
        assert_eq!(
            message,
            Message::Response(Response::ok(3.into(), &json!(7)))
        );
        let message = parse(r#"{"jsonrpc":"2.0","id":3,"method":null,"result":1}"#).unwrap();
        assert!(matches!(message, Message::Response(_)));
        // A `null` result is a result.
        let message = parse(r#"{"jsonrpc":"2.0","id":3,"result":null}"#).unwrap();
        assert_eq!(
            message,
            Message::Response(Response::ok(3.into(), &Value::Null))
        );
    }

    #[test]
    fn a_result_stays_the_text_it_arrived_as() {
        let line = r#"{"jsonrpc":"2.0","id":"r","result":{"b": [1, 2.50], "a": "\u00e9"}}"#;
        let Message::Response(response) = parse(line).unwrap() else {
            panic!("a response")
        };
        let raw = response.outcome.as_ref().unwrap();
        assert_eq!(raw.get(), r#"{"b": [1, 2.50], "a": "\u00e9"}"#);
        assert_eq!(response.result().unwrap(), json!({"a": "é", "b": [1, 2.5]}));
        // Sent on as it came; equal to the same value spaced otherwise.
        assert_eq!(
            Message::Response(response.clone()).to_json(),
            r#"{"jsonrpc":"2.0","id":"r","result":{"b": [1, 2.50], "a": "\u00e9"}}"#
        );
        assert_eq!(
            response,
            Response::ok("r".into(), &json!({"a": "é", "b": [1, 2.5]}))
        );
    }

    #[test]
    fn unknown_members_are_ignored() {
        let message = parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":[1,2]}"#).unwrap();
        assert_eq!(message, Message::Request(Request::new(1, "ping", None)));
    }

    #[test]
    fn bad_envelopes_are_classified_and_keep_the_id() {
        let cases: &[(&str, Option<RequestId>, InvalidReason)] = &[
            (
                r#"[{"jsonrpc":"2.0","method":"ping","id":1}]"#,
                None,
                InvalidReason::Batch,
            ),
            ("42", None, InvalidReason::NotAnObject),
            (r#""ping""#, None, InvalidReason::NotAnObject),
            (
                r#"{"id":7,"method":"ping"}"#,
                Some(7.into()),
                InvalidReason::Version,
            ),
            (
                r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#,
                Some(7.into()),
                InvalidReason::Version,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":5}"#,
                Some(7.into()),
                InvalidReason::MethodNotString,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                None,
                InvalidReason::BadId,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                None,
                InvalidReason::BadId,
            ),
            (
                r#"{"jsonrpc":"2.0"}"#,
                None,
                InvalidReason::Shape(
                    "a message needs `method` (request or notification) or `id` with `result` or `error` (response)",
                ),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1}"#,
                Some(1.into()),
                InvalidReason::Response("a response must carry `result` or `error`"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#,
                Some(1.into()),
                InvalidReason::Response("a response must not carry both `result` and `error`"),
            ),
        ];
        for (line, id, reason) in cases {
            match parse(line) {
                Err(ParseFailure::Invalid(invalid)) => {
                    assert_eq!(&invalid.id, id, "{line}");
                    assert_eq!(&invalid.reason, reason, "{line}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_error_object_is_invalid() {
        let failure = parse(r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#).unwrap_err();
        assert!(matches!(
            failure,
            ParseFailure::Invalid(InvalidMessage {
                id: Some(_),
                reason: InvalidReason::BadError(_)
            })
        ));
    }

    #[test]
    fn not_json_is_a_parse_error_answered_with_null_id() {
        for line in ["hello", "{\"jsonrpc\":", "[1,", "Content-Length: 12"] {
            let failure = parse(line).unwrap_err();
            assert!(matches!(failure, ParseFailure::NotJson(_)), "{line}");
            let response = Message::Response(failure.to_response());
            let json: Value = serde_json::from_str(&response.to_json()).unwrap();
            assert_eq!(json["id"], Value::Null);
            assert_eq!(json["error"]["code"], -32700);
        }
    }

    #[test]
    fn invalid_requests_are_answered_with_their_id() {
        let failure = parse(r#"{"id":"abc","method":"ping"}"#).unwrap_err();
        let json: Value =
            serde_json::from_str(&Message::Response(failure.to_response()).to_json()).unwrap();
        assert_eq!(json["id"], json!("abc"));
        assert_eq!(json["error"]["code"], -32600);
    }

    #[test]
    fn messages_deserialize_through_serde_too() {
        let message: Message =
            serde_json::from_value(json!({"jsonrpc":"2.0","method":"x"})).unwrap();
        assert_eq!(message.method(), Some("x"));
        assert!(serde_json::from_value::<Message>(json!([1])).is_err());
    }
}
