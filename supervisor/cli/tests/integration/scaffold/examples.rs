//! The Python and Node example plugins (`plugins/python-example`, `plugins/node-example`),
//! driven as real child processes with scripted sessions.
//!
//! Every protocol feature is checked on both examples through one table entry each
//! ([`Example`]); what is particular to a plugin (its tools, its config) has its own
//! tests at the end.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::client::PluginProcess;

/// What the protocol tests need to know about a plugin: an example, or a plugin
/// generated from a template.
pub(crate) struct Example {
    pub(crate) root: PathBuf,
    pub(crate) id: String,
    /// A valid config, as the host would send it (defaults filled in).
    pub(crate) config: Value,
    /// A config the plugin cannot work with: it must exit 78.
    pub(crate) bad_config: Value,
    /// A quick tool call: (name, arguments).
    pub(crate) quick_tool: (String, Value),
    /// A tool call that runs until cancelled: (name, arguments), if the plugin has one.
    pub(crate) slow_tool: Option<(String, Value)>,
    pub(crate) command: String,
    /// Whether the plugin sends a `log` notification while starting.
    pub(crate) logs_at_start: bool,
    /// Keeps a generated plugin's directory alive as long as the subject.
    pub(crate) _dir: Option<tempfile::TempDir>,
}

fn example_root(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(dir)
}

pub(crate) fn python() -> Example {
    Example {
        root: example_root("python-example"),
        id: "notes".into(),
        config: json!({"maxNotes": 100, "maxNoteLength": 2000}),
        bad_config: json!({"maxNotes": 0}),
        quick_tool: ("note_list".into(), json!({})),
        slow_tool: Some(("note_wait".into(), json!({"timeoutSeconds": 300}))),
        command: "notes".into(),
        logs_at_start: true,
        _dir: None,
    }
}

pub(crate) fn node() -> Example {
    Example {
        root: example_root("node-example"),
        id: "clock".into(),
        config: json!({"defaultTimezone": "UTC"}),
        bad_config: json!({"defaultTimezone": "Mars/Olympus_Mons"}),
        quick_tool: ("current_time".into(), json!({})),
        slow_tool: Some(("sleep_then_answer".into(), json!({"seconds": 300}))),
        command: "time".into(),
        logs_at_start: true,
        _dir: None,
    }
}

impl Example {
    pub(crate) fn manifest(&self) -> Value {
        let path = self.root.join("openclaw.plugin.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
    }

    /// Starts the plugin the way its manifest's `outpost` block says.
    pub(crate) fn spawn(&self) -> PluginProcess {
        self.spawn_with(false)
    }

    pub(crate) fn spawn_with(&self, by_hand: bool) -> PluginProcess {
        super::spawn_from_manifest(&self.root, &self.manifest(), &self.id, by_hand)
    }

    /// Starts the plugin and completes the handshake, accepting every registration.
    pub(crate) fn start(&self) -> (PluginProcess, Value) {
        let mut plugin = self.spawn();
        let result = plugin.call(
            json!(1),
            "initialize",
            super::initialize_params(&self.id, &self.config),
        );
        super::accept_all(&mut plugin, &result);
        (plugin, result)
    }

    fn slow_tool(&self) -> (&str, &Value) {
        let (name, arguments) = self.slow_tool.as_ref().expect("a slow tool");
        (name, arguments)
    }

    fn quick_tool_params(&self) -> Value {
        tool_params(&self.quick_tool.0, &self.quick_tool.1)
    }
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error response, got {response}"))
}

fn tool_params(name: &str, arguments: &Value) -> Value {
    json!({"name": name, "arguments": arguments, "context": {"timeoutMs": 300_000}})
}

// -----------------------------------------------------------------------------------------
// Protocol features, on every example
// -----------------------------------------------------------------------------------------

fn manifest_declares_what_the_plugin_registers(example: &Example) {
    let manifest = example.manifest();
    assert_eq!(manifest["id"], example.id);
    let schema = &manifest["configSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    for (name, property) in schema["properties"].as_object().expect("properties") {
        assert!(
            property.get("default").is_some(),
            "config `{name}` has no default"
        );
    }
    let outpost = &manifest["outpost"];
    if let Some(entry) = outpost["entry"].as_str() {
        assert!(
            example.root.join(entry).is_file(),
            "outpost.entry `{entry}` is missing"
        );
        assert!(
            outpost["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|arg| arg == entry),
            "the entry is not among outpost.args"
        );
    }

    let (_plugin, result) = example.start();
    let mut tools: Vec<&str> = result["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "tool")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut declared: Vec<&str> = manifest["contracts"]["tools"]
        .as_array()
        .expect("contracts.tools")
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tools.sort_unstable();
    declared.sort_unstable();
    assert_eq!(
        tools, declared,
        "contracts.tools must list exactly the registered tools"
    );
}

fn handshake_picks_a_version_and_names_the_plugin(example: &Example) {
    let mut plugin = example.spawn();
    let mut params = super::initialize_params(&example.id, &example.config);
    params["protocolVersions"] = json!(["7", "1"]);
    let result = plugin.call(json!(1), "initialize", params);
    assert_eq!(result["protocolVersion"], "1");
    assert_eq!(result["plugin"]["id"], example.id);
    assert!(!result["registrations"].as_array().unwrap().is_empty());
    assert!(
        !example.logs_at_start
            || plugin.skipped.iter().any(|l| l.json["method"] == "log"
                && l.json["params"]["level"].is_string()
                && l.json["params"]["message"].is_string()),
        "expected a `log` notification at start, got {:?}",
        plugin.skipped
    );
}

fn ping_and_not_initialized_before_initialize(example: &Example) {
    let mut plugin = example.spawn();
    assert_eq!(plugin.call(json!("early"), "ping", json!({})), json!({}));
    let response = plugin.request(json!(2), "tool/invoke", example.quick_tool_params());
    assert_eq!(error_code(&response), -32002, "{response}");
    let response = plugin.request(json!(3), "shutdown", json!({}));
    assert_eq!(error_code(&response), -32002, "{response}");
    // Still answers `initialize` afterwards.
    plugin.call(
        json!(4),
        "initialize",
        super::initialize_params(&example.id, &example.config),
    );
}

fn second_initialize_is_refused(example: &Example) {
    let (mut plugin, _) = example.start();
    let response = plugin.request(
        json!(2),
        "initialize",
        super::initialize_params(&example.id, &example.config),
    );
    assert_eq!(error_code(&response), -32007, "{response}");
    // The session is unaffected.
    let (name, arguments) = &example.quick_tool;
    plugin.call(json!(3), "tool/invoke", tool_params(name, arguments));
}

fn unsupported_version_is_refused_with_both_lists(example: &Example) {
    let mut plugin = example.spawn();
    let mut params = super::initialize_params(&example.id, &example.config);
    params["protocolVersions"] = json!(["2", "3"]);
    let response = plugin.request(json!(1), "initialize", params);
    assert_eq!(error_code(&response), -32004, "{response}");
    assert_eq!(response["error"]["data"]["supported"], json!(["1"]));
    assert_eq!(response["error"]["data"]["requested"], json!(["2", "3"]));
    plugin.close_stdin();
    assert_eq!(plugin.wait_exit().code(), Some(0));
}

fn unknown_methods_and_names(example: &Example) {
    let (mut plugin, _) = example.start();
    let response = plugin.request(json!(2), "tool/frobnicate", json!({}));
    assert_eq!(error_code(&response), -32601, "{response}");
    // (method, params, kind, name) for names this plugin never registered.
    let cases = [
        (
            "tool/invoke",
            json!({"name": "no_such_tool", "arguments": {}, "context": {}}),
            "tool",
            "no_such_tool",
        ),
        (
            "command/run",
            json!({"name": "nosuch", "commandBody": "/nosuch", "context": {}}),
            "command",
            "nosuch",
        ),
        (
            "hook/run",
            json!({"event": "gateway_stop", "payload": {}, "context": {}}),
            "hook",
            "gateway_stop",
        ),
        (
            "method/call",
            json!({"method": "other.thing", "params": {}, "context": {}}),
            "gatewayMethod",
            "other.thing",
        ),
        (
            "http/handle",
            json!({"route": "/x", "request": {"method": "GET", "path": "/x", "headers": {}}, "context": {}}),
            "httpRoute",
            "/x",
        ),
        ("service/start", json!({"id": "svc"}), "service", "svc"),
        (
            "provider/call",
            json!({"capability": "webSearch", "id": "nosuch", "operation": "search", "params": {}, "context": {}}),
            "provider",
            "webSearch:nosuch",
        ),
        (
            "channel/call",
            json!({"id": "nosuch", "operation": "sendText", "params": {}, "context": {}}),
            "channel",
            "nosuch",
        ),
        (
            "contextEngine/call",
            json!({"id": "nosuch", "operation": "assemble", "params": {}, "context": {}}),
            "contextEngine",
            "nosuch",
        ),
    ];
    // -32008 with the registration kind as on the wire and the name as called (a
    // provider's is `<capability>:<id>`, a route's the requested path): §11.
    for (index, (method, params, kind, name)) in cases.into_iter().enumerate() {
        let response = plugin.request(json!(10 + index), method, params);
        assert_eq!(error_code(&response), -32008, "{method}: {response}");
        let data = &response["error"]["data"];
        assert_eq!(
            data,
            &json!({"kind": kind, "name": name}),
            "{method}: {response}"
        );
    }
}

fn bad_params_are_refused(example: &Example) {
    let (mut plugin, _) = example.start();
    let (name, _) = &example.quick_tool;
    let cases = [
        ("tool/invoke", json!([name])),
        (
            "tool/invoke",
            json!({"name": name, "arguments": "not an object", "context": {}}),
        ),
        (
            "tool/invoke",
            json!({"name": name, "arguments": {}, "context": "none"}),
        ),
        (
            "command/run",
            json!({"name": example.command, "args": 42, "commandBody": "/x", "context": {}}),
        ),
        (
            "command/run",
            json!({"name": example.command, "commandBody": 42, "context": {}}),
        ),
        (
            "hook/run",
            json!({"event": "message_received", "payload": {}, "context": "none"}),
        ),
        ("method/call", json!({"method": ["x.y"], "context": {}})),
        ("service/start", json!({"id": {"not": "a string"}})),
    ];
    for (index, (method, params)) in cases.into_iter().enumerate() {
        let response = plugin.request(json!(index + 2), method, params.clone());
        assert_eq!(
            error_code(&response),
            -32602,
            "{method} {params}: {response}"
        );
    }
    // Params that are a scalar are -32602 under the request's id; null or absent params
    // are no params: fine for `ping`, missing members for `tool/invoke` (§4).
    for (id, params, expected) in [
        ("scalar", "\"text\"", Some(-32602)),
        ("null", "null", Some(-32602)),
    ] {
        plugin.send_line(&format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"tool/invoke","params":{params}}}"#
        ));
        let response = plugin.response_to(&json!(id)).json;
        assert_eq!(
            Some(error_code(&response)),
            expected,
            "{params}: {response}"
        );
    }
    for line in [
        r#"{"jsonrpc":"2.0","id":"ping-null","method":"ping","params":null}"#,
        r#"{"jsonrpc":"2.0","id":"ping-none","method":"ping"}"#,
    ] {
        plugin.send_line(line);
        let response = plugin.next_response().json;
        assert_eq!(response["result"], json!({}), "{line}: {response}");
    }
}

fn garbage_is_answered_and_the_session_goes_on(example: &Example) {
    let (mut plugin, _) = example.start();
    // (bytes, expected code, expected id)
    let cases: [(&[u8], i64, Value); 10] = [
        (b"hello world", -32700, Value::Null),
        (b"Content-Length: 42", -32700, Value::Null),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,", -32700, Value::Null),
        (b"\xff\xfe\xfd", -32700, Value::Null),
        (
            b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
            -32600,
            Value::Null,
        ),
        (b"42", -32600, Value::Null),
        (b"{\"id\":5,\"method\":\"ping\"}", -32600, json!(5)),
        (
            b"{\"jsonrpc\":\"1.0\",\"id\":\"v\",\"method\":\"ping\"}",
            -32600,
            json!("v"),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
            -32600,
            Value::Null,
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"ping\"}",
            -32600,
            Value::Null,
        ),
    ];
    for (bytes, code, id) in cases {
        let mut line = bytes.to_vec();
        line.push(b'\n');
        plugin.send_bytes(&line);
        let response = plugin.next_response().json;
        assert_eq!(
            error_code(&response),
            code,
            "{}: {response}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            response["id"],
            id,
            "{}: {response}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(plugin.call(json!("after"), "ping", json!({})), json!({}));
}

fn framing_tolerates_crlf_bom_and_blank_lines(example: &Example) {
    let mut plugin = example.spawn();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": super::initialize_params(&example.id, &example.config)});
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(init.to_string().as_bytes());
    bytes.extend_from_slice(b"\r\n\n   \t\r\n\r\n");
    bytes.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\r\n");
    plugin.send_bytes(&bytes);
    // Answers may come in any order (§1).
    let mut answers = [plugin.next_response().json, plugin.next_response().json];
    answers.sort_by_key(|a| a["id"].as_i64());
    assert!(
        answers[0]["result"]["registrations"].is_array(),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1], json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

fn notifications_are_never_answered(example: &Example) {
    let (mut plugin, _) = example.start();
    plugin.notify("$/cancel", json!({"id": 999}));
    plugin.notify("$/cancel", json!({"id": "never-sent"}));
    plugin.notify("$/progress", json!({"id": 3, "progress": 1}));
    plugin.notify("some/futureNotification", json!({"x": 1}));
    plugin.notify(
        "tool/invoke",
        json!({"name": &example.quick_tool.0, "arguments": {}}),
    );
    plugin.send_line(r#"{"jsonrpc":"2.0","method":"ping"}"#);
    // The very next response is the ping's: nothing above was answered.
    plugin.request_no_wait(json!("p"), "ping", json!({}));
    let response = plugin.next_response().json;
    assert_eq!(response, json!({"jsonrpc": "2.0", "id": "p", "result": {}}));
}

fn ids_keep_their_json_type(example: &Example) {
    let (mut plugin, _) = example.start();
    for id in [
        "7",
        "7.0",
        "7.5",
        "\"7\"",
        "-3",
        "1e3",
        "9007199254740991",
        "\"\"",
        "\"a \\\"quoted\\\" id\"",
    ] {
        plugin.send_line(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"ping","params":{{}}}}"#
        ));
        let line = plugin.next_response();
        // Same JSON type and value (§4): a number comes back a number of the same value
        // (7.0 may come back as 7, 1e3 as 1000), a string the same string.
        let sent: Value = serde_json::from_str(id).unwrap();
        let got = &line.json["id"];
        let same = match (&sent, got) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            _ => *got == sent,
        };
        assert!(
            same,
            "the id {id} did not come back with its type and value: {}",
            line.raw
        );
    }
}

fn long_lines_are_read_and_oversized_lines_skipped(example: &Example) {
    let (mut plugin, _) = example.start();
    // A 1 MiB line (far over the 64 KiB of many line readers) is an ordinary message.
    let pad = "x".repeat(1 << 20);
    assert_eq!(
        plugin.call(json!(2), "ping", json!({"pad": pad})),
        json!({})
    );

    // With a small announced limit, a longer line is skipped and answered -32006.
    let mut plugin = example.spawn();
    let mut params = super::initialize_params(&example.id, &example.config);
    params["limits"]["maxMessageBytes"] = json!(8192);
    plugin.call(json!(1), "initialize", params);
    let long = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "y".repeat(100_000)
    );
    plugin.send_line(&long);
    let response = plugin.next_response().json;
    assert_eq!(error_code(&response), -32006, "{response}");
    assert_eq!(response["id"], Value::Null);
    assert_eq!(response["error"]["data"]["limit"], 8192);
    // The size of a line discarded as it streams by may be a lower bound.
    let size = response["error"]["data"]["size"]
        .as_u64()
        .unwrap_or_default();
    assert!(size > 8192 && size <= long.len() as u64, "{response}");
    assert_eq!(plugin.call(json!(3), "ping", json!({})), json!({}));
}

fn slow_calls_do_not_block_and_cancel_answers_32800(example: &Example) {
    let (mut plugin, _) = example.start();
    let (name, arguments) = example.slow_tool();
    plugin.request_no_wait(json!(10), "tool/invoke", tool_params(name, arguments));
    // The slow call runs for minutes: these are answered meanwhile.
    assert_eq!(plugin.call(json!(11), "ping", json!({})), json!({}));
    let (quick, quick_arguments) = &example.quick_tool;
    plugin.call(
        json!(12),
        "tool/invoke",
        tool_params(quick, quick_arguments),
    );
    // The same id while the first is in flight is refused with id null (an answer under
    // the id would be taken for the first call's), and does not disturb it.
    plugin.request_no_wait(json!(10), "ping", json!({}));
    let response = plugin.next_response().json;
    assert_eq!(error_code(&response), -32600, "{response}");
    assert_eq!(response["id"], Value::Null, "{response}");
    assert_eq!(response["error"]["data"], json!({"id": 10}), "{response}");
    plugin.notify("$/cancel", json!({"id": 10}));
    let response = plugin.response_to(&json!(10)).json;
    assert_eq!(error_code(&response), -32800, "{response}");
    // A second cancel for the answered id is ignored.
    plugin.notify("$/cancel", json!({"id": 10}));
    plugin.request_no_wait(json!(13), "ping", json!({}));
    assert_eq!(plugin.next_response().json["id"], 13);
}

fn cancel_matches_the_id_type(example: &Example) {
    let (mut plugin, _) = example.start();
    let (name, arguments) = example.slow_tool();
    plugin.send_line(&format!(
        r#"{{"jsonrpc":"2.0","id":"5","method":"tool/invoke","params":{}}}"#,
        tool_params(name, arguments)
    ));
    // 5 is not "5": this cancels nothing.
    plugin.notify("$/cancel", json!({"id": 5}));
    assert_eq!(plugin.call(json!(6), "ping", json!({})), json!({}));
    plugin.notify("$/cancel", json!({"id": "5"}));
    let response = plugin.next_response().json;
    assert_eq!(response["id"], "5", "{response}");
    assert_eq!(error_code(&response), -32800);
}

fn host_get_config_is_a_plugin_request(example: &Example) {
    let (mut plugin, _) = example.start();
    let params = json!({"name": example.command, "args": "config", "commandBody": format!("/{} config", example.command), "context": {}});
    plugin.request_no_wait(json!(20), "command/run", params.clone());
    let request = plugin.next_plugin_request();
    assert_eq!(request["method"], "host/getConfig", "{request}");
    assert_eq!(request["jsonrpc"], "2.0");
    let host_id = request["id"].clone();
    assert!(host_id.is_string() || host_id.is_number(), "{request}");
    plugin.send(&json!({"jsonrpc": "2.0", "id": host_id, "result": {"config": {"marker": "from-the-host"}}}));
    let result = plugin.response_to(&json!(20)).json;
    let text = result["result"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    assert!(text.contains("from-the-host"), "{text}");

    // A second call uses a fresh id; an error from the host is the handler's failure.
    plugin.request_no_wait(json!(21), "command/run", params);
    let request = plugin.next_plugin_request();
    assert_ne!(request["id"], host_id, "the plugin reused its request id");
    plugin.send(&json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32005, "message": "forbidden by policy"}}));
    let response = plugin.response_to(&json!(21)).json;
    assert_eq!(error_code(&response), -32000, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("forbidden by policy"),
        "{response}"
    );

    // Responses to ids it never sent are ignored, not answered.
    plugin.send(&json!({"jsonrpc": "2.0", "id": "nobody", "result": {}}));
    plugin.send(&json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "line 9 is not JSON"}}));
    plugin.request_no_wait(json!(22), "ping", json!({}));
    assert_eq!(plugin.next_response().json["id"], 22);
}

fn rejected_registrations_are_not_served(example: &Example) {
    let mut plugin = example.spawn();
    let result = plugin.call(
        json!(1),
        "initialize",
        super::initialize_params(&example.id, &example.config),
    );
    let registrations = result["registrations"].as_array().unwrap();
    let index = registrations
        .iter()
        .position(|r| r["kind"] == "command")
        .expect("a command registration");
    plugin.notify(
        "initialized",
        json!({"accepted": [], "rejected": [{"index": index, "kind": "command", "key": example.command, "code": "conflict", "reason": "taken by plugin `other`"}]}),
    );
    let response = plugin.request(
        json!(2),
        "command/run",
        json!({"name": example.command, "commandBody": format!("/{}", example.command), "context": {}}),
    );
    assert_eq!(error_code(&response), -32008, "{response}");
}

fn shutdown_cancels_calls_then_eof_exits_0(example: &Example) {
    let (mut plugin, _) = example.start();
    if let Some((name, arguments)) = &example.slow_tool {
        plugin.request_no_wait(json!(30), "tool/invoke", tool_params(name, arguments));
        assert_eq!(plugin.call(json!(31), "ping", json!({})), json!({}));
        plugin.request_no_wait(json!(32), "shutdown", json!({}));
        let mut answers = [plugin.next_response().json, plugin.next_response().json];
        answers.sort_by_key(|a| a["id"].as_i64());
        assert_eq!(error_code(&answers[0]), -32800, "{}", answers[0]);
        assert_eq!(answers[1]["result"], json!({}), "{}", answers[1]);
    } else {
        assert_eq!(plugin.call(json!(32), "shutdown", json!({})), json!({}));
    }
    // After shutdown: pings yes, new work no.
    assert_eq!(plugin.call(json!(33), "ping", json!({})), json!({}));
    let response = plugin.request(json!(34), "tool/invoke", example.quick_tool_params());
    assert_eq!(error_code(&response), -32003, "{response}");
    closes_cleanly_at_eof(&mut plugin);
}

/// Closes the plugin's stdin and expects it to exit 0.
fn closes_cleanly_at_eof(plugin: &mut PluginProcess) {
    plugin.close_stdin();
    assert_eq!(
        plugin.wait_exit().code(),
        Some(0),
        "stderr:\n{}",
        plugin.stderr()
    );
}

fn eof_without_shutdown_exits_0_at_once(example: &Example) {
    let (mut plugin, _) = example.start();
    if let Some((name, arguments)) = &example.slow_tool {
        plugin.request_no_wait(json!(40), "tool/invoke", tool_params(name, arguments));
        assert_eq!(plugin.call(json!(41), "ping", json!({})), json!({}));
        // The slow call would run for minutes; EOF must not wait for it.
    }
    closes_cleanly_at_eof(&mut plugin);
}

fn unusable_config_exits_78_with_a_reason(example: &Example) {
    let mut plugin = example.spawn();
    plugin.request_no_wait(
        json!(1),
        "initialize",
        super::initialize_params(&example.id, &example.bad_config),
    );
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(78), "stderr:\n{}", plugin.stderr());
    let stderr = plugin.stderr();
    assert!(
        stderr.contains("config"),
        "the reason should name the config: {stderr}"
    );
    // No protocol message claims success.
    assert!(
        plugin
            .drain()
            .iter()
            .all(|l| l.json.get("result").is_none())
    );
}

fn started_by_hand_exits_2_with_a_hint(example: &Example) {
    let mut plugin = example.spawn_with(true);
    assert_eq!(plugin.wait_exit().code(), Some(2));
    let stderr = plugin.stderr();
    assert!(stderr.contains("outpost"), "{stderr}");
    assert!(plugin.drain().is_empty(), "nothing may reach stdout");
}

fn cancel_is_answered_exactly_once(example: &Example) {
    let (mut plugin, _) = example.start();
    // A call and its cancellation in one write: whichever wins, one answer.
    let call = json!({"jsonrpc": "2.0", "id": 50, "method": "tool/invoke", "params": example.quick_tool_params()});
    let cancel = json!({"jsonrpc": "2.0", "method": "$/cancel", "params": {"id": 50}});
    plugin.send_bytes(format!("{call}\n{cancel}\n").as_bytes());
    let answer = plugin.response_to(&json!(50)).json;
    assert!(
        answer.get("result").is_some() || error_code(&answer) == -32800,
        "{answer}"
    );
    plugin.request_no_wait(json!(51), "ping", json!({}));
    assert_eq!(
        plugin.next_response().json["id"],
        51,
        "a second answer to 50?"
    );
}

/// A protocol check on a plugin.
pub(crate) type Check = fn(&Example);

/// The checks every plugin must pass, whatever it offers: run on the examples (one test
/// each, below) and on each generated template (`new::*`).
pub(crate) const GENERIC: &[(&str, Check)] = &[
    (
        "manifest_declares_what_the_plugin_registers",
        manifest_declares_what_the_plugin_registers,
    ),
    (
        "handshake_picks_a_version_and_names_the_plugin",
        handshake_picks_a_version_and_names_the_plugin,
    ),
    (
        "ping_and_not_initialized_before_initialize",
        ping_and_not_initialized_before_initialize,
    ),
    ("second_initialize_is_refused", second_initialize_is_refused),
    (
        "unsupported_version_is_refused_with_both_lists",
        unsupported_version_is_refused_with_both_lists,
    ),
    ("unknown_methods_and_names", unknown_methods_and_names),
    ("bad_params_are_refused", bad_params_are_refused),
    (
        "garbage_is_answered_and_the_session_goes_on",
        garbage_is_answered_and_the_session_goes_on,
    ),
    (
        "framing_tolerates_crlf_bom_and_blank_lines",
        framing_tolerates_crlf_bom_and_blank_lines,
    ),
    (
        "notifications_are_never_answered",
        notifications_are_never_answered,
    ),
    ("ids_keep_their_json_type", ids_keep_their_json_type),
    (
        "long_lines_are_read_and_oversized_lines_skipped",
        long_lines_are_read_and_oversized_lines_skipped,
    ),
    (
        "cancel_is_answered_exactly_once",
        cancel_is_answered_exactly_once,
    ),
    (
        "shutdown_cancels_calls_then_eof_exits_0",
        shutdown_cancels_calls_then_eof_exits_0,
    ),
    (
        "eof_without_shutdown_exits_0_at_once",
        eof_without_shutdown_exits_0_at_once,
    ),
    (
        "unusable_config_exits_78_with_a_reason",
        unusable_config_exits_78_with_a_reason,
    ),
    (
        "started_by_hand_exits_2_with_a_hint",
        started_by_hand_exits_2_with_a_hint,
    ),
];

/// Runs every generic check on `subject`, and fails with the list of those that failed.
pub(crate) fn run_generic_checks(subject: &Example) {
    let failed: Vec<&str> = GENERIC
        .iter()
        .filter(|(_, check)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(subject))).is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "{}: {} of {} checks failed (their panics are above): {}",
        subject.root.display(),
        failed.len(),
        GENERIC.len(),
        failed.join(", ")
    );
}

/// One test per protocol feature and example: `examples::python::ping_...`.
macro_rules! for_each_example {
    ($($test:ident),* $(,)?) => {
        mod python {
            $( #[test] fn $test() { super::$test(&super::python()) } )*
        }
        mod node {
            $( #[test] fn $test() { super::$test(&super::node()) } )*
        }
    };
}

for_each_example!(
    manifest_declares_what_the_plugin_registers,
    handshake_picks_a_version_and_names_the_plugin,
    ping_and_not_initialized_before_initialize,
    second_initialize_is_refused,
    unsupported_version_is_refused_with_both_lists,
    unknown_methods_and_names,
    bad_params_are_refused,
    garbage_is_answered_and_the_session_goes_on,
    framing_tolerates_crlf_bom_and_blank_lines,
    notifications_are_never_answered,
    ids_keep_their_json_type,
    long_lines_are_read_and_oversized_lines_skipped,
    slow_calls_do_not_block_and_cancel_answers_32800,
    cancel_matches_the_id_type,
    host_get_config_is_a_plugin_request,
    rejected_registrations_are_not_served,
    shutdown_cancels_calls_then_eof_exits_0,
    eof_without_shutdown_exits_0_at_once,
    unusable_config_exits_78_with_a_reason,
    started_by_hand_exits_2_with_a_hint,
    cancel_is_answered_exactly_once,
);

// -----------------------------------------------------------------------------------------
// What each plugin does
// -----------------------------------------------------------------------------------------

fn text_of(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"))
}

#[test]
fn notes_tools_hook_command_and_method() {
    let (mut plugin, _) = python().start();
    let saved = plugin.call(
        json!(2),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "buy milk"})),
    );
    assert_eq!(text_of(&saved), "Saved note 1.");
    assert_eq!(saved["details"]["number"], 1);
    let command = |args: &str| json!({"name": "notes", "args": args, "commandBody": format!("/notes {args}"), "context": {"isAuthorizedSender": true}});
    let added = plugin.call(json!(3), "command/run", command("add call Alice"));
    assert_eq!(added["text"], "Saved note 2.");
    let listed = plugin.call(
        json!(4),
        "tool/invoke",
        tool_params("note_list", &json!({"contains": "ALICE"})),
    );
    assert_eq!(text_of(&listed), "2. call Alice");
    for id in 5..8 {
        let hook = plugin.call(
            json!(id),
            "hook/run",
            json!({"event": "message_received", "payload": {"content": "hi"}, "context": {}}),
        );
        assert_eq!(hook, Value::Null);
    }
    let count = plugin.call(
        json!(8),
        "method/call",
        json!({"method": "notes.count", "params": {}, "context": {}}),
    );
    assert_eq!(count, json!({"count": 2, "messagesSeen": 3}));
    let shown = plugin.call(json!(9), "command/run", command(""));
    assert_eq!(shown["text"], "1. buy milk\n2. call Alice");
    let cleared = plugin.call(json!(10), "command/run", command("clear"));
    assert_eq!(cleared["text"], "Cleared 2 notes.");
    let missing = plugin.request(
        json!(11),
        "tool/invoke",
        tool_params("note_add", &json!({})),
    );
    assert_eq!(error_code(&missing), -32602, "{missing}");
    assert_eq!(missing["error"]["data"]["errors"][0]["path"], "/text");
}

#[test]
fn notes_keeps_at_most_max_notes_from_the_config() {
    let example = Example {
        config: json!({"maxNotes": 1, "maxNoteLength": 5}),
        ..python()
    };
    let (mut plugin, _) = example.start();
    let too_long = plugin.call(
        json!(2),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "123456"})),
    );
    assert_eq!(too_long["isError"], true, "{too_long}");
    plugin.call(
        json!(3),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "one"})),
    );
    let full = plugin.call(
        json!(4),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "two"})),
    );
    assert_eq!(full["isError"], true, "{full}");
    assert!(text_of(&full).contains("full"), "{full}");
}

#[test]
fn note_wait_returns_the_next_note() {
    let (mut plugin, _) = python().start();
    plugin.call(
        json!(2),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "old"})),
    );
    plugin.request_no_wait(
        json!(3),
        "tool/invoke",
        tool_params("note_wait", &json!({"timeoutSeconds": 300})),
    );
    // The wait is registered once a ping sent after it is answered (one reader, in order).
    plugin.call(json!(4), "ping", json!({}));
    plugin.request_no_wait(
        json!(5),
        "tool/invoke",
        tool_params("note_add", &json!({"text": "new"})),
    );
    let mut answers = [plugin.next_response().json, plugin.next_response().json];
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(
        text_of(&answers[0]["result"]),
        "New note 2: new",
        "{}",
        answers[0]
    );
    assert_eq!(text_of(&answers[1]["result"]), "Saved note 2.");
    let quick = plugin.call(
        json!(6),
        "tool/invoke",
        tool_params("note_wait", &json!({"timeoutSeconds": 0})),
    );
    assert_eq!(text_of(&quick), "No new note within 0 s.");
}

#[test]
fn clock_tools_hook_command_and_method() {
    let example = Example {
        config: json!({"defaultTimezone": "Asia/Tokyo"}),
        ..node()
    };
    let (mut plugin, _) = example.start();
    let default = plugin.call(
        json!(2),
        "tool/invoke",
        tool_params("current_time", &json!({})),
    );
    assert_eq!(default["details"]["timezone"], "Asia/Tokyo");
    assert!(
        default["details"]["iso"]
            .as_str()
            .unwrap()
            .ends_with("+09:00"),
        "{default}"
    );
    let utc = plugin.call(
        json!(3),
        "tool/invoke",
        tool_params("current_time", &json!({"timezone": "UTC"})),
    );
    assert!(
        utc["details"]["iso"].as_str().unwrap().ends_with('Z'),
        "{utc}"
    );
    assert!(utc["details"]["epochMs"].is_u64());
    let unknown = plugin.call(
        json!(4),
        "tool/invoke",
        tool_params("current_time", &json!({"timezone": "Nowhere/Special"})),
    );
    assert_eq!(unknown["isError"], true, "{unknown}");
    let slept = plugin.call(
        json!(5),
        "tool/invoke",
        tool_params(
            "sleep_then_answer",
            &json!({"seconds": 0, "answer": "done"}),
        ),
    );
    assert_eq!(text_of(&slept), "done");
    let hook = plugin.call(json!(6), "hook/run", json!({"event": "before_prompt_build", "payload": {"prompt": "What time is it?"}, "context": {}}));
    let context = hook["prependSystemContext"]
        .as_str()
        .unwrap_or_else(|| panic!("{hook}"));
    assert!(
        context.starts_with("The current time is ") && context.ends_with("(Asia/Tokyo)."),
        "{context}"
    );
    let time = plugin.call(json!(7), "command/run", json!({"name": "time", "args": "Europe/Paris", "commandBody": "/time Europe/Paris", "context": {}}));
    assert!(
        time["text"].as_str().unwrap().ends_with("(Europe/Paris)"),
        "{time}"
    );
    let now = plugin.call(
        json!(8),
        "method/call",
        json!({"method": "clock.now", "params": {"timezone": "UTC"}, "context": {}}),
    );
    assert_eq!(now["timezone"], "UTC");
    let bad = plugin.request(
        json!(9),
        "tool/invoke",
        tool_params("sleep_then_answer", &json!({"seconds": -1})),
    );
    assert_eq!(error_code(&bad), -32602, "{bad}");
}
