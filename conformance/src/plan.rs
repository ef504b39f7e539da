//! What a run is about before anything starts: the target, the options, and the plan
//! (what to start, with which id, config and slow call).
//!
//! The suite's modules read the plan; none of them depends on the code that runs the
//! suite ([`mod@crate::run`]), which depends on them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use outpost_protocol::RegistrationKind;
use serde_json::{Map, Value};

use crate::checks::{CHECKS, CheckId, FAMILIES, closest_id};
use crate::launch::{Launch, ResolveError, plugin_env, resolve_program};
use crate::manifest::{ConfigError, Manifest, ManifestError, build_config};

/// What to test.
#[derive(Clone, Debug)]
pub enum Target {
    /// A plugin root with an `openclaw.plugin.json` that has an `outpost` launch block.
    PluginDir(PathBuf),
    /// A program and its arguments, started in the current directory.
    Command(Vec<String>),
}

/// How to run the suite; [`Options::default`] documents the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The plugin id: required to check `plugin.id` for [`Target::Command`]; for a
    /// plugin directory the manifest's id is used and this must match it if given.
    pub plugin_id: Option<String>,
    /// The plugin config (a JSON object); the manifest's schema defaults are filled in.
    pub config: Option<Value>,
    /// Directories searched before `PATH` for a bare command name.
    pub bin_path: Vec<PathBuf>,
    /// How long any one step may take. Default 5 s.
    pub step_timeout: Duration,
    /// How long `initialize` may take. Default 10 s (the host's default).
    pub handshake_timeout: Duration,
    /// Check ids or family names to run; empty runs every check.
    pub only: Vec<String>,
    /// Write every line exchanged, with timestamps, to this file.
    pub transcript: Option<PathBuf>,
    /// The `limits.maxMessageBytes` announced to the plugin. Default 1 MiB: smaller than
    /// the host's 16 MiB so the near-limit checks stay fast.
    pub max_message_bytes: usize,
    /// A slow, side-effect-free call for the concurrency, cancellation and reused-id
    /// checks. Default none: a plugin with the fixture capability is checked with
    /// `fixture/sleep`, any other plugin is not checked (and the report says so).
    pub slow_call: Option<SlowCall>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plugin_id: None,
            config: None,
            bin_path: Vec::new(),
            step_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            only: Vec::new(),
            transcript: None,
            max_message_bytes: 1024 * 1024,
            slow_call: None,
        }
    }
}

/// Why the suite could not start testing (as opposed to a plugin failing checks).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plugin directory's manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The plugin's config could not be built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plugin's program could not be found.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// `run --` without a command.
    #[error("no command given: use `run -- <command> [args...]` or `run --plugin-dir DIR`")]
    NoCommand,
    /// `--plugin-id` contradicts the manifest.
    #[error(
        "--plugin-id `{given}` differs from the manifest's id `{manifest}`; drop --plugin-id when using --plugin-dir"
    )]
    IdMismatch {
        /// The option.
        given: String,
        /// The manifest's id.
        manifest: String,
    },
    /// The plugin could not be started at all.
    #[error("cannot start the plugin `{command}`")]
    Spawn {
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--only` names no check or family.
    #[error(
        "--only: unknown check or family `{id}`{hint}; `outpost-conformance list` prints every id"
    )]
    UnknownCheck {
        /// As given.
        id: String,
        /// ` (did you mean ...?)` or empty.
        hint: String,
    },
    /// The transcript file could not be created.
    #[error("cannot create the transcript file {path}")]
    Transcript {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where the plugin id came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdSource {
    Manifest,
    Option,
    /// Not known before the handshake: taken from the plugin's answer.
    Plugin,
}

/// The id sent in `initialize` when the plugin's id is not known yet.
pub(crate) const PLACEHOLDER_ID: &str = "conformance-plugin";

/// Everything resolved before the first spawn.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) launch: Launch,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) plugin_id: String,
    pub(crate) id_source: IdSource,
    pub(crate) config: Map<String, Value>,
    pub(crate) dir: Option<PathBuf>,
}

impl Plan {
    pub(crate) fn new(target: &Target, options: &Options) -> Result<Self, RunError> {
        let bin_path: Vec<PathBuf> = options
            .bin_path
            .iter()
            .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
            .collect();
        match target {
            Target::PluginDir(dir) => {
                let root = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                let manifest = Manifest::read(&root)?;
                if let Some(given) = &options.plugin_id
                    && *given != manifest.id
                {
                    return Err(RunError::IdMismatch {
                        given: given.clone(),
                        manifest: manifest.id.clone(),
                    });
                }
                let config = build_config(&manifest.config_schema, options.config.as_ref())?;
                let program = resolve_program(&manifest.command, &root, &bin_path)?;
                let launch = Launch {
                    program,
                    args: manifest.args.clone(),
                    cwd: root.clone(),
                    env: plugin_env(&manifest.env_passthrough, &manifest.env_set),
                };
                Ok(Self {
                    launch,
                    plugin_id: manifest.id.clone(),
                    id_source: IdSource::Manifest,
                    manifest: Some(manifest),
                    config,
                    dir: Some(root),
                })
            }
            Target::Command(words) => {
                let (command, args) = words.split_first().ok_or(RunError::NoCommand)?;
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                let program = resolve_program(command, &cwd, &bin_path)?;
                let config = match &options.config {
                    None => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(other) => {
                        return Err(ConfigError::NotAnObject(format!("got {other}")).into());
                    }
                };
                let (plugin_id, id_source) = match &options.plugin_id {
                    Some(id) => (id.clone(), IdSource::Option),
                    None => (PLACEHOLDER_ID.to_owned(), IdSource::Plugin),
                };
                Ok(Self {
                    launch: Launch {
                        program,
                        args: args.to_vec(),
                        cwd,
                        env: plugin_env(&[], &BTreeMap::new()),
                    },
                    manifest: None,
                    plugin_id,
                    id_source,
                    config,
                    dir: None,
                })
            }
        }
    }
}

/// Turns `--only` words into the set of checks to run; `None` runs everything.
pub(crate) fn selection(only: &[String]) -> Result<Option<BTreeSet<CheckId>>, RunError> {
    if only.is_empty() {
        return Ok(None);
    }
    let mut selected = BTreeSet::new();
    for word in only {
        let word = word.trim();
        if FAMILIES.contains(&word) {
            selected.extend(CHECKS.iter().filter(|c| c.family() == word).map(|c| c.key));
        } else if let Some(check) = CHECKS.iter().find(|c| c.id == word) {
            selected.insert(check.key);
        } else {
            return Err(RunError::UnknownCheck {
                id: word.to_owned(),
                hint: closest_id(word)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default(),
            });
        }
    }
    Ok(Some(selected))
}

/// A slow, side-effect-free call of the plugin (`--slow-call 'KIND NAME JSON_ARGS'`), for
/// the checks that need a call in flight: concurrency, cancellation and reused ids.
///
/// | kind | name | JSON_ARGS |
/// | --- | --- | --- |
/// | `tool` | the tool | its arguments (an object) |
/// | `hook` | the event | its payload (an object) |
/// | `command` | the command | its args (a string), or nothing |
/// | `gatewayMethod` | the method | its params |
/// | `httpRoute` | the route path | the request (`method`, `headers`, `body`...) |
/// | `provider` | `<capability>:<id>` | `{"operation": ..., "params": ...}` |
/// | `channel`, `contextEngine` | the id | `{"operation": ..., "params": ...}` |
///
/// An empty JSON_ARGS means `{}` (no args for a command). Services cannot be the slow
/// call: `service/start` is not a call with a caller waiting for it.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowCall {
    /// The registration kind, as on the wire.
    pub kind: RegistrationKind,
    /// The registration's name within its kind.
    pub name: String,
    /// What the call carries (see the table).
    pub args: Value,
}

/// Why a `--slow-call` value is unusable.
#[derive(Debug, thiserror::Error)]
#[error(
    "--slow-call `{given}`: {reason}; the form is 'KIND NAME JSON_ARGS', e.g. 'tool slow {{\"ms\":3000}}'"
)]
pub struct SlowCallError {
    given: String,
    reason: String,
}

impl FromStr for SlowCall {
    type Err = SlowCallError;

    fn from_str(given: &str) -> Result<Self, SlowCallError> {
        let error = |reason: String| SlowCallError {
            given: given.to_owned(),
            reason,
        };
        let mut words = given.trim().splitn(2, char::is_whitespace);
        let kind_word = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default().trim_start();
        let (name, json) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let kind = RegistrationKind::from_name(kind_word).ok_or_else(|| {
            error(format!(
                "unknown kind `{kind_word}` (known: {})",
                RegistrationKind::ALL
                    .map(RegistrationKind::as_str)
                    .join(", ")
            ))
        })?;
        if name.is_empty() {
            return Err(error(format!("no {kind} name")));
        }
        let json = json.trim();
        let args: Option<Value> = if json.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str(json)
                    .map_err(|e| error(format!("JSON_ARGS is not JSON ({e})")))?,
            )
        };
        let object = |args: Option<Value>, what: &str| match args {
            None => Ok(Value::Object(Map::new())),
            Some(value @ Value::Object(_)) => Ok(value),
            Some(other) => Err(error(format!("{what} must be a JSON object, not {other}"))),
        };
        let args = match kind {
            RegistrationKind::Tool => object(args, "a tool's arguments")?,
            RegistrationKind::Hook => object(args, "a hook's payload")?,
            RegistrationKind::HttpRoute => object(args, "a route's request")?,
            RegistrationKind::GatewayMethod => args.unwrap_or_else(|| Value::Object(Map::new())),
            RegistrationKind::Command => match args {
                None | Some(Value::Null) => Value::Null,
                Some(text @ Value::String(_)) => text,
                Some(other) => {
                    return Err(error(format!(
                        "a command's args must be a JSON string, not {other}"
                    )));
                }
            },
            RegistrationKind::Provider
            | RegistrationKind::Channel
            | RegistrationKind::ContextEngine => {
                if kind == RegistrationKind::Provider && !name.contains(':') {
                    return Err(error(
                        "a provider is named `<capability>:<id>`, e.g. `webSearch:my-search`"
                            .to_owned(),
                    ));
                }
                let args = object(args, "an operation's JSON_ARGS")?;
                if !args.get("operation").is_some_and(Value::is_string) {
                    return Err(error(format!(
                        "a {kind}'s JSON_ARGS is {{\"operation\": ..., \"params\": ...}}"
                    )));
                }
                args
            }
            RegistrationKind::Service => {
                return Err(error(
                    "a service cannot be the slow call: nobody waits for `service/start`"
                        .to_owned(),
                ));
            }
        };
        Ok(Self {
            kind,
            name: name.to_owned(),
            args,
        })
    }
}

impl fmt::Display for SlowCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if !self.args.is_null() {
            write!(f, " {}", self.args)?;
        }
        Ok(())
    }
}

impl SlowCall {
    /// Whether `key` (a registration's key within [`SlowCall::kind`]) is this call's.
    pub(crate) fn names(&self, key: &str) -> bool {
        match self.kind {
            RegistrationKind::Command => key == self.name.trim().to_lowercase(),
            RegistrationKind::HttpRoute => {
                key == self.name || key.strip_suffix(" (prefix)") == Some(self.name.as_str())
            }
            _ => key == self.name,
        }
    }

    /// The request: its method and params, with `context`.
    pub(crate) fn request(&self, context: &Value) -> (&'static str, Value) {
        let name = self.name.as_str();
        let args = self.args.clone();
        let operation = |mut params: Map<String, Value>| {
            let call = self.args.as_object().cloned().unwrap_or_default();
            params.insert(
                "operation".into(),
                call.get("operation").cloned().unwrap_or(Value::Null),
            );
            params.insert(
                "params".into(),
                call.get("params")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            );
            params.insert("context".into(), context.clone());
            Value::Object(params)
        };
        match self.kind {
            RegistrationKind::Tool => (
                "tool/invoke",
                serde_json::json!({"name": name, "arguments": args, "context": context}),
            ),
            RegistrationKind::Hook => (
                "hook/run",
                serde_json::json!({"event": name, "payload": args, "context": context}),
            ),
            RegistrationKind::Command => {
                let command = name.trim().to_lowercase();
                let mut params = serde_json::json!({
                    "name": command,
                    "commandBody": format!("/{command}"),
                    "context": context,
                });
                if let Some(text) = args.as_str().filter(|t| !t.is_empty()) {
                    params["args"] = Value::String(text.to_owned());
                    params["commandBody"] = Value::String(format!("/{command} {text}"));
                }
                ("command/run", params)
            }
            RegistrationKind::GatewayMethod => (
                "method/call",
                serde_json::json!({"method": name, "params": args, "context": context}),
            ),
            RegistrationKind::HttpRoute => {
                let mut request = serde_json::json!({"method": "GET", "path": name, "headers": {}});
                if let (Some(request), Value::Object(given)) = (request.as_object_mut(), args) {
                    request.extend(given);
                }
                (
                    "http/handle",
                    serde_json::json!({"route": name, "request": request, "context": context}),
                )
            }
            RegistrationKind::Provider => {
                let (capability, id) = name.split_once(':').unwrap_or((name, ""));
                let mut params = Map::new();
                params.insert("capability".into(), capability.into());
                params.insert("id".into(), id.into());
                ("provider/call", operation(params))
            }
            RegistrationKind::Channel | RegistrationKind::ContextEngine => {
                let mut params = Map::new();
                params.insert("id".into(), name.into());
                let method = if self.kind == RegistrationKind::Channel {
                    "channel/call"
                } else {
                    "contextEngine/call"
                };
                (method, operation(params))
            }
            RegistrationKind::Service => unreachable!("refused when parsed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_ids_and_families() {
        assert_eq!(selection(&[]).unwrap(), None);
        let selected = selection(&["shutdown".into(), "calls.ping".into()])
            .unwrap()
            .unwrap();
        assert!(selected.contains(&CheckId::ShutdownSigterm));
        assert!(selected.contains(&CheckId::CallsPing));
        assert!(!selected.contains(&CheckId::CallsTools));
        let error = selection(&["calls.pnig".into()]).unwrap_err().to_string();
        assert!(error.contains("did you mean `calls.ping`"), "{error}");
    }

    #[test]
    fn slow_calls_parse_per_kind() {
        let call = |text: &str| text.parse::<SlowCall>();
        let tool = call(r#"tool slow {"ms": 3000}"#).unwrap();
        assert_eq!(tool.kind, RegistrationKind::Tool);
        let (method, params) = tool.request(&serde_json::json!({}));
        assert_eq!(method, "tool/invoke");
        assert_eq!(params["name"], "slow");
        assert_eq!(params["arguments"]["ms"], 3000);
        assert_eq!(tool.to_string(), r#"tool slow {"ms":3000}"#);

        let (method, params) = call("tool slow").unwrap().request(&serde_json::json!({}));
        assert_eq!(
            (method, &params["arguments"]),
            ("tool/invoke", &serde_json::json!({}))
        );

        let (method, params) = call(r#"command Wait "5""#)
            .unwrap()
            .request(&serde_json::json!({}));
        assert_eq!(method, "command/run");
        assert_eq!(params["name"], "wait");
        assert_eq!(params["args"], "5");
        assert_eq!(params["commandBody"], "/wait 5");
        let (_, params) = call("command wait")
            .unwrap()
            .request(&serde_json::json!({}));
        assert!(
            params.get("args").is_none(),
            "no args member, never \"\": {params}"
        );

        let provider =
            call(r#"provider webSearch:web {"operation": "search", "params": {"q": "x"}}"#)
                .unwrap();
        let (method, params) = provider.request(&serde_json::json!({}));
        assert_eq!(method, "provider/call");
        assert_eq!(
            (
                &params["capability"],
                &params["id"],
                &params["operation"],
                &params["params"]["q"]
            ),
            (
                &"webSearch".into(),
                &"web".into(),
                &"search".into(),
                &"x".into()
            )
        );
        assert!(provider.names("webSearch:web"));

        let route = call("httpRoute /hooks/wait").unwrap();
        assert!(route.names("/hooks/wait (prefix)"));
        assert_eq!(
            route.request(&serde_json::json!({})).1["request"]["path"],
            "/hooks/wait"
        );

        for (bad, says) in [
            ("widget slow {}", "unknown kind `widget`"),
            ("tool", "no tool name"),
            ("tool slow [1]", "must be a JSON object"),
            ("tool slow {", "not JSON"),
            ("service ticker", "cannot be the slow call"),
            ("provider web {\"operation\":\"x\"}", "<capability>:<id>"),
            ("channel chat {}", "operation"),
            ("command wait 5", "must be a JSON string"),
        ] {
            let error = call(bad).unwrap_err().to_string();
            assert!(
                error.contains(says) && error.contains("KIND NAME JSON_ARGS"),
                "{bad}: {error}"
            );
        }
    }
}
