//! Mistakes in a plugin's registrations are found when it is built, before any host.

use outpost_sdk::protocol::methods::{CommandResult, CommandRunParams, ToolResult};
use outpost_sdk::protocol::{RegistrationKind, RejectionCode};
use outpost_sdk::{
    BuildError, Command, Error, GatewayMethod, Hook, HttpRoute, Plugin, PluginBuilder, RouteAuth,
    Service, Tool,
};
use serde_json::{Value, json};

async fn tool(_ctx: outpost_sdk::Context, _args: Value) -> Result<ToolResult, Error> {
    Ok(ToolResult::text("ok"))
}

async fn command(
    _ctx: outpost_sdk::Context,
    _params: CommandRunParams,
) -> Result<CommandResult, Error> {
    Ok(CommandResult::default())
}

async fn method(_ctx: outpost_sdk::Context, _params: Value) -> Result<Value, Error> {
    Ok(Value::Null)
}

/// Adds registrations to an empty plugin.
type Declare = Box<dyn FnOnce(PluginBuilder) -> PluginBuilder>;

fn with(f: impl FnOnce(PluginBuilder) -> PluginBuilder) -> Result<(), BuildError> {
    f(Plugin::builder("demo")).build().map(drop)
}

#[test]
fn bad_registrations_are_refused_with_the_rule_they_break() {
    let cases: Vec<(&str, Declare, RegistrationKind, RejectionCode, &str)> = vec![
        (
            "tool name",
            Box::new(|p| p.tool(Tool::new("two words", "d"), tool)),
            RegistrationKind::Tool,
            RejectionCode::Invalid,
            "must be 1 to 64",
        ),
        (
            "tool description",
            Box::new(|p| p.tool(Tool::new("t", " "), tool)),
            RegistrationKind::Tool,
            RejectionCode::Invalid,
            "needs a description",
        ),
        (
            "tool schema",
            Box::new(|p| p.tool(Tool::new("t", "d").input_schema(json!(true)), tool)),
            RegistrationKind::Tool,
            RejectionCode::Invalid,
            "JSON Schema object",
        ),
        (
            "hook event",
            Box::new(|p| {
                p.hook(Hook::new("before_lunch"), |_c, _p: Value| async {
                    Ok(None::<Value>)
                })
            }),
            RegistrationKind::Hook,
            RejectionCode::UnknownHook,
            "not a known hook event",
        ),
        (
            "reserved command",
            Box::new(|p| p.command(Command::new("help", "d"), command)),
            RegistrationKind::Command,
            RejectionCode::Reserved,
            "help",
        ),
        (
            "method namespace",
            Box::new(|p| p.method(GatewayMethod::new("config.set"), method)),
            RegistrationKind::GatewayMethod,
            RejectionCode::Namespace,
            "gateway's core owns",
        ),
        (
            "route path",
            Box::new(|p| {
                p.http_route(
                    HttpRoute::new("no-slash", RouteAuth::Gateway),
                    |_c, _r| async { Ok(outpost_sdk::http::text(200, "")) },
                )
            }),
            RegistrationKind::HttpRoute,
            RejectionCode::Invalid,
            "no-slash",
        ),
        (
            "service id",
            Box::new(|p| p.service(Service::new(""), |_s| async { Ok(()) })),
            RegistrationKind::Service,
            RejectionCode::Invalid,
            "service",
        ),
    ];
    for (what, build, kind, code, needle) in cases {
        match with(build) {
            Err(BuildError::Registration {
                plugin_id,
                kind: k,
                problem,
                ..
            }) => {
                assert_eq!(
                    (plugin_id.as_str(), k, problem.code),
                    ("demo", kind, code),
                    "{what}"
                );
                assert!(
                    problem.reason.contains(needle),
                    "{what}: {}",
                    problem.reason
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn duplicates_and_bad_ids_are_refused() {
    let twice = with(|p| {
        p.tool(Tool::new("t", "d"), tool)
            .tool(Tool::new("t", "again"), tool)
    });
    assert_eq!(
        twice.unwrap_err().to_string(),
        "tool `t` is registered twice in plugin `demo`; register it once"
    );
    // Commands are keyed by their lowercased name.
    let case = with(|p| {
        p.command(Command::new("Go", "d"), command)
            .command(Command::new("go", "d"), command)
    });
    assert!(
        matches!(case, Err(BuildError::Duplicate { .. })),
        "{case:?}"
    );
    for id in ["", "two words"] {
        let error = Plugin::builder(id).build().unwrap_err();
        assert!(matches!(error, BuildError::PluginId(_)), "{id:?}");
    }
}

#[test]
fn derived_and_written_schemas_are_sent_as_given() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        /// What to find.
        query: String,
        limit: Option<u32>,
    }
    let plugin = Plugin::builder("demo")
        .tool(Tool::new("derived", "d").input::<Args>(), tool)
        .tool(
            Tool::new("written", "d").input_schema(json!({"type": "object", "maxProperties": 1})),
            tool,
        )
        .tool(Tool::new("default", "d"), tool)
        .build()
        .unwrap();
    let schemas: Vec<Value> = plugin
        .registrations()
        .into_iter()
        .map(|r| match r {
            outpost_sdk::protocol::Registration::Tool(t) => t.input_schema,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(schemas[0]["required"], json!(["query"]));
    assert_eq!(
        schemas[0]["properties"]["query"]["description"],
        "What to find."
    );
    assert!(schemas[0].get("$schema").is_none());
    assert_eq!(schemas[1], json!({"type": "object", "maxProperties": 1}));
    assert_eq!(schemas[2], json!({"type": "object"}));
}
