//! Plugins driven over in-memory pipes: the handshake, routing, errors, cancellation,
//! shutdown, host helpers, limits and the fixture methods.

use std::sync::Arc;

use outpost_sdk::protocol::methods::{
    CommandResult, CommandRunParams, EmptyObject, FixtureEcho, FixtureEchoParams, HttpRequest,
    Initialize, InitializedParams, LogLevel, RejectedRegistration, ToolResult,
};
use outpost_sdk::protocol::peer::{CallError, CallOptions};
use outpost_sdk::protocol::{ErrorCode, ErrorObject, RejectionCode};
use outpost_sdk::testing::TestHost;
use outpost_sdk::{
    Channel, Command, ContextEngine, Error, GatewayMethod, Hook, HttpRoute, Operations, Plugin,
    PluginBuilder, Provider, ProviderCapability, RouteAuth, ServeError, Service, Tool, http,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Barrier, mpsc};

use crate::wire::{HANG_GUARD, Wire, code, initialize_params};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    prefix: String,
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// What the kitchen-sink plugin's handlers report, in order.
type Events = mpsc::UnboundedReceiver<&'static str>;

/// A plugin with one of everything; `events` hears what its handlers did.
fn sink() -> (PluginBuilder<Config>, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let barrier = Arc::new(Barrier::new(2));
    let plugin = Plugin::with_config::<Config>("sink")
        .name("Kitchen sink")
        .version("1.2.3")
        .tool(
            Tool::new("echo", "Answers its text after the configured prefix").input_schema(
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            |ctx, args: Text| async move {
                Ok(ToolResult::text(format!("{}{}", ctx.config().prefix, args.text)))
            },
        )
        .tool(Tool::new("fail", "Fails"), |_ctx, _: Value| async move {
            Err::<ToolResult, _>(Error::new("the disk is full"))
        })
        .tool(Tool::new("forbidden", "Fails with a code"), |_ctx, _: Value| async move {
            Err::<ToolResult, _>(ErrorObject::new(ErrorCode::Forbidden, "not for you").into())
        })
        .tool(Tool::new("panic", "Panics"), |_ctx, _: Value| async move {
            Ok(explode())
        })
        .tool(Tool::new("fatal", "Fails for good"), |_ctx, _: Value| async move {
            Err::<ToolResult, _>(Error::permanent("the licence expired"))
        })
        .tool(Tool::new("big", "A long answer"), |_ctx, _: Value| async move {
            Ok(ToolResult::text("x".repeat(2000)))
        })
        .tool(Tool::new("wait", "Waits until cancelled"), {
            let tx = tx.clone();
            move |ctx, _: Value| {
                let tx = tx.clone();
                async move {
                    let signal = ctx.cancellation();
                    let seen = tx.clone();
                    tokio::spawn(async move {
                        signal.cancelled().await;
                        let _ = seen.send("wait cancelled");
                    });
                    let _ = tx.send("wait started");
                    std::future::pending::<()>().await;
                    Ok(ToolResult::text("unreachable"))
                }
            }
        })
        .tool(Tool::new("meet", "Returns once two calls meet"), {
            move |_ctx, _: Value| {
                let barrier = barrier.clone();
                async move {
                    barrier.wait().await;
                    Ok(ToolResult::text("met"))
                }
            }
        })
        .tool(Tool::new("progress", "Reports progress"), |ctx, _: Value| async move {
            for step in 1..=3 {
                ctx.progress(f64::from(step), Some(3.0), Some("working")).await;
            }
            Ok(ToolResult::text("done"))
        })
        .tool(Tool::new("log", "Logs"), |ctx, _: Value| async move {
            ctx.info("hello");
            ctx.log_with(LogLevel::Warning, "with fields", json!({"a": 1}));
            Ok(ToolResult::text("logged"))
        })
        .tool(Tool::new("call_host", "Calls a gateway method"), |ctx, _: Value| async move {
            let answer: Value = ctx.host().call_method("other.ping", json!({"x": 1})).await?;
            let config = ctx.host().config().await?;
            Ok(ToolResult::text(format!("{answer} {}", Value::Object(config))))
        })
        .hook(Hook::new("before_prompt_build").priority(5), |_ctx, payload: Value| async move {
            Ok(Some(json!({"prependContext": payload["prompt"]})))
        })
        .hook(Hook::new("agent_end"), |_ctx, _: Value| async move { Ok(None::<Value>) })
        .hook(Hook::new("agent_end").id("audit"), |_ctx, _: Value| async move {
            Ok(Some(json!({"audited": true})))
        })
        .hook(Hook::new("llm_input"), |_ctx, _: Value| async move { Ok(Some(42)) })
        .hook(Hook::new("llm_output"), |_ctx, payload: Value| async move {
            Ok(Some(json!({"payload": payload})))
        })
        .command(
            Command::new("Ping", "Answers pong").accepts_args(true),
            |_ctx, params: CommandRunParams| async move {
                Ok(CommandResult {
                    text: params
                        .args
                        .map_or_else(|| "pong, no args".to_owned(), |args| format!("pong {args}")),
                })
            },
        )
        .method(GatewayMethod::new("sink.add"), |_ctx, p: [i64; 2]| async move {
            Ok(p[0] + p[1])
        })
        .http_route(HttpRoute::new("/sink", RouteAuth::Gateway), |_ctx, _: HttpRequest| async move {
            Ok(http::text(200, "exact"))
        })
        .http_route(
            HttpRoute::new("/sink", RouteAuth::Gateway).prefix(),
            |_ctx, request: HttpRequest| async move { Ok(http::json(201, &json!({"path": request.path}))) },
        )
        .service_with_stop(
            Service::new("svc"),
            {
                let tx = tx.clone();
                move |service| {
                    let tx = tx.clone();
                    async move {
                        let ctx = service.context().clone();
                        let task_tx = tx.clone();
                        service.spawn(async move {
                            ctx.cancelled().await;
                            let _ = task_tx.send("svc task ended");
                        });
                        let _ = tx.send("svc started");
                        Ok(())
                    }
                }
            },
            move |_service| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send("svc stop fn");
                    Ok(())
                }
            },
        )
        .provider(
            Provider::new(ProviderCapability::WebSearch, "sink-search"),
            Operations::new().on("search", |_ctx, p: Value| async move { Ok(json!({"results": [p]})) }),
        )
        .channel(
            Channel::new("sink-chat"),
            Operations::new().on("sendText", |_ctx, p: Value| async move { Ok(json!({"sent": p["text"]})) }),
        )
        .context_engine(
            ContextEngine::new("sink-engine"),
            Operations::new().on("assemble", |_ctx, _: Value| async move { Ok(json!({"messages": []})) }),
        );
    (plugin, rx)
}

fn explode() -> ToolResult {
    panic!("boom on purpose")
}

async fn next_event(events: &mut Events) -> &'static str {
    tokio::time::timeout(HANG_GUARD, events.recv())
        .await
        .unwrap()
        .unwrap()
}

async fn started(config: Value) -> (TestHost, Events) {
    let (plugin, events) = sink();
    let host = TestHost::start(plugin.build().unwrap());
    host.initialize(config).await.unwrap();
    (host, events)
}

fn remote(result: Result<impl std::fmt::Debug, CallError>) -> ErrorObject {
    match result {
        Err(CallError::Remote(error)) => error,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

#[tokio::test]
async fn before_initialize_requests_are_refused_notifications_ignored_ping_answered() {
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(sink().0.build().unwrap().serve_on(read, write));
    let early = wire
        .request(1, "tool/invoke", json!({"name": "echo"}))
        .await;
    assert_eq!(code(&early), Some(-32002), "{early}");
    assert!(
        early["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before `initialize`")
    );
    wire.notify("initialized", json!({"accepted": []})).await;
    let pong = wire.request(2, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));

    let init = wire
        .request(3, "initialize", initialize_params("sink", &json!({})))
        .await;
    assert_eq!(init["result"]["protocolVersion"], "1");
    assert_eq!(
        init["result"]["plugin"],
        json!({"id": "sink", "name": "Kitchen sink", "version": "1.2.3"})
    );
    assert_eq!(
        init["result"]["registrations"].as_array().unwrap().len(),
        24
    );
    let again = wire
        .request(4, "initialize", initialize_params("sink", &json!({})))
        .await;
    assert_eq!(code(&again), Some(-32007), "{again}");
    // The early `initialized` was ignored: everything is served.
    let echo = wire
        .request(
            5,
            "tool/invoke",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "hi");
    wire.close().await;
    assert!(wire.drain().await.is_empty());
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn no_common_version_is_refused_with_both_lists() {
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(sink().0.build().unwrap().serve_on(read, write));
    let mut params = initialize_params("sink", &json!({}));
    params["protocolVersions"] = json!(["7", "8"]);
    let refused = wire.request(1, "initialize", params).await;
    assert_eq!(code(&refused), Some(-32004), "{refused}");
    assert_eq!(
        refused["error"]["data"],
        json!({"supported": ["1"], "requested": ["7", "8"]})
    );
    // Still waiting for a usable `initialize`.
    let init = wire
        .request(2, "initialize", initialize_params("sink", &json!({})))
        .await;
    assert_eq!(init["result"]["protocolVersion"], "1");
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_declared_id_is_answered_when_the_host_expects_another() {
    let host = TestHost::start(sink().0.build().unwrap());
    let mut params = host.initialize_params(json!({}));
    params.plugin_id = "somebody-else".into();
    let init = host.request::<Initialize>(&params).await.unwrap();
    assert_eq!(init.plugin.id, "sink");
    host.close().await.unwrap();
}

#[tokio::test]
async fn handlers_read_the_typed_config() {
    let (host, _events) = started(json!({"prefix": "> "})).await;
    let result = host
        .invoke_tool("echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(result, ToolResult::text("> hi"));
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_config_that_does_not_fit_is_a_permanent_failure() {
    let host = TestHost::start(sink().0.build().unwrap());
    let error = remote(host.initialize(json!({"prefix": 5})).await);
    assert_eq!(error.code, ErrorCode::HandlerFailed);
    assert_eq!(error.data, Some(json!({"permanent": true})));
    assert!(
        error.message.contains("invalid type: integer `5`"),
        "{}",
        error.message
    );
    let outcome = host.finished().await;
    assert!(
        matches!(outcome, Err(ServeError::Permanent { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn setup_failures_end_serving_permanently_or_as_a_crash() {
    for (permanent, message) in [(true, "no licence"), (false, "the cache is locked")] {
        let plugin = Plugin::builder("setup-test")
            .setup(move |ctx| async move {
                assert!(
                    ctx.host().config().await.is_err(),
                    "the host is not callable yet"
                );
                Err(if permanent {
                    Error::permanent(message)
                } else {
                    Error::new(message)
                })
            })
            .build()
            .unwrap();
        let host = TestHost::start(plugin);
        let error = remote(host.initialize(json!({})).await);
        assert_eq!(error.message, message);
        let outcome = host.finished().await;
        match (permanent, outcome) {
            (true, Err(ServeError::Permanent { reason, .. }))
            | (false, Err(ServeError::Setup { reason, .. })) => {
                assert_eq!(reason, format!("setup failed: {message}"));
            }
            (_, other) => panic!("permanent={permanent}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn only_accepted_registrations_are_served() {
    let (plugin, _events) = sink();
    let host = TestHost::start(plugin.build().unwrap());
    let init = host
        .request::<Initialize>(&host.initialize_params(json!({})))
        .await
        .unwrap();
    let fail = init
        .registrations
        .iter()
        .position(|r| r.key() == "fail")
        .unwrap();
    let verdict = InitializedParams {
        accepted: Vec::new(),
        rejected: vec![RejectedRegistration {
            index: fail,
            kind: None,
            key: None,
            code: RejectionCode::Conflict,
            reason: "another plugin has it".into(),
        }],
    };
    host.peer()
        .notify::<outpost_sdk::protocol::methods::Initialized>(&verdict)
        .await
        .unwrap();
    for (name, message) in [
        (
            "fail",
            "tool `fail` of plugin `sink` was not accepted by the host, so it is not served",
        ),
        (
            "echo",
            "tool `echo` of plugin `sink` was not accepted by the host, so it is not served",
        ),
        ("nope", "plugin `sink` has no tool `nope`"),
    ] {
        let error = remote(host.invoke_tool(name, json!({"text": "x"})).await);
        assert_eq!(error.code, ErrorCode::NotFound, "{name}");
        assert_eq!(error.message, message);
        assert_eq!(error.data, Some(json!({"kind": "tool", "name": name})));
    }
    host.close().await.unwrap();
}

#[tokio::test]
async fn failures_become_error_answers_and_the_plugin_goes_on() {
    let (host, _events) = started(json!({})).await;
    let cases: &[(&str, Value, ErrorCode, &str)] = &[
        (
            "echo",
            json!({}),
            ErrorCode::InvalidParams,
            "invalid input for tool `echo`: missing field `text`",
        ),
        (
            "fail",
            json!({}),
            ErrorCode::HandlerFailed,
            "the disk is full",
        ),
        ("forbidden", json!({}), ErrorCode::Forbidden, "not for you"),
        (
            "panic",
            json!({}),
            ErrorCode::HandlerFailed,
            "the handler of tool/panic panicked: boom on purpose",
        ),
    ];
    for (tool, arguments, expected_code, message) in cases {
        let error = remote(host.invoke_tool(tool, arguments.clone()).await);
        assert_eq!(
            (error.code, error.message.as_str()),
            (*expected_code, *message),
            "{tool}"
        );
        // Still serving.
        let echo = host
            .invoke_tool("echo", json!({"text": "ok"}))
            .await
            .unwrap();
        assert_eq!(echo, ToolResult::text("ok"));
    }
    let bad_params = remote(host.call("tool/invoke", json!({"arguments": {}})).await);
    assert_eq!(bad_params.code, ErrorCode::InvalidParams);
    assert!(
        bad_params.message.contains("missing field `name`"),
        "{}",
        bad_params.message
    );
    let hook = remote(host.call("hook/run", json!({"event": "llm_input"})).await);
    assert_eq!(hook.code, ErrorCode::InternalError);
    let unknown = remote(host.call("wormhole/open", json!({})).await);
    assert_eq!(unknown.code, ErrorCode::MethodNotFound);
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_kind_of_registration_is_routed() {
    let (host, _events) = started(json!({})).await;
    let cases = [
        (
            "hook/run",
            json!({"event": "before_prompt_build", "payload": {"prompt": "p"}}),
            json!({"prependContext": "p"}),
        ),
        ("hook/run", json!({"event": "agent_end"}), Value::Null),
        (
            "hook/run",
            json!({"event": "agent_end", "id": "audit"}),
            json!({"audited": true}),
        ),
        (
            "command/run",
            json!({"name": "PING", "args": "a b", "commandBody": "/ping a b"}),
            json!({"text": "pong a b"}),
        ),
        (
            "method/call",
            json!({"method": "sink.add", "params": [2, 3]}),
            json!(5),
        ),
        (
            "http/handle",
            json!({"route": "/sink", "request": {"method": "GET", "path": "/sink"}}),
            json!({"handled": true, "status": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "exact"}),
        ),
        (
            "http/handle",
            json!({"route": "/sink", "request": {"method": "GET", "path": "/sink/a/b"}}),
            json!({"handled": true, "status": 201, "headers": {"content-type": "application/json"}, "body": "{\"path\":\"/sink/a/b\"}"}),
        ),
        (
            "provider/call",
            json!({"capability": "webSearch", "id": "sink-search", "operation": "search", "params": {"q": "x"}}),
            json!({"results": [{"q": "x"}]}),
        ),
        (
            "channel/call",
            json!({"id": "sink-chat", "operation": "sendText", "params": {"text": "t"}}),
            json!({"sent": "t"}),
        ),
        (
            "contextEngine/call",
            json!({"id": "sink-engine", "operation": "assemble"}),
            json!({"messages": []}),
        ),
    ];
    for (method, params, expected) in cases {
        let answer = host.call(method, params.clone()).await;
        assert_eq!(answer.unwrap(), expected, "{method} {params}");
    }
    let unknown_op = remote(
        host.call(
            "channel/call",
            json!({"id": "sink-chat", "operation": "delete"}),
        )
        .await,
    );
    assert_eq!(unknown_op.code, ErrorCode::MethodNotFound);
    assert!(
        unknown_op.message.contains("it has: sendText"),
        "{}",
        unknown_op.message
    );
    for route in ["/nope", "/sink/a"] {
        let error = remote(
            host.call(
                "http/handle",
                json!({"route": route, "request": {"method": "GET", "path": route}}),
            )
            .await,
        );
        assert_eq!(error.code, ErrorCode::NotFound);
        assert_eq!(
            error.message,
            format!("plugin `sink` has no HTTP route `{route}`")
        );
        assert_eq!(
            error.data,
            Some(json!({"kind": "httpRoute", "name": route}))
        );
    }
    let wrong_capability = remote(
        host.call(
            "provider/call",
            json!({"capability": "speech", "id": "sink-search", "operation": "search"}),
        )
        .await,
    );
    assert_eq!(wrong_capability.code, ErrorCode::NotFound);
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_answers_minus_32800_and_fires_the_signal() {
    let (plugin, mut events) = sink();
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(plugin.build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    wire.send_request(2, "tool/invoke", json!({"name": "wait"}))
        .await;
    assert_eq!(next_event(&mut events).await, "wait started");
    wire.notify("$/cancel", json!({"id": 2})).await;
    let answer = wire.response(2).await;
    assert_eq!(code(&answer), Some(-32800), "{answer}");
    assert_eq!(next_event(&mut events).await, "wait cancelled");
    // A cancel for an unknown id is ignored.
    wire.notify("$/cancel", json!({"id": 99})).await;
    let pong = wire.request(3, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_services_cancels_calls_and_refuses_new_ones() {
    let (plugin, mut events) = sink();
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(plugin.build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    let started = wire.request(2, "service/start", json!({"id": "svc"})).await;
    assert_eq!(started["result"], json!({}));
    assert_eq!(next_event(&mut events).await, "svc started");
    wire.send_request(3, "tool/invoke", json!({"name": "wait"}))
        .await;
    assert_eq!(next_event(&mut events).await, "wait started");

    let done = wire.request(4, "shutdown", json!({})).await;
    assert_eq!(done["result"], json!({}));
    let call = wire.response(3).await;
    assert_eq!(code(&call), Some(-32800), "{call}");
    let mut seen = vec![
        next_event(&mut events).await,
        next_event(&mut events).await,
        next_event(&mut events).await,
    ];
    seen.sort_unstable();
    assert_eq!(seen, ["svc stop fn", "svc task ended", "wait cancelled"]);

    let late = wire
        .request(
            5,
            "tool/invoke",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(code(&late), Some(-32003), "{late}");
    let again = wire.request(6, "shutdown", json!({})).await;
    assert_eq!(again["result"], json!({}));
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn services_start_once_and_stop_idempotently() {
    let (host, mut events) = started(json!({})).await;
    let svc = json!({"id": "svc"});
    host.call("service/start", svc.clone()).await.unwrap();
    assert_eq!(next_event(&mut events).await, "svc started");
    let twice = remote(host.call("service/start", svc.clone()).await);
    assert!(
        twice.message.contains("already running"),
        "{}",
        twice.message
    );
    host.call("service/stop", svc.clone()).await.unwrap();
    let mut seen = vec![next_event(&mut events).await, next_event(&mut events).await];
    seen.sort_unstable();
    assert_eq!(seen, ["svc stop fn", "svc task ended"]);
    assert_eq!(
        host.call("service/stop", svc.clone()).await.unwrap(),
        json!({})
    );
    host.call("service/start", svc).await.unwrap();
    assert_eq!(next_event(&mut events).await, "svc started");
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn progress_and_logs_reach_the_host() {
    let (mut host, _events) = started(json!({})).await;
    let (tx, mut rx) = mpsc::channel(8);
    let options = CallOptions::timeout(HANG_GUARD).with_progress(tx);
    let params = json!({"name": "progress", "arguments": {}});
    let answer = host
        .peer()
        .call("tool/invoke", Some(&params), options)
        .await
        .unwrap();
    assert_eq!(answer["content"][0]["text"], "done");
    let mut steps = Vec::new();
    while let Ok(p) = rx.try_recv() {
        steps.push((p.progress, p.total, p.message));
    }
    let working = Some("working".to_owned());
    assert_eq!(
        steps,
        [
            (1.0, Some(3.0), working.clone()),
            (2.0, Some(3.0), working.clone()),
            (3.0, Some(3.0), working)
        ]
    );

    host.invoke_tool("log", json!({})).await.unwrap();
    let first = host.next_log().await.unwrap();
    assert_eq!(
        (first.level, first.message.as_str(), first.logger.as_deref()),
        (LogLevel::Info, "hello", Some("tool/log"))
    );
    let second = host.next_log().await.unwrap();
    assert_eq!(
        second.fields,
        Some(json!({"a": 1}).as_object().unwrap().clone())
    );
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_call_the_hosts_runtime_helpers() {
    let (host, _events) = started(json!({"prefix": "p"})).await;
    host.on_call_method(|method, params| {
        assert_eq!(method, "other.ping");
        Ok(json!({"pong": params["x"]}))
    });
    let answer = host.invoke_tool("call_host", json!({})).await.unwrap();
    assert_eq!(answer, ToolResult::text(r#"{"pong":1} {"prefix":"p"}"#));
    host.on_call_method(|_, _| Err(ErrorObject::new(ErrorCode::Forbidden, "policy says no")));
    let refused = remote(host.invoke_tool("call_host", json!({})).await);
    assert_eq!(
        refused.message,
        "the host refused `host/callMethod`: policy says no (code -32005)"
    );
    host.shutdown().await.unwrap();

    // A host that offers no helpers.
    let host = TestHost::start(sink().0.build().unwrap());
    let mut params = host.initialize_params(json!({}));
    params.capabilities.runtime.clear();
    host.request::<Initialize>(&params).await.unwrap();
    let error = remote(host.invoke_tool("call_host", json!({})).await);
    assert!(
        error.message.contains("does not offer `host/callMethod`"),
        "{}",
        error.message
    );
    host.close().await.unwrap();
}

#[tokio::test]
async fn calls_run_concurrently() {
    let (host, _events) = started(json!({})).await;
    // Each call returns only once the other has started: served one at a time, they
    // would wait forever (and fail at the hang guard).
    let (a, b) = tokio::join!(
        host.invoke_tool("meet", json!({})),
        host.invoke_tool("meet", json!({}))
    );
    assert_eq!(a.unwrap(), ToolResult::text("met"));
    assert_eq!(b.unwrap(), ToolResult::text("met"));
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn results_over_the_hosts_message_limit_are_refused() {
    let host = TestHost::start(sink().0.build().unwrap());
    let mut params = host.initialize_params(json!({}));
    params.limits.max_message_bytes = 1000;
    host.request::<Initialize>(&params).await.unwrap();
    let error = remote(host.invoke_tool("big", json!({})).await);
    assert_eq!(error.code, ErrorCode::MessageTooLarge);
    assert_eq!(error.data.as_ref().unwrap()["limit"], 1000);
    assert_eq!(
        host.invoke_tool("echo", json!({"text": "small"}))
            .await
            .unwrap(),
        ToolResult::text("small")
    );
    host.close().await.unwrap();
}

#[tokio::test]
async fn a_permanent_handler_error_ends_serving() {
    let (host, _events) = started(json!({})).await;
    let error = remote(host.invoke_tool("fatal", json!({})).await);
    assert_eq!(error.data, Some(json!({"permanent": true})));
    let outcome = host.finished().await;
    assert!(
        matches!(&outcome, Err(ServeError::Permanent { reason, .. }) if reason == "tool/fatal failed permanently: the licence expired"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn eof_answers_the_calls_in_flight_then_ends() {
    let (plugin, mut events) = sink();
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(plugin.build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    wire.send_request(2, "tool/invoke", json!({"name": "wait"}))
        .await;
    assert_eq!(next_event(&mut events).await, "wait started");
    wire.send_request(
        3,
        "tool/invoke",
        json!({"name": "echo", "arguments": {"text": "last"}}),
    )
    .await;
    wire.close().await;
    let rest = wire.drain().await;
    let answer = |id: i64| {
        rest.iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {id}: {rest:?}"))
    };
    assert_eq!(code(answer(2)), Some(-32800));
    assert_eq!(answer(3)["result"]["content"][0]["text"], "last");
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_fixture_methods_answer_only_when_declared() {
    let (host, _events) = started(json!({})).await;
    let off = remote(host.call("fixture/echo", json!({"value": 1})).await);
    assert_eq!(off.code, ErrorCode::MethodNotFound);
    host.shutdown().await.unwrap();

    let (plugin, _events) = sink();
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(plugin.fixture(true).build().unwrap().serve_on(read, write));
    let init = wire
        .request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    assert_eq!(init["result"]["capabilities"], json!({"fixture": true}));
    wire.notify("initialized", json!({"accepted": [], "rejected": []}))
        .await;

    let echo = wire
        .request(2, "fixture/echo", json!({"value": [1, "two"]}))
        .await;
    assert_eq!(echo["result"], json!({"value": [1, "two"]}));
    let steps = wire
        .request(3, "fixture/progress", json!({"steps": 2}))
        .await;
    assert_eq!(steps["result"], json!({}));
    let logged = wire
        .request(4, "fixture/log", json!({"level": "notice", "message": "m"}))
        .await;
    assert_eq!(logged["result"], json!({}));
    let stderr = wire
        .request(5, "fixture/stderr", json!({"bytes": 250}))
        .await;
    assert_eq!(stderr["result"], json!({}));
    wire.send_request(6, "fixture/sleep", json!({"ms": 3_600_000}))
        .await;
    wire.notify("$/cancel", json!({"id": 6})).await;
    assert_eq!(code(&wire.response(6).await), Some(-32800));
    // `fixture/callHost`: the plugin's request comes to this side.
    wire.send_request(
        7,
        "fixture/callHost",
        json!({"method": "host/getConfig", "params": {}}),
    )
    .await;
    let asked = loop {
        let message = wire.read().await.unwrap();
        if message.get("method") == Some(&json!("host/getConfig")) {
            break message;
        }
    };
    wire.send(
        &json!({"jsonrpc": "2.0", "id": asked["id"], "error": {"code": -32005, "message": "no"}}),
    )
    .await;
    let relayed = wire.response(7).await;
    assert_eq!(
        relayed["result"],
        json!({"error": {"code": -32005, "message": "no"}})
    );

    wire.close().await;
    wire.drain().await;
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn fixture_progress_and_log_precede_their_answers() {
    let (plugin, _events) = sink();
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(plugin.fixture(true).build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    wire.send_request(2, "fixture/progress", json!({"steps": 3}))
        .await;
    let mut before = Vec::new();
    loop {
        let message = wire.read().await.unwrap();
        if message["id"] == 2 && message.get("method").is_none() {
            break;
        }
        before.push(message);
    }
    let progress: Vec<_> = before
        .iter()
        .filter(|m| m["method"] == "$/progress")
        .map(|m| {
            (
                m["params"]["progress"].as_f64().unwrap(),
                m["params"]["total"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(progress, [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]);
    wire.send_request(
        3,
        "fixture/log",
        json!({"level": "error", "message": "logged first"}),
    )
    .await;
    let first = wire.read().await.unwrap();
    assert_eq!(first["params"]["message"], "logged first", "{first}");
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn typed_fixture_echo_through_the_test_host() {
    let (plugin, _events) = sink();
    let host = TestHost::start(plugin.fixture(true).build().unwrap());
    host.initialize(json!({})).await.unwrap();
    let echoed = host
        .request::<FixtureEcho>(&FixtureEchoParams {
            value: json!({"deep": [null]}),
        })
        .await
        .unwrap();
    assert_eq!(echoed.value, json!({"deep": [null]}));
    assert_eq!(
        host.request::<outpost_sdk::protocol::methods::Ping>(&EmptyObject {})
            .await
            .unwrap(),
        EmptyObject {}
    );
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_lines_and_lines_over_the_hosts_limit_are_answered_once_and_skipped() {
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(sink().0.build().unwrap().serve_on(read, write));
    let padded_ping = |id: &str, size: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"pad": "x".repeat(size)}})
            .to_string()
    };
    // Before `initialize`, the protocol's default limit applies.
    wire.send_line(&padded_ping("early", 5000)).await;
    assert_eq!(wire.response("early").await["result"], json!({}));
    let mut params = initialize_params("sink", &json!({}));
    params["limits"]["maxMessageBytes"] = json!(1000);
    wire.request(1, "initialize", params).await;

    // The first line after `initialize` is already held to the new limit (the reader
    // was waiting for it when the limit changed).
    let cases: &[(String, i64)] = &[
        (padded_ping("big", 5000), -32006),
        ("not json".to_owned(), -32700),
        ("[]".to_owned(), -32600),
        (
            padded_ping("over-by-two", 1002 - padded_ping("over-by-two", 0).len()),
            -32006,
        ),
    ];
    for (line, expected) in cases {
        wire.send_line(line).await;
        let answer = wire.read().await.unwrap();
        assert_eq!(
            (&answer["id"], code(&answer)),
            (&Value::Null, Some(*expected)),
            "{answer}"
        );
        if *expected == -32006 {
            assert_eq!(answer["error"]["data"]["limit"], 1000);
        }
    }
    // A line exactly at the limit is read and answered.
    let at_limit = padded_ping("at-limit", 1000 - padded_ping("at-limit", 0).len());
    assert_eq!(at_limit.len(), 1000);
    wire.send_line(&at_limit).await;
    assert_eq!(wire.response("at-limit").await["result"], json!({}));
    // Nothing of the discarded lines was processed: the next answer is to the next line.
    let pong = wire.request(2, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    wire.close().await;
    assert!(wire.drain().await.is_empty());
    served(serving).await.unwrap().unwrap();
}

/// docs/protocol.md §4: params that are not an object are `-32602` under the request's
/// id, `null` or absent params are none; §6.2, §6.3: a hook's payload is `{}` when the
/// event carries nothing, a command without arguments has no `args` (`""` counts as none).
#[tokio::test]
async fn params_of_every_shape_and_the_empty_forms() {
    let (mut wire, read, write) = Wire::memory();
    let serving = tokio::spawn(sink().0.build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    for (id, params) in [
        ("array", r#"["echo", {"text": "x"}]"#),
        ("string", r#""echo""#),
        ("number", "5"),
        ("null", "null"),
    ] {
        wire.send_line(&format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"tool/invoke","params":{params}}}"#
        ))
        .await;
        let answer = wire.response(id).await;
        assert_eq!(code(&answer), Some(-32602), "params {params}: {answer}");
    }
    for (id, line) in [
        (
            "ping-null",
            r#"{"jsonrpc":"2.0","id":"ping-null","method":"ping","params":null}"#,
        ),
        (
            "ping-none",
            r#"{"jsonrpc":"2.0","id":"ping-none","method":"ping"}"#,
        ),
        (
            "hook-none",
            r#"{"jsonrpc":"2.0","id":"hook-none","method":"hook/run","params":{"event":"llm_output"}}"#,
        ),
    ] {
        wire.send_line(line).await;
        let answer = wire.response(id).await;
        assert!(answer.get("result").is_some(), "{line}: {answer}");
    }
    // The hook without a payload was run with `{}`; one with a payload that is not an
    // object is refused.
    let answer = wire
        .request(
            2,
            "hook/run",
            json!({"event": "llm_output", "payload": null}),
        )
        .await;
    assert_eq!(answer["result"], json!({"payload": {}}), "{answer}");
    let answer = wire
        .request(
            3,
            "hook/run",
            json!({"event": "llm_output", "payload": "text"}),
        )
        .await;
    assert_eq!(code(&answer), Some(-32602), "{answer}");
    assert_eq!(answer["error"]["data"]["errors"][0]["path"], "/payload");
    for (id, args) in [(4, json!("")), (5, Value::Null)] {
        let mut params = json!({"name": "ping", "commandBody": "/ping"});
        if !args.is_null() {
            params["args"] = args;
        }
        let answer = wire.request(id, "command/run", params).await;
        assert_eq!(answer["result"]["text"], "pong, no args", "{answer}");
    }
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

/// docs/protocol.md §11: a call still running at its deadline (`context.timeoutMs`)
/// gives up with `-32001` and `data.timeoutMs`, and its cancellation signal fires.
#[tokio::test]
async fn a_call_gives_up_at_its_deadline() {
    let (mut wire, read, write) = Wire::memory();
    let (plugin, mut events) = sink();
    let serving = tokio::spawn(plugin.build().unwrap().serve_on(read, write));
    wire.request(1, "initialize", initialize_params("sink", &json!({})))
        .await;
    let started = std::time::Instant::now();
    let answer = wire
        .request(
            2,
            "tool/invoke",
            json!({"name": "wait", "context": {"timeoutMs": 200}}),
        )
        .await;
    assert_eq!(code(&answer), Some(-32001), "{answer}");
    assert_eq!(answer["error"]["data"], json!({"timeoutMs": 200}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(next_event(&mut events).await, "wait started");
    assert_eq!(next_event(&mut events).await, "wait cancelled");
    // Without a deadline a call runs until it ends or is cancelled.
    wire.send_request(3, "tool/invoke", json!({"name": "wait"}))
        .await;
    assert_eq!(next_event(&mut events).await, "wait started");
    wire.notify("$/cancel", json!({"id": 3})).await;
    assert_eq!(code(&wire.response(3).await), Some(-32800));
    wire.close().await;
    served(serving).await.unwrap().unwrap();
}

/// The end of a plugin served in memory, or a failure after [`HANG_GUARD`]: a plugin
/// that does not end when its host is gone must fail the test, not hang it.
async fn served<T>(serving: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, serving)
        .await
        .expect("the plugin did not end when its input did")
}
