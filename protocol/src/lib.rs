//! Outpost plugin protocol, version 1.
//!
//! Plugins are child processes that speak JSON-RPC 2.0 with their host (the Outpost
//! supervisor) over stdin and stdout, one JSON message per line. This crate is the wire
//! contract in Rust, shared by the supervisor, the Rust SDK and the conformance suite:
//!
//! - [`Message`] and friends: the JSON-RPC envelope, with ids that keep their JSON type
//!   ([`RequestId`]) and error codes that survive codes they do not know ([`ErrorCode`]);
//! - [`methods`]: every method with its params and result types;
//! - [`Registration`]: what a plugin offers, and the rules a registration must keep;
//! - [`NdjsonCodec`]: the framing, for which a bad line is an item, never the end;
//! - `peer` (feature `peer`): a bidirectional async peer with timeouts, cancellation and
//!   bounded queues.
//!
//! docs/protocol.md in the repository is the normative specification; this crate
//! follows it. The JSON Schema of every message, generated from these types, is checked
//! in under `protocol/schema/`.
//!
//! # Example
//!
//! Decoding a stream where one line is garbage:
//!
//! ```
//! use bytes::BytesMut;
//! use outpost_protocol::{Frame, Message, NdjsonCodec};
//! use tokio_util::codec::Decoder;
//!
//! let mut codec = NdjsonCodec::new(outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES);
//! let mut buf = BytesMut::from(
//!     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\nhello\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}\n",
//! );
//! let mut frames = Vec::new();
//! while let Some(frame) = codec.decode(&mut buf).unwrap() {
//!     frames.push(frame);
//! }
//! assert!(matches!(&frames[0], Frame::Message(Message::Request(r)) if r.method == "ping"));
//! assert!(matches!(&frames[1], Frame::Invalid(bad) if bad.line == 2));
//! assert!(matches!(&frames[2], Frame::Message(Message::Notification(_))));
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod codec;
mod error;
mod id;
mod message;
pub mod methods;
pub mod nesting;
mod registration;
#[cfg(feature = "schema")]
pub mod schema;

#[cfg(feature = "peer")]
pub mod peer;

pub use codec::{Frame, InvalidLine, LineProblem, NdjsonCodec};
pub use error::{ErrorCode, ErrorObject};
pub use id::RequestId;
pub use message::{
    InvalidMessage, InvalidReason, Message, Notification, ParseFailure, Request, Response,
};
pub use methods::{NotificationType, RequestType, parse_registrations};
pub use registration::{
    CONVERSATION_HOOKS, CORE_METHOD_NAMESPACES, ChannelRegistration, CommandRegistration,
    ContextEngineRegistration, GatewayMethodRegistration, HOOK_EVENTS, HookRegistration,
    HttpRouteRegistration, LEGACY_HOOKS, MATCHER_HOOKS, ManifestField, PROMPT_INJECTION_HOOKS,
    ProviderCapability, ProviderRegistration, RESERVED_COMMANDS, Registration, RegistrationKind,
    RegistrationProblem, RejectionCode, RouteAuth, RouteMatch, ServiceRegistration,
    ToolRegistration, hook_key, route_matches, routes_overlap,
};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// Every protocol version this crate speaks, most preferred first.
pub const SUPPORTED_VERSIONS: &[&str] = &[PROTOCOL_VERSION];

/// Environment variable the host sets to the protocol version it launched the plugin
/// for. A program started without it was not started by a host and may print a hint
/// for humans and exit.
pub const ENV_PROTOCOL: &str = "OUTPOST_PROTOCOL";

/// Environment variable the host sets to the plugin's manifest id.
pub const ENV_PLUGIN_ID: &str = "OUTPOST_PLUGIN_ID";

/// The default line limit: 16 MiB, announced in `initialize` as
/// `limits.maxMessageBytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A plugin that exits with this code failed permanently (bad config, missing
/// dependency): the host does not restart it. It is `EX_CONFIG` from sysexits.h.
pub const EXIT_PERMANENT_FAILURE: i32 = 78;

/// The JSON Schema of every message (`protocol/schema/protocol.schema.json`): the root
/// accepts any message, `$defs` holds every type, `x-methods` maps methods to their
/// params and result schemas.
pub const SCHEMA_JSON: &str = include_str!("../schema/protocol.schema.json");

/// Which half of a method a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodPart {
    /// The `params` member.
    Params,
    /// The `result` member of a success response (requests only).
    Result,
}

/// The JSON Schema of one method's params or result, as a standalone document that
/// carries the protocol's `$defs`. `None` for a method or part protocol v1 does not
/// define.
pub fn method_schema(method: &str, part: MethodPart) -> Option<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let document = DOCUMENT
        .get_or_init(|| serde_json::from_str(SCHEMA_JSON).expect("the checked-in schema is JSON"));
    let key = match part {
        MethodPart::Params => "params",
        MethodPart::Result => "result",
    };
    let schema = document.get("x-methods")?.get(method)?.get(key)?;
    let serde_json::Value::Object(schema) = schema else {
        return Some(schema.clone());
    };
    let mut standalone = schema.clone();
    standalone.insert("$defs".to_owned(), document["$defs"].clone());
    Some(serde_json::Value::Object(standalone))
}
