//! The gateway API of a real `outpost serve`, over real sockets: authentication, bad
//! input, calls and their cancellation, the registry's events, gateways connected over
//! WebSocket, plugin HTTP routes, reload, metrics, and the commands that use the API.

mod harness;
mod plugin_admin;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use jsonrpsee::core::client::{ClientT as _, Subscription, SubscriptionClientT as _};
use serde_json::{Value, json};

use harness::{
    Plugin, RawWs, SETTLE, Server, TOKEN, alive, eventually, output_within, raw, resident_bytes,
};

/// The params object of a `call` of the fixture's `slow` tool.
fn slow(ms: u64) -> Value {
    json!({"kind": "tool", "name": "slow", "args": {"ms": ms}})
}

/// The text of a tool result, as JSON.
fn tool_text(result: &Value) -> Value {
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

/// Object params for the jsonrpsee clients.
fn object(value: &Value) -> jsonrpsee::core::params::ObjectParams {
    let mut params = jsonrpsee::core::params::ObjectParams::new();
    for (key, value) in value.as_object().unwrap() {
        params.insert(key, value).unwrap();
    }
    params
}

#[test]
fn every_request_needs_the_token_but_health() {
    let server = Server::start(&[Plugin::new("a")]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "plugins.list"}).to_string();
    let json_type = ("content-type", "application/json");
    for headers in [
        vec![json_type],
        vec![
            json_type,
            ("authorization", "Bearer wrong-token-0123456789"),
        ],
        vec![json_type, ("authorization", TOKEN)],
    ] {
        let response = raw(server.api, "POST", "/", &headers, body.as_bytes()).unwrap();
        assert_eq!(response.status, 401, "{headers:?}: {}", response.body);
        assert!(response.json().get("result").is_none(), "{}", response.body);
        assert!(response.header("www-authenticate").is_some());
    }
    let metrics = raw(server.api, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(metrics.status, 401);
    // A WebSocket upgrade without the token is refused before it is one.
    let upgrade = raw(
        server.api,
        "GET",
        "/",
        &[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(upgrade.status, 401);

    let bearer = format!("Bearer {TOKEN}");
    let response = raw(
        server.api,
        "POST",
        "/",
        &[json_type, ("authorization", &bearer)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["result"]["plugins"][0]["id"], "a");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            raw(server.api, "GET", path, &[], b"").unwrap().status,
            200,
            "{path}"
        );
    }
}

#[test]
fn bad_requests_get_errors_that_name_the_problem_and_everything_goes_on() {
    let server = Server::start(&[Plugin::new("a")]);
    let bearer = format!("Bearer {TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    let post = |body: &[u8]| raw(server.api, "POST", "/", &headers, body).unwrap();

    let malformed = post(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    assert_eq!(
        malformed.json()["error"]["code"],
        -32700,
        "{}",
        malformed.body
    );

    let huge = vec![b' '; 17 * 1024 * 1024];
    let too_large = post(&huge);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    // The API's own code: -32007 means "already initialized" in protocol.md §11.
    let error = &too_large.json()["error"];
    assert_eq!(error["code"], -32022, "{}", too_large.body);
    assert_eq!(error["data"]["limit"], 16 * 1024 * 1024 + 64 * 1024);

    let cases = [
        ("nope", json!({}), -32601, "no method `nope`"),
        ("plugins.inspect", json!({}), -32602, "missing field `id`"),
        (
            "plugins.inspect",
            json!([1]),
            -32602,
            "positional params are not accepted",
        ),
        (
            "plugins.inspect",
            json!({"id": "ghost"}),
            -32008,
            "no plugin `ghost`",
        ),
        (
            "plugins.restart",
            json!({"id": "ghost"}),
            -32008,
            "no plugin `ghost`",
        ),
        (
            "call",
            json!({"kind": "tooool", "name": "echo"}),
            -32602,
            "unknown variant `tooool`",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "echo", "argz": {}}),
            -32602,
            "unknown field `argz`",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "echo", "args": [1]}),
            -32602,
            "must be a JSON object, not an array",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "nothing"}),
            -32008,
            "no plugin registered tool `nothing`",
        ),
        (
            "call",
            json!({"kind": "provider", "name": "vec", "operation": "x"}),
            -32602,
            "<capability>:<id>",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "echo", "context": {"sessionKey": "s", "session": "s"}}),
            -32602,
            "unknown member `session` in `context`; its members are `sessionKey`, `agentId`",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "echo", "context": ["s"]}),
            -32602,
            "`context` must be an object",
        ),
        (
            "call",
            json!({"kind": "tool", "name": "echo", "operation": "embed"}),
            -32602,
            "`operation` is only for the kinds that have operations (provider, channel, contextEngine), not `tool`",
        ),
        (
            "registry.subscribe",
            json!({}),
            -32600,
            "need a WebSocket connection",
        ),
        (
            "gateway.answer",
            json!({"requestId": 99, "result": 1}),
            -32602,
            "no gateway request 99 is waiting",
        ),
        (
            "gateway.answer",
            json!({"requestId": 99}),
            -32602,
            "exactly one of `result` and `error`",
        ),
    ];
    for (method, params, code, says) in cases {
        let answer = server.rpc(method, &params);
        assert_eq!(answer["error"]["code"], code, "{method} {params}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{method} {params}: {answer}"
        );
    }
    // The server and the plugin go on; an explicit `operation: null` is no operation.
    let answer = server.rpc(
        "call",
        &json!({"kind": "tool", "name": "echo", "operation": null, "context": {"sessionKey": "s", "timeoutMs": 5}}),
    );
    assert_eq!(tool_text(&answer["result"])["name"], "echo", "{answer}");
}

/// A batch over plain HTTP: its answers, by id.
fn batch(server: &Server, requests: &[Value]) -> (u16, Value) {
    let bearer = format!("Bearer {TOKEN}");
    let response = raw(
        server.api,
        "POST",
        "/",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        Value::Array(requests.to_vec()).to_string().as_bytes(),
    )
    .unwrap();
    (response.status, response.json())
}

/// The answer of `id` in a batch's answers.
fn by_id(answers: &Value, id: u64) -> &Value {
    answers
        .as_array()
        .unwrap_or_else(|| panic!("not a batch answer: {answers}"))
        .iter()
        .find(|answer| answer["id"] == id)
        .unwrap_or_else(|| panic!("no answer {id} in {answers}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gets_the_errors_its_requests_get_alone_and_limits_have_codes_of_their_own() {
    let server = Server::start(&[Plugin::new("a")]);
    let request = |id: u64, method: &str, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let (status, answers) = batch(
        &server,
        &[
            request(1, "plugins.lst", json!({})),
            request(2, "gateway.offer", json!({"methods": ["gw.*"]})),
            request(3, "registry.unsubscribe", json!([7])),
            request(4, "server.info", json!({"x": 1})),
            request(5, "server.info", json!({})),
        ],
    );
    assert_eq!(status, 200, "{answers}");
    let unknown = &by_id(&answers, 1)["error"];
    assert_eq!(unknown["code"], -32601, "{answers}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("it has: call, call.cancel"),
        "{answers}"
    );
    for id in [2, 3] {
        let error = &by_id(&answers, id)["error"];
        assert_eq!(error["code"], -32600, "{answers}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("need a WebSocket connection"),
            "{answers}"
        );
    }
    assert_eq!(by_id(&answers, 4)["error"]["code"], -32602, "{answers}");
    assert!(by_id(&answers, 5)["result"]["pid"].is_u64(), "{answers}");

    // Too many requests in one batch: the API's code, not jsonrpsee's -32010 (in
    // protocol.md §11, "plugin exited").
    let many: Vec<Value> = (0..33)
        .map(|id| request(id, "server.info", json!({})))
        .collect();
    let (_, answer) = batch(&server, &many);
    assert_eq!(answer["error"]["code"], -32024, "{answer}");
    assert_eq!(answer["error"]["data"], json!({"limit": 32, "size": 33}));
    let (_, answers) = batch(&server, &many[..32]);
    assert_eq!(answers.as_array().map(Vec::len), Some(32));

    // Over a WebSocket: the same explanations in a batch...
    let mut ws = RawWs::connect(server.api).await;
    let requests = json!([
        request(1, "plugins.lst", json!({})),
        request(2, "registry.unsubscribe", json!({"subscription": 99})),
        request(
            3,
            "registry.unsubscribe",
            json!({"subscription": 99, "x": 1})
        ),
    ]);
    ws.send(&requests.to_string()).await;
    let answers = ws.answer().await;
    assert_eq!(by_id(&answers, 1)["error"]["code"], -32601, "{answers}");
    assert_eq!(by_id(&answers, 2)["result"], false, "{answers}");
    assert_eq!(by_id(&answers, 3)["error"]["code"], -32602, "{answers}");

    // ...one subscription past the session's limit gets the API's code, not jsonrpsee's
    // -32006 ("message too large" in protocol.md §11)...
    for id in 0..64 {
        let answer = ws.request(100 + id, "registry.subscribe", &json!({})).await;
        assert!(answer["result"].is_u64(), "{answer}");
    }
    let refused = ws
        .request(200, "gateway.offer", &json!({"config": true}))
        .await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert_eq!(refused["error"]["data"]["limit"], 64, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already holds 64 subscriptions"),
        "{refused}"
    );

    // ...and a message over the limit is still refused by jsonrpsee, with its -32007 and
    // no id (docs/gateway-api.md §3.3 says so); the session goes on.
    let mut huge =
        String::from(r#"{"jsonrpc":"2.0","id":1,"method":"server.info","params":{"x":""#);
    huge.push_str(&"x".repeat(17 * 1024 * 1024));
    huge.push_str(r#""}}"#);
    ws.send(&huge).await;
    let refused = ws.answer().await;
    assert_eq!(refused["error"]["code"], -32007, "{refused}");
    assert_eq!(refused["id"], Value::Null, "{refused}");
    let answer = ws.request(300, "server.info", &json!({})).await;
    assert!(answer["result"]["pid"].is_u64(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_takes_the_subscription_by_name_or_by_position() {
    let server = Server::start(&[Plugin::new("a")]);
    let mut ws = RawWs::connect(server.api).await;
    for (subscribe, unsubscribe, params) in [
        ("registry.subscribe", "registry.unsubscribe", json!({})),
        (
            "gateway.offer",
            "gateway.withdraw",
            json!({"methods": ["gw.*"]}),
        ),
    ] {
        let id = ws.request(1, subscribe, &params).await["result"].clone();
        assert!(id.is_u64(), "{id}");
        let answer = ws
            .request(2, unsubscribe, &json!({"subscription": id}))
            .await;
        assert_eq!(answer["result"], true, "{unsubscribe} by name: {answer}");
        let answer = ws
            .request(3, unsubscribe, &json!({"subscription": id}))
            .await;
        assert_eq!(answer["result"], false, "{unsubscribe} again: {answer}");
        // Positionally, as jsonrpsee's clients send it.
        let id = ws.request(4, subscribe, &params).await["result"].clone();
        let answer = ws.request(5, unsubscribe, &json!([id])).await;
        assert_eq!(
            answer["result"], true,
            "{unsubscribe} by position: {answer}"
        );
        for (bad, says) in [
            (json!({"sub": 1}), "unknown field `sub`"),
            (json!({}), "missing field `subscription`"),
            (json!([1, 2]), "one subscription id, not 2"),
            (
                json!({"subscription": true}),
                "a number or a string, not a boolean",
            ),
        ] {
            let answer = ws.request(6, unsubscribe, &bad).await;
            assert_eq!(answer["error"]["code"], -32602, "{bad}: {answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(says),
                "{bad}: {answer}"
            );
        }
    }
    // Over plain HTTP: what the subscribe methods get, naming every subscription method.
    for method in ["registry.unsubscribe", "gateway.withdraw"] {
        let answer = server.rpc(method, &json!({"subscription": 1}));
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "(registry.subscribe, registry.unsubscribe, gateway.offer, gateway.withdraw)"
            ) && message.contains("need a WebSocket connection"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_from_another_run_gets_a_snapshot_instead_of_a_replay() {
    let mut server = Server::start(&[Plugin::new("a")]);
    let info = server.rpc("server.info", &json!({}))["result"].clone();
    let first_run = info["run"].as_str().unwrap().to_owned();
    assert_eq!(first_run.len(), 16, "{info}");
    assert!(first_run.bytes().all(|b| b.is_ascii_hexdigit()), "{info}");
    let snapshot = server.rpc("registry.snapshot", &json!({}))["result"].clone();
    assert_eq!(snapshot["run"], first_run.as_str(), "{snapshot}");
    // Some events into the first run, so its `seq` is ahead of the second run's start.
    for _ in 0..3 {
        let restarted = server.rpc("plugins.restart", &json!({"id": "a"}));
        assert!(restarted["result"].is_object(), "{restarted}");
        server.wait_ready(1);
    }
    let since = server.rpc("registry.snapshot", &json!({}))["result"]["seq"]
        .as_u64()
        .unwrap();

    // Within the run, `since` and `run` replay; the events carry the run.
    let mut ws = RawWs::connect(server.api).await;
    let answer = ws
        .request(
            1,
            "registry.subscribe",
            &json!({"since": since - 2, "run": first_run}),
        )
        .await;
    assert!(answer["result"].is_u64(), "{answer}");
    let event = ws.receive().await;
    let event = &event["params"]["result"];
    assert_eq!(event["seq"], since - 1, "{event}");
    assert_eq!(event["run"], first_run.as_str(), "{event}");
    drop(ws);

    server.stop();
    server.launch(1);
    let second_run = server.rpc("server.info", &json!({}))["result"]["run"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second_run, first_run);
    let mut ws = RawWs::connect(server.api).await;
    let answer = ws
        .request(
            1,
            "registry.subscribe",
            &json!({"since": since, "run": first_run}),
        )
        .await;
    assert!(answer["result"].is_u64(), "{answer}");
    let first = ws.receive().await;
    let first = &first["params"]["result"];
    assert_eq!(first["type"], "snapshot", "{first}");
    assert_eq!(first["run"], second_run.as_str(), "{first}");
    assert_eq!(first["reason"]["kind"], "otherRun", "{first}");
    assert!(
        first["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("restarted"),
        "{first}"
    );
    assert_eq!(first["snapshot"]["plugins"][0]["id"], "a", "{first}");
    // Without `since`: a snapshot that says why too.
    let answer = ws.request(2, "registry.subscribe", &json!({})).await;
    assert!(answer["result"].is_u64(), "{answer}");
    let fresh = ws.receive().await;
    assert_eq!(fresh["params"]["result"]["reason"]["kind"], "subscribed");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(server.dir.path().join("registry.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["run"], second_run.as_str(), "{file}");
}

#[test]
fn a_stateful_tool_keeps_its_state_across_two_outpost_calls() {
    // The Python example plugin keeps notes in memory: only a running server keeps them.
    let mut server = Server::prepare("");
    let config = format!(
        "{{ plugins: {{ load: {{ paths: ['{notes}'] }}, entries: {{ notes: {{ enabled: true }} }} }},
           outpost: {{ api: {{ listen: '{api}' }} }} }}",
        notes = harness::examples().join("python-example").display(),
        api = server.api,
    );
    std::fs::write(&server.config, config).unwrap();
    server.launch(1);
    let added = server.outpost(&[
        "call",
        "tool",
        "note_add",
        "--args",
        r#"{"text": "buy milk"}"#,
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = server.outpost(&["call", "tool", "note_list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("1. buy milk"),
        "the server kept the note: {text}"
    );
    assert!(
        listed.stderr.is_empty(),
        "no note about starting plugins locally: {}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // With --standalone, a plugin of its own: no notes.
    let alone = server.outpost(&["call", "tool", "note_list", "--standalone"]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    assert!(String::from_utf8_lossy(&alone.stdout).contains("No notes"));

    // With no server, `call` says so and starts the plugins itself.
    server.stop();
    let fallback = server.outpost(&["call", "tool", "note_list"]);
    assert!(
        fallback.status.success(),
        "{}",
        String::from_utf8_lossy(&fallback.stderr)
    );
    let stderr = String::from_utf8_lossy(&fallback.stderr);
    assert!(stderr.contains("no `outpost serve` answers at"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_numbered_without_a_gap_across_a_restart_and_a_reload() {
    let server = Server::start(&[Plugin::new("a"), Plugin::new("b").without_tools()]);
    let since = server.rpc("registry.snapshot", &json!({}))["result"]["seq"]
        .as_u64()
        .unwrap();
    let client = server.ws_client().await;
    let mut events: Subscription<Value> = client
        .subscribe(
            "registry.subscribe",
            object(&json!({"since": since})),
            "registry.unsubscribe",
        )
        .await
        .unwrap();

    // A restart, then a reload that changes `b`, adds `c` and removes nothing.
    let restarted = server.rpc("plugins.restart", &json!({"id": "a"}));
    assert_eq!(restarted["result"]["id"], "a", "{restarted}");
    let plugins = [
        Plugin::new("a"),
        Plugin::new("b").without_tools().env("CHANGED", "1"),
        Plugin::new("c").without_tools(),
    ];
    server.write_config(&plugins);
    let reloaded = server.rpc("config.reload", &json!({}));
    let applied = &reloaded["result"]["applied"];
    assert_eq!(applied["started"], json!(["c"]), "{reloaded}");
    assert_eq!(applied["restarted"], json!(["b"]), "{reloaded}");
    assert_eq!(applied["unchanged"], json!(["a"]), "{reloaded}");

    let mut seen = Vec::new();
    let mut expected_seq = since + 1;
    let mut ready = std::collections::BTreeSet::new();
    tokio::time::timeout(SETTLE, async {
        while ready.len() < 3 {
            let event = events.next().await.unwrap().unwrap();
            assert_eq!(event["seq"], expected_seq, "no gap, no repeat: {event}");
            expected_seq += 1;
            let (kind, plugin) = (
                event["type"].as_str().unwrap(),
                event["plugin"].as_str().unwrap(),
            );
            if kind == "pluginState" {
                let state = event["state"].as_str().unwrap();
                seen.push(format!("{plugin} {state}"));
                // Each of a (restarted), b (reconfigured) and c (new) ends ready.
                if state == "ready" {
                    ready.insert(plugin.to_owned());
                }
            } else {
                seen.push(format!("{kind} {plugin}"));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("events so far: {seen:?}"));
    for expected in [
        "a stopping",
        "a starting",
        "b stopped",
        "pluginAdded c",
        "c ready",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} missing from {seen:?}"
        );
    }

    // A subscriber that asks for events no longer... or not asked: a snapshot first.
    let mut fresh: Subscription<Value> = client
        .subscribe(
            "registry.subscribe",
            object(&json!({})),
            "registry.unsubscribe",
        )
        .await
        .unwrap();
    let first = fresh.next().await.unwrap().unwrap();
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["seq"].as_u64(), Some(expected_seq - 1), "{first}");
    assert_eq!(first["snapshot"]["plugins"].as_array().unwrap().len(), 3);
}

/// A request whose id the JSON-RPC layer cannot take (negative, fractional, a boolean,
/// an object, an array) is answered `-32600` naming it, not dropped with a `null` body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_id_is_answered() {
    let server = Server::start(&[Plugin::new("a")]);
    let bearer = format!("Bearer {TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    for id in ["-1", "1.5", "true", "{}", "[1]"] {
        let body = format!(r#"{{"jsonrpc": "2.0", "id": {id}, "method": "plugins.list"}}"#);
        let response = raw(server.api, "POST", "/", &headers, body.as_bytes()).unwrap();
        let answer = response.json();
        assert_eq!(answer["error"]["code"], -32600, "{id}: {}", response.body);
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("id {id} cannot be used")),
            "{message}"
        );
    }
    let fine = r#"{"jsonrpc": "2.0", "id": "x", "method": "plugins.list"}"#;
    let response = raw(server.api, "POST", "/", &headers, fine.as_bytes()).unwrap();
    assert!(
        response.json()["result"]["plugins"].is_array(),
        "{}",
        response.body
    );
}

/// A connection that sends nothing is closed: clients (with a token or without) cannot
/// hold the API's connections, and with them the file descriptors plugins need, by
/// opening them and waiting. One that made a request is kept while it is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed() {
    let server = Server::start(&[Plugin::new("a")]);
    let mut silent = std::net::TcpStream::connect(server.api).unwrap();
    silent.set_read_timeout(Some(SETTLE)).unwrap();
    let mut byte = [0_u8; 1];
    let read = tokio::task::spawn_blocking(move || silent.read(&mut byte))
        .await
        .unwrap();
    assert_eq!(read.unwrap(), 0, "the server closed the silent connection");
    // The server still answers.
    assert!(server.rpc("registry.snapshot", &json!({}))["result"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_slows_no_one_and_a_gone_one_is_cleaned_up() {
    let server = Server::start(&[Plugin::new("a")]);
    // A client that subscribes as much as it may and never reads.
    let mut deaf = std::net::TcpStream::connect(server.api).unwrap();
    deaf.write_all(
        format!(
            "GET / HTTP/1.1\r\nhost: {}\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nauthorization: Bearer {TOKEN}\r\n\r\n",
            server.api
        )
        .as_bytes(),
    )
    .unwrap();
    let mut head = [0_u8; 12];
    deaf.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    for id in 0..64 {
        let request =
            json!({"jsonrpc": "2.0", "id": id, "method": "registry.subscribe", "params": {}});
        deaf.write_all(&ws_frame(request.to_string().as_bytes()))
            .unwrap();
    }

    let client = server.ws_client().await;
    let since = server.rpc("registry.snapshot", &json!({}))["result"]["seq"]
        .as_u64()
        .unwrap();
    let mut events: Subscription<Value> = client
        .subscribe(
            "registry.subscribe",
            object(&json!({"since": since})),
            "registry.unsubscribe",
        )
        .await
        .unwrap();
    let restarts = 25;
    let mut expected = since + 1;
    for _ in 0..restarts {
        let answer: Value = client
            .request("plugins.restart", object(&json!({"id": "a"})))
            .await
            .unwrap();
        assert_eq!(answer["id"], "a");
        // Every event of this restart reaches the reading client, in order.
        tokio::time::timeout(SETTLE, async {
            loop {
                let event = events.next().await.unwrap().unwrap();
                assert_eq!(event["seq"], expected, "{event}");
                expected += 1;
                if event["type"] == "pluginState" && event["state"] == "ready" {
                    return;
                }
            }
        })
        .await
        .expect("the reading client got every event");
    }
    let answer = server.rpc("call", &json!({"kind": "tool", "name": "echo"}));
    assert!(answer.get("result").is_some(), "{answer}");

    // The deaf client goes; its connection (and its 64 subscriptions) with it.
    let connections = |server: &Server| {
        let response = raw(
            server.api,
            "GET",
            "/metrics",
            &[("authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .unwrap();
        response
            .body
            .lines()
            .find_map(|line| line.strip_prefix("outpost_api_websocket_sessions "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = connections(&server);
    drop(deaf);
    drop(events);
    drop(client);
    assert_eq!(before, 2, "the deaf client and the reading one");
    eventually("the gone clients' sessions are closed", || {
        connections(&server) == 0
    })
    .await;
}

/// `outpost_plugin_calls_in_flight` of `plugin`.
fn in_flight(server: &Server, plugin: &str) -> u64 {
    let response = raw(
        server.api,
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        b"",
    )
    .unwrap();
    let prefix = format!("outpost_plugin_calls_in_flight{{plugin=\"{plugin}\"}} ");
    response
        .body
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// One masked WebSocket text frame (clients must mask what they send).
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    let mask = [1_u8, 2, 3, 4];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | u8::try_from(n).unwrap()),
        n @ 126..=65535 => {
            frame.push(0x80 | 0x7e);
            frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            frame.push(0x80 | 0x7f);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cancels_or_goes_away_cancels_the_plugin_call() {
    let server = Server::start(&[Plugin::new("a")]);
    // Over WebSocket: the client goes away mid-call.
    let client = server.ws_client().await;
    let pending = tokio::spawn(async move {
        let _: Result<Value, _> = client.request("call", object(&slow(60_000))).await;
    });
    eventually("the call reached the plugin", || {
        in_flight(&server, "a") == 1
    })
    .await;
    pending.abort();
    eventually("the plugin saw `$/cancel`", || {
        server.events_of("a").contains("cancelled")
    })
    .await;

    // Over HTTP: the client closes its connection mid-call.
    {
        let mut socket = std::net::TcpStream::connect(server.api).unwrap();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": slow(60_000)})
            .to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).unwrap();
        eventually("the HTTP call reached the plugin", || {
            in_flight(&server, "a") == 1
        })
        .await;
    }
    eventually("the plugin saw `$/cancel` for the HTTP call", || {
        server.events_of("a").matches("cancelled").count() >= 2
    })
    .await;

    // Over HTTP: `call.cancel` with the call's id.
    let http = server.http_client();
    let named = {
        let http = http.clone();
        tokio::spawn(async move {
            let mut params = slow(60_000);
            params["callId"] = json!("call-1");
            http.request::<Value, _>("call", object(&params)).await
        })
    };
    // Cancel once the call is in the plugin's hands (it holds one of its call slots).
    eventually("the named call reached the plugin", || {
        in_flight(&server, "a") == 1
    })
    .await;
    let cancelled: Value = http
        .request("call.cancel", object(&json!({"callId": "call-1"})))
        .await
        .unwrap();
    assert_eq!(cancelled, json!({"cancelled": true}));
    let error = named.await.unwrap().unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("-32800") || text.contains("cancelled"),
        "{text}"
    );
    eventually("the plugin saw all three cancellations", || {
        server.events_of("a").matches("cancelled").count() >= 3
    })
    .await;
    // A name in use is refused.
    eventually("the cancelled calls left the plugin", || {
        in_flight(&server, "a") == 0
    })
    .await;
    let mut first = slow(2000);
    first["callId"] = json!("dup");
    let again = first.clone();
    let racing = {
        let http = http.clone();
        tokio::spawn(async move { http.request::<Value, _>("call", object(&first)).await })
    };
    // Its name is taken before it is forwarded.
    eventually("the first `dup` call reached the plugin", || {
        in_flight(&server, "a") == 1
    })
    .await;
    let refused = http
        .request::<Value, _>("call", object(&again))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("already in flight"),
        "{refused}"
    );
    racing.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_connected_over_websocket_answers_host_call_method() {
    let server = Server::start(&[Plugin::new("a").host_methods(&["gw.*"])]);
    let gateway = server.ws_client().await;
    let mut requests: Subscription<Value> = gateway
        .subscribe(
            "gateway.offer",
            object(&json!({"methods": ["gw.*"], "config": true})),
            "gateway.withdraw",
        )
        .await
        .unwrap();
    let answering = tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let answer = match request["type"].as_str() {
                Some("method") => json!({
                    "requestId": request["requestId"],
                    "result": {
                        "answeredBy": "websocket",
                        "method": request["method"],
                        "params": request["params"],
                        "session": request["context"]["sessionKey"],
                        "plugin": request["plugin"],
                        "deadlineGiven": request["timeoutMs"].is_u64(),
                    },
                }),
                Some("config") => {
                    json!({"requestId": request["requestId"], "result": {"shared": request["plugin"]}})
                }
                _ => continue,
            };
            let _: Value = gateway
                .request("gateway.answer", object(&answer))
                .await
                .unwrap();
        }
    });
    let ask = |method: &str, params: Value| {
        server.rpc(
            "call",
            &json!({"kind": "tool", "name": "ask", "args": {"method": method, "params": params}}),
        )
    };
    let answer = ask(
        "host/callMethod",
        json!({"method": "gw.status", "params": {"x": 1}, "context": {"sessionKey": "s9"}}),
    );
    assert_eq!(
        tool_text(&answer["result"])["result"],
        json!({"answeredBy": "websocket", "method": "gw.status", "params": {"x": 1}, "session": "s9", "plugin": "a", "deadlineGiven": true}),
        "{answer}"
    );
    let config = ask("host/getConfig", json!({}));
    assert_eq!(
        tool_text(&config["result"])["result"]["gateway"],
        json!({"shared": "a"})
    );

    // The gateway goes away: a clear error, no hang. A call that reaches the server
    // before it has noticed the connection close is told that the connection answering
    // it closed; once it has noticed, there is no gateway connected.
    answering.abort();
    let _ = answering.await;
    let mut noticed = false;
    for _ in 0..100 {
        let answer = ask("host/callMethod", json!({"method": "gw.status"}));
        let error = &tool_text(&answer["result"])["error"];
        let message = error["message"].as_str().unwrap_or_default();
        if error["code"] == -32008 {
            assert!(message.contains("no gateway connected"), "{answer}");
            noticed = true;
            break;
        }
        assert_eq!(error["code"], -32003, "{answer}");
        assert!(message.contains("gateway connection"), "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(noticed, "the server never noticed the gateway leave");
}

#[test]
fn plugin_http_routes_are_served_with_gateway_auth_enforced() {
    let server = Server::start(&[Plugin::new("a")]);
    let bearer = format!("Bearer {TOKEN}");
    let open = raw(
        server.http,
        "POST",
        "/a/open/deeper?x=1",
        &[("x-test", "yes")],
        b"hello",
    )
    .unwrap();
    assert_eq!(open.status, 201, "{}", open.body);
    assert_eq!(open.header("x-plugin"), Some("a"));
    let seen = open.json();
    assert_eq!(seen["route"], "/a/open");
    assert_eq!(seen["request"]["method"], "POST");
    assert_eq!(seen["request"]["path"], "/a/open/deeper");
    assert_eq!(seen["request"]["query"], "x=1");
    assert_eq!(seen["request"]["body"], "hello");
    assert_eq!(seen["request"]["headers"]["x-test"], "yes");

    let refused = raw(server.http, "GET", "/a/private", &[], b"").unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let allowed = raw(
        server.http,
        "GET",
        "/a/private",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(allowed.status, 201, "{}", allowed.body);
    assert!(
        allowed.json()["request"]["headers"]
            .get("authorization")
            .is_none(),
        "the gateway's token never reaches a plugin: {}",
        allowed.body
    );

    assert_eq!(
        raw(server.http, "GET", "/nowhere", &[], b"")
            .unwrap()
            .status,
        404
    );
    let big = vec![b'x'; 8192];
    assert_eq!(
        raw(server.http, "POST", "/a/open", &[], &big)
            .unwrap()
            .status,
        413
    );

    // A plugin that is down: 503 with a retry hint.
    let stopped = server.rpc("plugins.stop", &json!({"id": "a"}));
    assert_eq!(stopped["result"]["state"], "stopped", "{stopped}");
    let down = raw(server.http, "GET", "/a/open", &[], b"").unwrap();
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.header("retry-after").is_some());
    assert!(
        down.json()["error"]
            .as_str()
            .unwrap()
            .contains("plugin `a` is stopped")
    );
}

#[test]
fn a_broken_config_reload_changes_nothing_and_says_why() {
    let server = Server::start(&[Plugin::new("a")]);
    let pid = server.pid("a").unwrap();
    let good = std::fs::read_to_string(&server.config).unwrap();
    std::fs::write(&server.config, "{ plugins: { enabled: tru } }").unwrap();
    let answer = server.rpc("config.reload", &json!({}));
    assert_eq!(answer["error"]["code"], -32020, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected bool"),
        "{answer}"
    );
    std::fs::write(
        &server.config,
        good.replace("plugins: {", "plugins: { allow: 'not a list',"),
    )
    .unwrap();
    let answer = server.rpc("config.reload", &json!({}));
    assert_eq!(answer["error"]["code"], -32020, "{answer}");
    assert!(
        answer["error"]["data"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("plugins.allow"),
        "{answer}"
    );
    let output = server.outpost(&["reload"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("plugins.allow"));
    // Untouched.
    assert_eq!(server.pid("a"), Some(pid));
    std::fs::write(&server.config, good).unwrap();
    let output = server.outpost(&["reload"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("unchanged: a"));
    assert_eq!(server.pid("a"), Some(pid));
}

#[test]
fn restart_needed_lists_each_pending_setting_until_it_is_undone() {
    let server = Server::start(&[Plugin::new("a")]);
    let started_with = std::fs::read_to_string(&server.config).unwrap();
    let reload = |config: &str| {
        std::fs::write(&server.config, config).unwrap();
        let answer = server.rpc("config.reload", &json!({}));
        answer["result"]["restartNeeded"].clone()
    };
    assert_eq!(reload(&started_with), json!([]));
    let bigger = started_with.replace("maxBodyBytes: 4096", "maxBodyBytes: 8192");
    assert_ne!(bigger, started_with);
    assert_eq!(reload(&bigger), json!(["outpost.http.maxBodyBytes"]));
    // Still the old limit in effect: a second reload says so again.
    assert_eq!(reload(&bigger), json!(["outpost.http.maxBodyBytes"]));
    let big = vec![b'x'; 6000];
    assert_eq!(
        raw(server.http, "POST", "/a/open", &[], &big)
            .unwrap()
            .status,
        413,
        "the routes still take 4096 bytes"
    );
    let moved = bigger
        .replace(
            "registryFile: 'registry.json'",
            "registryFile: 'moved.json'",
        )
        .replace("sampleMs: 200", "sampleMs: 300");
    assert_eq!(
        reload(&moved),
        json!([
            "outpost.api.registryFile",
            "outpost.http.maxBodyBytes",
            "outpost.metrics.sampleMs"
        ])
    );
    let token = moved.replace(
        "api: {",
        "api: { token: 'another-token-0123456789', tokenFile: 'token',",
    );
    assert_eq!(
        reload(&token),
        json!([
            "outpost.api.registryFile",
            "outpost.http.maxBodyBytes",
            "outpost.metrics.sampleMs"
        ]),
        "OUTPOST_API_TOKEN gives the token: the config's token settings are not in effect"
    );
    // Back to what runs: nothing pending.
    assert_eq!(reload(&started_with), json!([]));
}

#[test]
fn plugin_orders_answer_a_reason_object_and_unknown_ids_say_why() {
    let mut server = Server::prepare("");
    server.write_config(&[Plugin::new("a"), Plugin::new("off").without_tools()]);
    let config = std::fs::read_to_string(&server.config).unwrap();
    let disabled = config.replace("\"off\":{\"enabled\":true}", "\"off\":{\"enabled\":false}");
    assert_ne!(config, disabled);
    std::fs::write(&server.config, disabled).unwrap();
    server.launch(1);

    let stopped = server.rpc("plugins.stop", &json!({"id": "a"}));
    let reason = &stopped["result"]["reason"];
    assert_eq!(reason["kind"], "stopRequested", "{stopped}");
    assert!(reason["message"].is_string(), "{stopped}");
    let started = server.rpc("plugins.start", &json!({"id": "a"}));
    assert_eq!(started["result"]["reason"]["kind"], "starting", "{started}");
    server.wait_ready(1);

    // Discovered, but not supervised: why, and what to do.
    let answer = server.rpc("plugins.restart", &json!({"id": "off"}));
    let error = &answer["error"];
    assert_eq!(error["code"], -32008, "{answer}");
    let message = error["message"].as_str().unwrap();
    for says in [
        "plugin `off` is discovered but not supervised here: it is disabled (",
        "plugins.entries.off.enabled",
        "then `outpost reload`",
        "running here: a",
    ] {
        assert!(message.contains(says), "{says}: {answer}");
    }
    assert_eq!(error["data"]["status"], "disabled", "{answer}");
    assert!(error["data"]["reason"].is_string(), "{answer}");

    // Unknown: only the supervised plugins are named.
    let answer = server.rpc("plugins.stop", &json!({"id": "ghost"}));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("no plugin `ghost`"), "{answer}");
    assert!(message.ends_with("running here: a"), "{answer}");

    // The commands print the code, as `outpost call --standalone` does.
    let unknown = server.outpost(&["plugins", "restart", "ghost"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("(code -32008)"), "{stderr}");
    let call = server.outpost(&["call", "tool", "nothing"]);
    assert_eq!(call.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&call.stderr);
    assert!(
        stderr.starts_with("error: no plugin registered tool `nothing`")
            && stderr.contains("(code -32008)"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_short_token_from_the_environment() {
    let server = Server::prepare("");
    server.write_config(&[Plugin::new("a")]);
    let output = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["serve", "--config"])
            .arg(&server.config)
            .env("OUTPOST_API_TOKEN", " abc "),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("OUTPOST_API_TOKEN is 3 bytes long") && stderr.contains("16 bytes or more"),
        "{stderr}"
    );
    assert!(server.pids_of("a").is_empty(), "no plugin ran");
}

#[test]
fn status_and_plugin_orders_from_the_command_line() {
    let server = Server::start(&[Plugin::new("a"), Plugin::new("b").without_tools()]);
    let pid = server.pid("a").unwrap();
    let status = server.outpost(&["status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.lines().nth(1).unwrap().starts_with("ID "), "{text}");
    assert!(text.contains(&format!("a   ready  {pid}")), "{text}");

    let restarted = server.outpost(&["plugins", "restart", "a"]);
    assert!(
        restarted.status.success(),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    assert!(String::from_utf8_lossy(&restarted.stdout).contains("restarted `a`"));
    server.wait_ready(2);
    assert_ne!(server.pid("a"), Some(pid));
    assert!(!alive(i32::try_from(pid).unwrap()));

    let stopped = server.outpost(&["plugins", "stop", "b"]);
    assert!(stopped.status.success());
    let json = server.outpost(&["status", "--json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let b = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "b")
        .unwrap();
    assert_eq!(b["runtime"]["state"], "stopped");
    assert_eq!(b["runtime"]["reason"]["kind"], "stopRequested");
    // How its last process was confined, as the probe says this host allows.
    let host = outpost_supervisor::isolation::probe();
    assert_eq!(
        b["runtime"]["isolation"]["containment"],
        json!(host.containment),
        "{b}"
    );
    assert!(b["runtime"]["isolation"]["stateDir"].is_string(), "{b}");
    let started = server.outpost(&["plugins", "start", "b"]);
    assert!(started.status.success());
    server.wait_ready(2);

    let unknown = server.outpost(&["plugins", "restart", "ghost"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no plugin `ghost`"));
}

#[test]
fn inspect_shows_what_a_running_plugin_registered_its_shape_and_signals() {
    let mut server = Server::start(&[Plugin::new("shaped")]);
    let text = server.outpost(&["plugins", "inspect", "shaped"]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        "Runtime (outpost serve)",
        "non-capability",
        "compatibility     valid",
        "Registered",
        "shaped.status",
        // Its default hook sees the conversation; a plugin from a load path is not
        // granted that.
        "Rejected",
        "allowConversationAccess: true",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let json = server.outpost(&["plugins", "inspect", "shaped", "--json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["id"], "shaped", "{json}");
    assert_eq!(json["runtime"]["state"], "ready", "{json}");
    assert_eq!(json["runtime"]["shape"], "non-capability", "{json}");
    assert_eq!(
        json["runtime"]["compatibility"][0]["signal"], "valid",
        "{json}"
    );
    assert!(
        json["runtime"]["registrations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "echo"),
        "{json}"
    );

    // Cold: what the manifest declares, and why nothing more.
    server.stop();
    let text = server.outpost(&["plugins", "inspect", "shaped"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("contracts"), "{text}");
    assert!(text.contains("not running"), "{text}");
    let json = server.outpost(&["plugins", "inspect", "shaped", "--json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json.get("runtime").is_none(), "{json}");
}

#[test]
fn metrics_parse_and_measure_what_the_kernel_measures() {
    let server = Server::start(&[Plugin::new("a")]);
    let answer = server.rpc("call", &json!({"kind": "tool", "name": "echo"}));
    assert!(answer["result"].is_object());
    let pid = server.pid("a").unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let deadline = std::time::Instant::now() + SETTLE;
    let (response, scrape) = loop {
        let response = raw(
            server.api,
            "GET",
            "/metrics",
            &[("authorization", &bearer)],
            b"",
        )
        .unwrap();
        assert_eq!(response.status, 200);
        let scrape =
            prometheus_parse::Scrape::parse(response.body.lines().map(|l| Ok(l.to_owned())))
                .unwrap_or_else(|e| {
                    panic!("not the Prometheus text format ({e}):\n{}", response.body)
                });
        if scrape
            .samples
            .iter()
            .any(|s| s.metric == "outpost_plugin_cpu_usage")
        {
            break (response, scrape);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no resource sample:\n{}",
            response.body
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(response.body.ends_with("# EOF\n"), "{}", response.body);
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "outpost_calls_total",
            &[("plugin", "a"), ("kind", "tool"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{}",
        response.body
    );
    assert_eq!(
        value(
            "outpost_plugin_state",
            &[("plugin", "a"), ("state", "ready")]
        ),
        Some(1.0)
    );
    assert!(value("outpost_api_connections", &[]).unwrap() >= 1.0);
    // One full stop at the end of a help text: the encoder adds it.
    let helps: Vec<&str> = response
        .body
        .lines()
        .filter(|line| line.starts_with("# HELP outpost_api_"))
        .collect();
    assert_eq!(helps.len(), 5, "{}", response.body);
    for help in helps {
        assert!(help.ends_with('.') && !help.ends_with(".."), "{help}");
    }
    // The metric is a sample: compare it with /proc right after a scrape, a few times
    // (a busy machine may change the figure between samples).
    let mut tries = Vec::new();
    for _ in 0..20 {
        let response = raw(
            server.api,
            "GET",
            "/metrics",
            &[("authorization", &bearer)],
            b"",
        )
        .unwrap();
        let measured = response
            .body
            .lines()
            .find_map(|line| {
                line.strip_prefix("outpost_plugin_resident_memory_bytes{plugin=\"a\"} ")
            })
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap();
        let actual = resident_bytes(pid);
        if (measured - actual).abs() <= actual * 0.1 {
            return;
        }
        tries.push((measured, actual));
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("metric and /proc never agreed within 10%: {tries:?}");
}

#[test]
fn the_registry_file_follows_the_registry() {
    let server = Server::start(&[Plugin::new("a")]);
    let path = server.dir.path().join("registry.json");
    let read = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
            .unwrap_or(Value::Null)
    };
    let deadline = std::time::Instant::now() + SETTLE;
    let first = loop {
        let file = read();
        if file["plugins"][0]["state"] == "ready" {
            break file;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no registry file: {file}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(first["api"], format!("http://{}", server.api));
    assert!(
        first["registrations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "tool"
                && r["key"] == "echo"
                && r["registration"]["inputSchema"].is_object()),
        "{first}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let restarted = server.rpc("plugins.restart", &json!({"id": "a"}));
    assert!(restarted["result"].is_object(), "{restarted}");
    server.wait_ready(1);
    let deadline = std::time::Instant::now() + SETTLE;
    while read()["seq"].as_u64() <= first["seq"].as_u64()
        || read()["plugins"][0]["state"] != "ready"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the file did not follow the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_refuses_to_start_when_its_port_is_taken() {
    let server = Server::start(&[Plugin::new("a")]);
    let output = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["serve", "--config"])
            .arg(&server.config)
            .env("OUTPOST_API_TOKEN", TOKEN),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(
        server.pids_of("a").len() == 1,
        "no second copy of the plugin ran"
    );
}
