//! The checked-in JSON Schema accepts what the types produce and refuses what they
//! refuse: it is the contract that other-language plugins and the conformance suite
//! validate against.

use outpost_protocol::{MethodPart, SCHEMA_JSON, method_schema};
use serde_json::{Value, json};

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

#[test]
fn the_envelope_schema_accepts_messages_and_refuses_broken_ones() {
    let envelope = validator(&serde_json::from_str(SCHEMA_JSON).unwrap());
    let good = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": "a", "method": "ping", "params": {}}),
        json!({"jsonrpc": "2.0", "method": "log", "params": {"level": "info", "message": "m"}}),
        json!({"jsonrpc": "2.0", "id": 1, "result": null}),
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "m"}}),
    ];
    for message in good {
        assert!(envelope.is_valid(&message), "{message}");
    }
    let bad = [
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": {}, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}),
        json!({"jsonrpc": "2.0", "id": 1}),
        json!({"jsonrpc": "2.0", "id": null, "result": 1}),
    ];
    for message in bad {
        assert!(!envelope.is_valid(&message), "{message}");
    }
}

#[test]
fn method_schemas_check_params_and_results() {
    let cases = [
        (
            "initialize",
            MethodPart::Params,
            json!({
                "protocolVersions": ["1"], "host": {"name": "outpost"}, "pluginId": "p",
                "config": {}, "limits": {"maxMessageBytes": 1024, "maxConcurrentRequests": 4}
            }),
            true,
        ),
        (
            "initialize",
            MethodPart::Params,
            json!({"protocolVersions": "1"}),
            false,
        ),
        (
            "initialize",
            MethodPart::Result,
            json!({
                "protocolVersion": "1", "plugin": {"id": "p"},
                "registrations": [
                    {"kind": "tool", "name": "echo", "description": "d", "inputSchema": {"type": "object"}},
                    {"kind": "httpRoute", "path": "/x", "auth": "plugin", "match": "prefix"},
                    {"kind": "provider", "capability": "webSearch", "id": "g"}
                ]
            }),
            true,
        ),
        (
            "initialize",
            MethodPart::Result,
            json!({
                "protocolVersion": "1", "plugin": {"id": "p"},
                "registrations": [{"kind": "httpRoute", "path": "/x"}]
            }),
            false,
        ),
        (
            "initialize",
            MethodPart::Result,
            json!({"protocolVersion": "1", "plugin": {}}),
            false,
        ),
        (
            "tool/invoke",
            MethodPart::Result,
            json!({"content": [{"type": "text", "text": "hi"}]}),
            true,
        ),
        (
            "tool/invoke",
            MethodPart::Result,
            json!({"content": [{"type": "text"}]}),
            false,
        ),
        (
            "command/run",
            MethodPart::Result,
            json!({"text": "pong"}),
            true,
        ),
        (
            "command/run",
            MethodPart::Result,
            json!({"reply": "pong"}),
            false,
        ),
        ("hook/run", MethodPart::Result, json!(null), true),
        (
            "hook/run",
            MethodPart::Result,
            json!({"prependContext": "c"}),
            true,
        ),
        ("hook/run", MethodPart::Result, json!("text"), false),
        (
            "log",
            MethodPart::Params,
            json!({"level": "warning", "message": "m"}),
            true,
        ),
        (
            "log",
            MethodPart::Params,
            json!({"level": "loud", "message": "m"}),
            false,
        ),
        ("$/cancel", MethodPart::Params, json!({"id": "7"}), true),
        ("$/cancel", MethodPart::Params, json!({}), false),
        ("method/call", MethodPart::Result, json!([1, 2]), true),
        ("ping", MethodPart::Result, json!({}), true),
    ];
    for (method, part, instance, valid) in cases {
        let schema = method_schema(method, part).unwrap_or_else(|| panic!("{method} {part:?}"));
        assert_eq!(
            validator(&schema).is_valid(&instance),
            valid,
            "{method} {part:?} {instance}"
        );
    }
    assert!(method_schema("no/such", MethodPart::Params).is_none());
    assert!(method_schema("log", MethodPart::Result).is_none());
}
