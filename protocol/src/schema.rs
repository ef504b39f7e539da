//! The JSON Schema of every message, generated from the wire types.
//!
//! [`protocol_schema`] builds one JSON Schema 2020-12 document: its root accepts any
//! message envelope, `$defs` holds every params and result type, and `x-methods` maps
//! each method name to the definitions of its params and result. The generated document
//! is checked in as `protocol/schema/protocol.schema.json` (available without this
//! feature as [`crate::SCHEMA_JSON`]); a snapshot test fails on any change to it that
//! was not reviewed and committed.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::message::schema::AnyMessage;
use crate::methods::{
    Cancel, ChannelCall, CommandRun, ContextEngineCall, Direction, FixtureCallHost, FixtureEcho,
    FixtureLog, FixtureProgress, FixtureSleep, FixtureStderr, HookRun, HostCallMethod,
    HostGetConfig, HttpHandle, Initialize, Initialized, Log, METHODS, MethodCall, NotificationType,
    Ping, Progress, ProviderCall, RequestType, ServiceStart, ServiceStop, Shutdown, ToolInvoke,
};

fn request<M>(generator: &mut SchemaGenerator, methods: &mut Map<String, Value>)
where
    M: RequestType,
    M::Params: JsonSchema,
    M::Result: JsonSchema,
{
    let params = generator.subschema_for::<M::Params>();
    let result = generator.subschema_for::<M::Result>();
    methods.insert(
        M::METHOD.to_owned(),
        json!({ "direction": direction(M::METHOD), "params": params, "result": result }),
    );
}

fn notification<N>(generator: &mut SchemaGenerator, methods: &mut Map<String, Value>)
where
    N: NotificationType,
    N::Params: JsonSchema,
{
    let params = generator.subschema_for::<N::Params>();
    methods.insert(
        N::METHOD.to_owned(),
        json!({ "direction": direction(N::METHOD), "params": params }),
    );
}

fn direction(method: &str) -> Direction {
    METHODS
        .iter()
        .find(|(name, ..)| *name == method)
        .map(|(_, direction, _)| *direction)
        .expect("every method is listed in METHODS")
}

/// The whole protocol as one JSON Schema document.
pub fn protocol_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let envelope = generator.subschema_for::<AnyMessage>();
    let mut methods = Map::new();
    request::<Initialize>(&mut generator, &mut methods);
    notification::<Initialized>(&mut generator, &mut methods);
    request::<Shutdown>(&mut generator, &mut methods);
    request::<Ping>(&mut generator, &mut methods);
    notification::<Cancel>(&mut generator, &mut methods);
    notification::<Progress>(&mut generator, &mut methods);
    notification::<Log>(&mut generator, &mut methods);
    request::<ToolInvoke>(&mut generator, &mut methods);
    request::<HookRun>(&mut generator, &mut methods);
    request::<CommandRun>(&mut generator, &mut methods);
    request::<MethodCall>(&mut generator, &mut methods);
    request::<HttpHandle>(&mut generator, &mut methods);
    request::<ServiceStart>(&mut generator, &mut methods);
    request::<ServiceStop>(&mut generator, &mut methods);
    request::<ProviderCall>(&mut generator, &mut methods);
    request::<ChannelCall>(&mut generator, &mut methods);
    request::<ContextEngineCall>(&mut generator, &mut methods);
    request::<HostCallMethod>(&mut generator, &mut methods);
    request::<HostGetConfig>(&mut generator, &mut methods);
    request::<FixtureEcho>(&mut generator, &mut methods);
    request::<FixtureSleep>(&mut generator, &mut methods);
    request::<FixtureProgress>(&mut generator, &mut methods);
    request::<FixtureCallHost>(&mut generator, &mut methods);
    request::<FixtureLog>(&mut generator, &mut methods);
    request::<FixtureStderr>(&mut generator, &mut methods);
    assert_eq!(
        methods.len(),
        METHODS.len(),
        "every method in METHODS has a schema"
    );
    let definitions = generator.take_definitions(true);
    let mut root = envelope.to_value();
    let root = root
        .as_object_mut()
        .expect("the envelope schema is an object");
    let mut document = Map::new();
    document.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    document.insert(
        "$id".into(),
        json!("https://outpost.invalid/schema/protocol-v1.json"),
    );
    document.insert("title".into(), json!("Outpost plugin protocol v1"));
    document.insert(
        "description".into(),
        json!("Any one line of the protocol. `x-methods` maps each method to the schemas of its params and result. Generated from outpost-protocol; see docs/protocol.md."),
    );
    document.append(root);
    document.insert("$defs".into(), Value::Object(definitions));
    document.insert("x-methods".into(), Value::Object(methods));
    Value::Object(document)
}

/// The schema document as checked in: pretty-printed with a final newline.
pub fn protocol_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&protocol_schema()).expect("schemas serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails on any wire change not reflected in the checked-in schema. After reviewing
    /// the change (and updating docs/protocol.md), regenerate with
    /// `UPDATE_EXPECT=1 cargo test -p outpost-protocol --all-features schema`.
    #[test]
    fn the_checked_in_schema_matches_the_types() {
        expect_test::expect_file!["../schema/protocol.schema.json"]
            .assert_eq(&protocol_schema_text());
    }

    #[test]
    fn the_embedded_schema_is_the_checked_in_file() {
        assert!(
            crate::SCHEMA_JSON == protocol_schema_text(),
            "SCHEMA_JSON is stale: it was compiled before schema/protocol.schema.json changed; rebuild"
        );
    }
}
