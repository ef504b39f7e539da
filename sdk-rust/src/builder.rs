//! Declaring a plugin: its identity, its registrations and their handlers.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use foldhash::HashMap;

use outpost_protocol::methods::{CommandResult, CommandRunParams, HttpRequest, HttpResponse};
use outpost_protocol::methods::{PluginInfo, ToolResult};
use outpost_protocol::peer::ResultLine;
use outpost_protocol::{
    ChannelRegistration, CommandRegistration, ContextEngineRegistration, ErrorCode,
    GatewayMethodRegistration, HookRegistration, HttpRouteRegistration, ProviderCapability,
    ProviderRegistration, Registration, RegistrationKind, RequestId, RouteAuth, RouteMatch,
    ServiceRegistration, ToolRegistration,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::context::{Context, RawConfig, ServiceContext, Work};
use crate::{BuildError, Error};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler's input: the JSON text of a tool's arguments where it arrived (read once,
/// straight into the handler's type, when the handler is called), or a value the
/// session built.
pub(crate) enum Input<'a> {
    Raw(&'a RawValue),
    Value(Value),
}

/// A handler's result, serialized once from the handler's own type, straight into the
/// line that answers the call.
pub(crate) type Output = ResultLine;

/// A handler with its input and output erased to JSON.
pub(crate) type Handler<C> =
    Arc<dyn Fn(Context<C>, Input<'_>) -> BoxFuture<Result<Output, Error>> + Send + Sync>;

/// A service's start or stop function.
pub(crate) type ServiceFn<C> =
    Arc<dyn Fn(ServiceContext<C>) -> BoxFuture<Result<(), Error>> + Send + Sync>;

/// A call, ready to run once given its context.
pub(crate) type Run<C> = Box<dyn FnOnce(Context<C>) -> BoxFuture<Result<Output, Error>> + Send>;

/// A setup function.
pub(crate) type SetupFn<C> = Arc<dyn Fn(Context<C>) -> BoxFuture<Result<(), Error>> + Send + Sync>;

/// The bounds a config type needs.
pub trait ConfigType: DeserializeOwned + Send + Sync + 'static {}
impl<T: DeserializeOwned + Send + Sync + 'static> ConfigType for T {}

/// Erases `f`; `what` names the registration in input errors.
fn erase<C, I, O, F, Fut>(what: String, f: F) -> Handler<C>
where
    C: ConfigType,
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(Context<C>, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, Error>> + Send + 'static,
{
    Arc::new(move |ctx, input| match read_input::<I>(input) {
        Ok(input) => {
            let work = ctx.work.clone();
            let future = f(ctx, input);
            Box::pin(async move { to_json(&work, &future.await?) })
        }
        Err(e) => {
            let error = Error::invalid_params(format!(
                "invalid input for {what}: {}",
                without_position(&e)
            ));
            Box::pin(async move { Err(error) })
        }
    })
}

fn read_input<I: DeserializeOwned>(input: Input<'_>) -> serde_json::Result<I> {
    match input {
        Input::Raw(raw) => serde_json::from_str(raw.get()),
        Input::Value(value) => serde_json::from_value(value),
    }
}

/// What serde_json found wrong, without the position in the text: the input is one
/// small object the caller built, not a document they can open at a line and column.
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if e.line() == 0 {
        return message;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned)
}

/// The answer to `work`'s request: its result serialized straight from its type into
/// the response's line, no [`Value`] in between.
pub(crate) fn to_json(work: &Work, value: &impl Serialize) -> Result<Output, Error> {
    // Every call has its request's id; were one missing, the responder would write the
    // result again under its own id (`ResultLine` is checked against it).
    let unknown = RequestId::Number(0.into());
    ResultLine::new(work.id.as_ref().unwrap_or(&unknown), value).map_err(|e| {
        Error::with_code(
            ErrorCode::InternalError,
            format!("the handler's result cannot be turned into JSON: {e}"),
        )
    })
}

/// What a registration runs.
pub(crate) enum Target<C> {
    /// Tools, hooks, commands, gateway methods, HTTP routes.
    Call(Handler<C>),
    /// A service.
    Service {
        start: ServiceFn<C>,
        stop: Option<ServiceFn<C>>,
    },
    /// Providers, channels, context engines: one handler per operation.
    Operations(Operations<C>),
}

pub(crate) struct Entry<C> {
    pub(crate) registration: Registration,
    pub(crate) target: Target<C>,
    /// What a call to it is called in logs and errors (e.g. `tool/word_count`); built
    /// once here rather than at every call.
    pub(crate) call_name: Arc<str>,
}

/// The name of a call to `registration`, for [`Entry::call_name`].
fn call_name(registration: &Registration) -> Arc<str> {
    let name = match registration {
        Registration::Tool(t) => format!("tool/{}", t.name),
        Registration::Hook(h) => format!("hook/{}", h.event),
        Registration::HttpRoute(r) => format!("http{}", r.path),
        Registration::GatewayMethod(m) => format!("method/{}", m.method),
        other => format!("{}/{}", other.kind(), other.key()),
    };
    name.into()
}

/// A plugin, ready to serve: run it with [`Plugin::run`] from `main`, or drive it in a
/// test with [`Plugin::serve_on`] or [`crate::testing::TestHost`].
pub struct Plugin<C = RawConfig> {
    pub(crate) info: PluginInfo,
    pub(crate) fixture: bool,
    /// Worker threads of the runtime [`Plugin::run`] builds; `None`: one thread.
    pub(crate) worker_threads: Option<usize>,
    pub(crate) entries: Vec<Entry<C>>,
    /// Kind, then key, to the index in `entries` (= in the `initialize` result).
    pub(crate) index: HashMap<RegistrationKind, HashMap<String, usize>>,
    pub(crate) setup: Option<SetupFn<C>>,
}

impl<C> Plugin<C> {
    /// Where the registration of `kind` named `key` is in `entries`.
    pub(crate) fn lookup(&self, kind: RegistrationKind, key: &str) -> Option<usize> {
        self.index.get(&kind)?.get(key).copied()
    }
}

impl<C> fmt::Debug for Plugin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("fixture", &self.fixture)
            .field("registrations", &self.registrations())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Starts declaring a plugin whose handlers read the config as JSON
    /// ([`RawConfig`]). `id` must be the manifest's `id`.
    pub fn builder(id: impl Into<String>) -> PluginBuilder<RawConfig> {
        PluginBuilder::new(id.into())
    }

    /// Starts declaring a plugin whose handlers read the config as a `C`, deserialized
    /// once from the validated config the host sends in `initialize`. A config that does
    /// not fit `C` is a permanent failure (exit 78) with the serde error as the reason.
    pub fn with_config<C: ConfigType>(id: impl Into<String>) -> PluginBuilder<C> {
        PluginBuilder::new(id.into())
    }
}

impl<C> Plugin<C> {
    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// What the plugin sends in its `initialize` result, in order.
    pub fn registrations(&self) -> Vec<Registration> {
        self.entries
            .iter()
            .map(|e| e.registration.clone())
            .collect()
    }
}

/// Declares a plugin. Created by [`Plugin::builder`] or [`Plugin::with_config`].
///
/// Each registration method takes the registration (what the host sees) and its handler:
/// an async function of a [`Context`] and the input, deserialized with serde from the
/// call's params, returning a serializable result or an [`Error`].
pub struct PluginBuilder<C = RawConfig> {
    info: PluginInfo,
    fixture: bool,
    worker_threads: Option<usize>,
    entries: Vec<Entry<C>>,
    setup: Option<SetupFn<C>>,
}

impl<C> fmt::Debug for PluginBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginBuilder")
            .field("info", &self.info)
            .field("registrations", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<C: ConfigType> PluginBuilder<C> {
    fn new(id: String) -> Self {
        Self {
            info: PluginInfo {
                id,
                name: None,
                version: None,
            },
            fixture: false,
            worker_threads: None,
            entries: Vec::new(),
            setup: None,
        }
    }

    /// The display name sent in `initialize`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.info.name = Some(name.into());
        self
    }

    /// The version sent in `initialize` (e.g. `env!("CARGO_PKG_VERSION")`).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.info.version = Some(version.into());
        self
    }

    /// Runs the plugin on a tokio runtime with `threads` worker threads (at least one),
    /// for handlers that do CPU-heavy work in parallel. By default [`Plugin::run`] uses
    /// a single-threaded runtime, and a thread that reads the host's messages and
    /// answers the calls that finish at once: no hand-off between threads per call,
    /// which is faster per call (docs/performance.md has the figures). Either
    /// way, blocking work belongs in `tokio::task::spawn_blocking`: a handler that holds
    /// the thread delays `ping`, and a host restarts a plugin that stops answering it.
    #[must_use]
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads.max(1));
        self
    }

    /// Declares the conformance fixture capability (`capabilities.fixture`): the SDK then
    /// answers the `fixture/*` methods, so `outpost-conformance` can run its deeper
    /// checks. Off by default; leave it off in production.
    #[must_use]
    pub fn fixture(mut self, enabled: bool) -> Self {
        self.fixture = enabled;
        self
    }

    /// A function run during `initialize`, after the config was read and before the
    /// answer: check the config, open files, warm caches. An [`Error::permanent`] ends
    /// the plugin with exit 78; another error answers `initialize` with the error and
    /// ends the plugin as a crash (the host restarts it). Requests to the host are not
    /// allowed yet.
    #[must_use]
    pub fn setup<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Context<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.setup = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    fn push(mut self, registration: Registration, target: Target<C>) -> Self {
        self.entries.push(Entry {
            call_name: call_name(&registration),
            registration,
            target,
        });
        self
    }

    /// An agent tool. The handler gets the call's `arguments` as an `A`.
    #[must_use]
    pub fn tool<A, F, Fut>(self, tool: Tool, f: F) -> Self
    where
        A: DeserializeOwned,
        F: Fn(Context<C>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, Error>> + Send + 'static,
    {
        let what = format!("tool `{}`", tool.0.name);
        self.push(Registration::Tool(tool.0), Target::Call(erase(what, f)))
    }

    /// A typed hook. The handler gets the event's `payload` as a `P`, and returns the
    /// fields to merge (an object), or `None` for nothing to add.
    #[must_use]
    pub fn hook<P, R, F, Fut>(self, hook: Hook, f: F) -> Self
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(Context<C>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<R>, Error>> + Send + 'static,
    {
        let what = format!("hook `{}`", hook.0.event);
        self.push(Registration::Hook(hook.0), Target::Call(erase(what, f)))
    }

    /// A slash command. The handler gets the command's params (`args`, `commandBody`).
    #[must_use]
    pub fn command<F, Fut>(self, command: Command, f: F) -> Self
    where
        F: Fn(Context<C>, CommandRunParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CommandResult, Error>> + Send + 'static,
    {
        let what = format!("command `/{}`", command.0.name);
        self.push(
            Registration::Command(command.0),
            Target::Call(erase(what, f)),
        )
    }

    /// A gateway method `<pluginId>.<action>`. The handler gets the caller's `params` as
    /// a `P` (use `serde_json::Value` to take anything) and returns any JSON.
    #[must_use]
    pub fn method<P, R, F, Fut>(self, method: GatewayMethod, f: F) -> Self
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(Context<C>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        let what = format!("gateway method `{}`", method.0.method);
        self.push(
            Registration::GatewayMethod(method.0),
            Target::Call(erase(what, f)),
        )
    }

    /// An HTTP route on the gateway's server. See [`crate::http`] for responses.
    #[must_use]
    pub fn http_route<F, Fut>(self, route: HttpRoute, f: F) -> Self
    where
        F: Fn(Context<C>, HttpRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HttpResponse, Error>> + Send + 'static,
    {
        let what = format!("HTTP route `{}`", route.0.path);
        self.push(
            Registration::HttpRoute(route.0),
            Target::Call(erase(what, f)),
        )
    }

    /// A background service. `start` runs on `service/start`; it should return once the
    /// service is up, leaving long-running work to [`ServiceContext::spawn`]. On
    /// `service/stop` (and at shutdown) the service's cancellation fires and its tasks
    /// are awaited.
    #[must_use]
    pub fn service<F, Fut>(self, service: Service, start: F) -> Self
    where
        F: Fn(ServiceContext<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.push(
            Registration::Service(service.0),
            Target::Service {
                start: Arc::new(move |ctx| Box::pin(start(ctx))),
                stop: None,
            },
        )
    }

    /// A background service with a stop function, run on `service/stop` after the
    /// service's cancellation fired and before its tasks are awaited.
    #[must_use]
    pub fn service_with_stop<F, Fut, G, Gut>(self, service: Service, start: F, stop: G) -> Self
    where
        F: Fn(ServiceContext<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
        G: Fn(ServiceContext<C>) -> Gut + Send + Sync + 'static,
        Gut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.push(
            Registration::Service(service.0),
            Target::Service {
                start: Arc::new(move |ctx| Box::pin(start(ctx))),
                stop: Some(Arc::new(move |ctx| Box::pin(stop(ctx)))),
            },
        )
    }

    /// A provider of one capability, with a handler per operation.
    #[must_use]
    pub fn provider(self, provider: Provider, operations: Operations<C>) -> Self {
        self.push(
            Registration::Provider(provider.0),
            Target::Operations(operations),
        )
    }

    /// A messaging channel, with a handler per operation.
    #[must_use]
    pub fn channel(self, channel: Channel, operations: Operations<C>) -> Self {
        self.push(
            Registration::Channel(channel.0),
            Target::Operations(operations),
        )
    }

    /// A context engine, with a handler per operation (`ingest`, `assemble`, `compact`).
    #[must_use]
    pub fn context_engine(self, engine: ContextEngine, operations: Operations<C>) -> Self {
        self.push(
            Registration::ContextEngine(engine.0),
            Target::Operations(operations),
        )
    }

    /// Checks every registration against the protocol's rules
    /// ([`Registration::check`]) and for duplicates.
    pub fn build(self) -> Result<Plugin<C>, BuildError> {
        let id = &self.info.id;
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return Err(BuildError::PluginId(id.clone()));
        }
        let mut index: HashMap<RegistrationKind, HashMap<String, usize>> = HashMap::default();
        for (i, entry) in self.entries.iter().enumerate() {
            let registration = &entry.registration;
            let (kind, key) = (registration.kind(), registration.key());
            if let Err(problem) = registration.check(id) {
                return Err(BuildError::Registration {
                    plugin_id: id.clone(),
                    kind,
                    key,
                    problem,
                });
            }
            if index
                .entry(kind)
                .or_default()
                .insert(key.clone(), i)
                .is_some()
            {
                return Err(BuildError::Duplicate {
                    plugin_id: id.clone(),
                    kind,
                    key,
                });
            }
        }
        Ok(Plugin {
            info: self.info,
            fixture: self.fixture,
            worker_threads: self.worker_threads,
            entries: self.entries,
            index,
            setup: self.setup,
        })
    }

    /// Builds the plugin and runs it on stdin and stdout ([`Plugin::run`]). A
    /// registration that breaks a rule is reported on stderr and ends the process with
    /// status 78: a code mistake a restart cannot fix.
    pub fn run(self) -> std::process::ExitCode {
        match self.build() {
            Ok(plugin) => plugin.run(),
            Err(e) => crate::stdio::permanent_failure(&e.to_string()),
        }
    }
}

/// The operations of a provider, channel or context engine, each with its handler. An
/// operation not listed is answered `-32601`.
pub struct Operations<C = RawConfig> {
    pub(crate) handlers: BTreeMap<String, Handler<C>>,
}

impl<C> fmt::Debug for Operations<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl<C: ConfigType> Default for Operations<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: ConfigType> Operations<C> {
    /// No operations yet.
    pub fn new() -> Self {
        Self {
            handlers: BTreeMap::new(),
        }
    }

    /// Adds the handler of `operation`: it gets the operation's `params` as a `P` and
    /// returns any JSON.
    #[must_use]
    pub fn on<P, R, F, Fut>(mut self, operation: impl Into<String>, f: F) -> Self
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(Context<C>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        let operation = operation.into();
        let what = format!("operation `{operation}`");
        self.handlers.insert(operation, erase(what, f));
        self
    }

    pub(crate) fn names(&self) -> String {
        self.handlers
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An agent tool's registration.
#[derive(Clone, Debug)]
pub struct Tool(ToolRegistration);

impl Tool {
    /// A tool taking any object (`{"type": "object"}`) until an input schema is given.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self(ToolRegistration {
            name: name.into(),
            description: description.into(),
            input_schema: json!({"type": "object"}),
            replay_safe: false,
        })
    }

    /// The JSON Schema of the tool's `arguments`, written by hand.
    #[must_use]
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.0.input_schema = schema;
        self
    }

    /// The JSON Schema of the tool's `arguments`, derived from `T` with schemars
    /// (without the `$schema` member, which some model APIs refuse).
    #[cfg(feature = "schemars")]
    #[must_use]
    pub fn input<T: schemars::JsonSchema>(mut self) -> Self {
        let mut schema = schemars::schema_for!(T).to_value();
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
        }
        self.0.input_schema = schema;
        self
    }

    /// The host may call it again after a plugin crash (it has no side effects, or they
    /// are idempotent).
    #[must_use]
    pub fn replay_safe(mut self, yes: bool) -> Self {
        self.0.replay_safe = yes;
        self
    }
}

/// A typed hook's registration.
#[derive(Clone, Debug)]
pub struct Hook(HookRegistration);

impl Hook {
    /// A hook for `event`, one of [`outpost_protocol::HOOK_EVENTS`].
    pub fn new(event: impl Into<String>) -> Self {
        Self(HookRegistration::new(event))
    }

    /// Tells this handler from the plugin's other handlers of the same event (needed to
    /// register several for one event).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.0.id = Some(id.into());
        self
    }

    /// `before_tool_call` and `after_tool_call` only: the tool names it is for.
    #[must_use]
    pub fn matcher(mut self, tools: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.0.matcher = Some(tools.into_iter().map(Into::into).collect());
        self
    }

    /// Its budget in milliseconds (the operator's hook timeouts override it).
    #[must_use]
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.0.timeout_ms = Some(ms);
        self
    }

    /// Higher runs first; default 0.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.0.priority = priority;
        self
    }

    /// What it does, for operators.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }
}

/// A slash command's registration.
#[derive(Clone, Debug)]
pub struct Command(CommandRegistration);

impl Command {
    /// `/name`; by default it takes no arguments and requires an authorized sender.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self(CommandRegistration {
            name: name.into(),
            description: description.into(),
            accepts_args: false,
            require_auth: true,
            native_names: BTreeMap::new(),
            replay_safe: false,
        })
    }

    /// Whether text after the command is passed as `args` (when false, a message with
    /// arguments does not match the command).
    #[must_use]
    pub fn accepts_args(mut self, yes: bool) -> Self {
        self.0.accepts_args = yes;
        self
    }

    /// Whether only authorized senders may run it (default true).
    #[must_use]
    pub fn require_auth(mut self, yes: bool) -> Self {
        self.0.require_auth = yes;
        self
    }

    /// An alias on one surface (`"default"`, `"discord"`...).
    #[must_use]
    pub fn native_name(mut self, surface: impl Into<String>, alias: impl Into<String>) -> Self {
        self.0.native_names.insert(surface.into(), alias.into());
        self
    }

    /// The host may run it again after a plugin crash.
    #[must_use]
    pub fn replay_safe(mut self, yes: bool) -> Self {
        self.0.replay_safe = yes;
        self
    }
}

/// A gateway method's registration.
#[derive(Clone, Debug)]
pub struct GatewayMethod(GatewayMethodRegistration);

impl GatewayMethod {
    /// `method` is `<pluginId>.<action>`.
    pub fn new(method: impl Into<String>) -> Self {
        Self(GatewayMethodRegistration {
            method: method.into(),
            description: None,
            replay_safe: false,
        })
    }

    /// What it does, for operators.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }

    /// The host may call it again after a plugin crash.
    #[must_use]
    pub fn replay_safe(mut self, yes: bool) -> Self {
        self.0.replay_safe = yes;
        self
    }
}

/// An HTTP route's registration.
#[derive(Clone, Debug)]
pub struct HttpRoute(HttpRouteRegistration);

impl HttpRoute {
    /// An exact-match route; `auth` says who authenticates its requests.
    pub fn new(path: impl Into<String>, auth: RouteAuth) -> Self {
        Self(HttpRouteRegistration {
            path: path.into(),
            auth,
            match_kind: RouteMatch::Exact,
            replace_existing: false,
        })
    }

    /// Matches the path and everything below it at a `/` boundary.
    #[must_use]
    pub fn prefix(mut self) -> Self {
        self.0.match_kind = RouteMatch::Prefix;
        self
    }

    /// Replaces this plugin's own route with the same path and match.
    #[must_use]
    pub fn replace_existing(mut self, yes: bool) -> Self {
        self.0.replace_existing = yes;
        self
    }
}

/// A background service's registration.
#[derive(Clone, Debug)]
pub struct Service(ServiceRegistration);

impl Service {
    /// `id` is unique across all plugins.
    pub fn new(id: impl Into<String>) -> Self {
        Self(ServiceRegistration {
            id: id.into(),
            description: None,
        })
    }

    /// What it does, for operators.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }
}

/// A provider's registration.
#[derive(Clone, Debug)]
pub struct Provider(ProviderRegistration);

impl Provider {
    /// A provider of `capability`, declared in the manifest field of that capability.
    pub fn new(capability: ProviderCapability, id: impl Into<String>) -> Self {
        Self(ProviderRegistration {
            capability,
            id: id.into(),
            label: None,
            replay_safe: false,
        })
    }

    /// A label for pickers.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    /// The host may call it again after a plugin crash.
    #[must_use]
    pub fn replay_safe(mut self, yes: bool) -> Self {
        self.0.replay_safe = yes;
        self
    }
}

/// A messaging channel's registration.
#[derive(Clone, Debug)]
pub struct Channel(ChannelRegistration);

impl Channel {
    /// A channel declared in the manifest's `channels`.
    pub fn new(id: impl Into<String>) -> Self {
        Self(ChannelRegistration {
            id: id.into(),
            meta: Value::Null,
            capabilities: Value::Null,
            replay_safe: false,
        })
    }

    /// Labels and docs (`label`, `selectionLabel`, `docsPath`, `blurb`, `aliases`...).
    #[must_use]
    pub fn meta(mut self, meta: Value) -> Self {
        self.0.meta = meta;
        self
    }

    /// What the channel supports (`chatTypes`...).
    #[must_use]
    pub fn capabilities(mut self, capabilities: Value) -> Self {
        self.0.capabilities = capabilities;
        self
    }

    /// The host may call it again after a plugin crash.
    #[must_use]
    pub fn replay_safe(mut self, yes: bool) -> Self {
        self.0.replay_safe = yes;
        self
    }
}

/// A context engine's registration.
#[derive(Clone, Debug)]
pub struct ContextEngine(ContextEngineRegistration);

impl ContextEngine {
    /// An engine selectable with `plugins.slots.contextEngine`.
    pub fn new(id: impl Into<String>) -> Self {
        Self(ContextEngineRegistration {
            id: id.into(),
            info: Value::Null,
        })
    }

    /// `name`, `ownsCompaction`...
    #[must_use]
    pub fn info(mut self, info: Value) -> Self {
        self.0.info = info;
        self
    }
}
