//! The plugin driven in memory by the SDK's test host, one registration kind at a time,
//! and its manifest checked against its code.

use outpost_sdk::protocol::methods::{
    CallContext, CommandRun, CommandRunParams, HookRun, HookRunParams, HttpHandle,
    HttpHandleParams, HttpRequest, MethodCall, MethodCallParams, ProviderCall, ProviderCallParams,
    ServiceParams, ServiceStart, ServiceStop,
};
use outpost_sdk::protocol::peer::CallError;
use outpost_sdk::protocol::{ErrorCode, RegistrationKind};
use outpost_sdk::testing::TestHost;
use serde_json::{Value, json};

use super::*;

async fn started(config: Value) -> TestHost {
    let host = TestHost::start(plugin().build().expect("the plugin builds"));
    host.initialize(config).await.expect("initialize");
    host
}

fn manifest() -> Value {
    let text = include_str!("../openclaw.plugin.json");
    serde_json::from_str(text).expect("the manifest is JSON")
}

#[tokio::test]
async fn it_registers_one_of_every_kind_the_manifest_covers() {
    let host = TestHost::start(plugin().build().unwrap());
    let init = host.initialize(json!({})).await.unwrap();
    let manifest = manifest();
    assert_eq!(init.plugin.id, manifest["id"]);
    let kinds: Vec<_> = init
        .registrations
        .iter()
        .map(outpost_sdk::protocol::Registration::kind)
        .collect();
    assert_eq!(
        kinds,
        [
            RegistrationKind::Tool,
            RegistrationKind::Hook,
            RegistrationKind::Command,
            RegistrationKind::GatewayMethod,
            RegistrationKind::HttpRoute,
            RegistrationKind::Service,
            RegistrationKind::Provider,
        ]
    );
    let keys: Vec<_> = init
        .registrations
        .iter()
        .map(outpost_sdk::protocol::Registration::key)
        .collect();
    assert_eq!(
        keys,
        [
            "word_count",
            "before_prompt_build",
            "wordcount",
            "text-tools.stats",
            "/text-tools/count",
            "text-tools-ticker",
            "embedding:text-tools-hash",
        ]
    );
    assert_eq!(manifest["contracts"]["tools"], json!(["word_count"]));
    assert_eq!(
        manifest["contracts"]["embeddingProviders"],
        json!(["text-tools-hash"])
    );
    assert_eq!(manifest["outpost"]["command"], env!("CARGO_BIN_NAME"));
    let schema = init.registrations[0].clone();
    let outpost_sdk::protocol::Registration::Tool(tool) = schema else {
        panic!("{schema:?}")
    };
    assert_eq!(tool.input_schema["required"], json!(["text"]));
    host.shutdown().await.unwrap();
}

#[test]
fn the_config_defaults_match_the_manifest() {
    let manifest = manifest();
    let properties = manifest["configSchema"]["properties"].as_object().unwrap();
    let defaults: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.clone(), schema["default"].clone()))
        .collect();
    let from_manifest: Config = serde_json::from_value(Value::Object(defaults)).unwrap();
    let from_code = Config::default();
    assert_eq!(from_manifest.greeting, from_code.greeting);
    assert_eq!(from_manifest.max_words, from_code.max_words);
    assert_eq!(from_manifest.tick_seconds, from_code.tick_seconds);
    assert_eq!(from_manifest.dimensions, from_code.dimensions);
}

#[tokio::test]
async fn word_count_counts_and_refuses_texts_over_max_words() {
    let host = started(json!({"maxWords": 3})).await;
    let result = host
        .invoke_tool("word_count", json!({"text": "one two Two"}))
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(
        result.content,
        [Content::Text {
            text: "3 words (2 unique), 11 characters, 1 line".into()
        }]
    );
    assert_eq!(result.details.unwrap()["uniqueWords"], 2);

    let refused = host
        .invoke_tool("word_count", json!({"text": "one two three four"}))
        .await
        .unwrap();
    assert!(refused.is_error);
    let missing = host.invoke_tool("word_count", json!({})).await;
    assert!(
        matches!(&missing, Err(CallError::Remote(e)) if e.code == ErrorCode::InvalidParams),
        "{missing:?}"
    );
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_hook_prepends_the_configured_greeting() {
    for (config, expected) in [
        (
            json!({"greeting": "Be brief."}),
            json!({"prependSystemContext": "Be brief."}),
        ),
        (json!({"greeting": "  "}), Value::Null),
    ] {
        let host = started(config).await;
        let params = HookRunParams {
            event: "before_prompt_build".into(),
            id: None,
            payload: json!({"prompt": "hi"}),
            context: CallContext::default(),
        };
        let result = host.request::<HookRun>(&params).await.unwrap();
        assert_eq!(serde_json::to_value(result).unwrap(), expected);
        host.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn the_command_method_and_route_share_the_counters() {
    let host = started(json!({})).await;
    let command = |args: Option<&str>| CommandRunParams {
        name: "WordCount".into(),
        args: args.map(str::to_owned),
        command_body: format!("/wordcount {}", args.unwrap_or_default()),
        context: CallContext::default(),
    };
    let usage = host.request::<CommandRun>(&command(None)).await.unwrap();
    assert_eq!(usage.text, "Usage: /wordcount <text>");
    let counted = host
        .request::<CommandRun>(&command(Some("a b c")))
        .await
        .unwrap();
    assert!(counted.text.starts_with("3 words"), "{}", counted.text);

    let request = |method: &str, body: Option<&str>| HttpHandleParams {
        route: "/text-tools/count".into(),
        request: HttpRequest {
            method: method.into(),
            path: "/text-tools/count".into(),
            body: body.map(str::to_owned),
            ..HttpRequest::default()
        },
        context: CallContext::default(),
    };
    let response = host
        .request::<HttpHandle>(&request("POST", Some("x y\nz")))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "application/json");
    let counts: Value = serde_json::from_str(response.body.as_deref().unwrap()).unwrap();
    assert_eq!(counts["lines"], 2);
    let wrong = host
        .request::<HttpHandle>(&request("GET", None))
        .await
        .unwrap();
    assert_eq!(
        (wrong.status, wrong.headers["allow"].as_str()),
        (405, "POST")
    );

    let stats = host
        .request::<MethodCall>(&MethodCallParams {
            method: "text-tools.stats".into(),
            params: Value::Null,
            context: CallContext::default(),
        })
        .await
        .unwrap();
    assert_eq!(stats, json!({"textsCounted": 2, "wordsCounted": 6}));
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_ticker_starts_and_stops() {
    let mut host = started(json!({})).await;
    let service = ServiceParams {
        id: "text-tools-ticker".into(),
    };
    host.request::<ServiceStart>(&service).await.unwrap();
    assert_eq!(
        host.next_log().await.unwrap().message,
        "ticker started: every 60 s"
    );
    let again = host.request::<ServiceStart>(&service).await;
    assert!(matches!(again, Err(CallError::Remote(_))), "{again:?}");
    host.request::<ServiceStop>(&service).await.unwrap();
    assert_eq!(host.next_log().await.unwrap().message, "ticker stopped");
    host.shutdown().await.unwrap();
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors() {
    let host = started(json!({"dimensions": 8})).await;
    let call = |operation: &str, params: Value| ProviderCallParams {
        capability: ProviderCapability::Embedding,
        id: "text-tools-hash".into(),
        operation: operation.into(),
        params,
        context: CallContext::default(),
    };
    let answer = host
        .request::<ProviderCall>(&call(
            "embed",
            json!({"input": ["the cat", "The  CAT", ""]}),
        ))
        .await
        .unwrap();
    assert_eq!(answer["dimensions"], 8);
    let vectors: Vec<Vec<f32>> = serde_json::from_value(answer["embeddings"].clone()).unwrap();
    assert_eq!(vectors[0], vectors[1]);
    assert_eq!(vectors[0].len(), 8);
    let length: f32 = vectors[0].iter().map(|x| x * x).sum();
    assert!((length - 1.0).abs() < 1e-5, "{length}");
    assert!(vectors[2].iter().all(|x| *x == 0.0));

    let unknown = host
        .request::<ProviderCall>(&call("rerank", json!({})))
        .await;
    assert!(
        matches!(&unknown, Err(CallError::Remote(e)) if e.code == ErrorCode::MethodNotFound && e.message.contains("embed")),
        "{unknown:?}"
    );
    host.shutdown().await.unwrap();
}
