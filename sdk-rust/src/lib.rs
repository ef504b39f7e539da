//! Write Outpost plugins in Rust.
//!
//! An Outpost plugin is a program that a host (the `outpost` supervisor) starts as a
//! child process and talks to in JSON-RPC over stdin and stdout (docs/protocol.md). This
//! crate is the plugin's side of that protocol: declare what the plugin offers with
//! [`Plugin::builder`], give each registration an async handler, and call
//! [`PluginBuilder::run`] from `main`. The SDK does the handshake, routes calls to the
//! handlers, runs them concurrently, answers `ping` and `$/cancel`, stops services on
//! shutdown, and exits 0 when the host closes stdin.
//!
//! # Example
//!
//! A plugin with one tool, driven in memory by [`testing::TestHost`] as a host would
//! drive it over pipes:
//!
//! ```
//! use outpost_sdk::testing::TestHost;
//! use outpost_sdk::{Context, Error, Plugin, PluginBuilder, Tool, ToolResult};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     greeting: String,
//! }
//!
//! #[derive(Deserialize)]
//! struct GreetArgs {
//!     name: String,
//! }
//!
//! async fn greet(ctx: Context<Config>, args: GreetArgs) -> Result<ToolResult, Error> {
//!     ctx.info(format!("greeting {}", args.name));
//!     Ok(ToolResult::text(format!("{}, {}!", ctx.config().greeting, args.name)))
//! }
//!
//! fn plugin() -> PluginBuilder<Config> {
//!     Plugin::with_config::<Config>("hello")
//!         .name("Hello")
//!         .version("1.0.0")
//!         .tool(
//!             Tool::new("greet", "Greets someone by name").input_schema(json!({
//!                 "type": "object",
//!                 "properties": {"name": {"type": "string"}},
//!                 "required": ["name"],
//!             })),
//!             greet,
//!         )
//! }
//!
//! // In the plugin's `main`: `fn main() -> std::process::ExitCode { plugin().run() }`
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let mut host = TestHost::start(plugin().build()?);
//! let init = host.initialize(json!({"greeting": "Hello"})).await?;
//! assert_eq!(init.registrations.len(), 1);
//!
//! let result = host.invoke_tool("greet", json!({"name": "Ada"})).await?;
//! assert_eq!(result, ToolResult::text("Hello, Ada!"));
//! assert_eq!(host.next_log().await.unwrap().message, "greeting Ada");
//!
//! host.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Theory of operation
//!
//! - **Launch.** [`Plugin::run`] checks `OUTPOST_PROTOCOL` (without it, a person started
//!   the program: it prints how to run it and exits 2), then moves fd 1 to stderr and
//!   speaks on a private copy of the original stdout, so a stray `println!` cannot
//!   corrupt the protocol stream; stdin is taken the same way and fd 0 becomes
//!   `/dev/null`, so child processes cannot read the host's messages.
//! - **Handshake.** Before `initialize`, requests are answered `-32002`. `initialize`
//!   picks a protocol version, deserializes the validated config into the plugin's
//!   config type `C`, runs the [setup function](PluginBuilder::setup) and answers with
//!   every registration. `initialized` tells which registrations the host accepted; the
//!   others are logged to stderr and answered `-32008` like unknown names.
//! - **Calls.** Each call runs in its own task, at most `limits.maxConcurrentRequests`
//!   at a time, so the read loop never waits for a handler. Params that do not fit the
//!   handler's input type are answered `-32602` with the serde error; a handler's
//!   [`Error`] becomes the call's error; a panic becomes `-32000` with the panic
//!   message, and the plugin goes on.
//! - **Runtime.** [`Plugin::run`] builds a single-threaded tokio runtime unless
//!   [`PluginBuilder::worker_threads`] asks for more. On the default runtime, one
//!   thread reads the host's messages in a blocking `read` and answers every call whose
//!   handler finishes at its first poll, with no hand-off between threads; a call that
//!   waits becomes a task on the runtime's thread. So handler code can run on either
//!   thread (never two polls of one call at once), and has a main thread's 8 MiB of
//!   stack on either runtime. Handlers that compute for long should yield or use
//!   `spawn_blocking`, or `ping` waits behind them.
//! - **Cancellation.** `$/cancel` (and shutdown) fire the call's [`Cancellation`]; the
//!   call is answered `-32800` at once and its handler's future is dropped.
//! - **Shutdown.** `shutdown` cancels calls in flight, stops every running service
//!   (cancellation, stop function, then its tasks), waits for both within
//!   three quarters of `limits.shutdownTimeoutMs`, and answers `{}`. At stdin EOF,
//!   [`Plugin::run`] returns exit status 0 without waiting for anything.
//! - **Permanent failure.** [`Error::permanent`] (or a config that does not fit `C`)
//!   ends the plugin with exit status 78, which the host does not restart.
//!
//! # Caveats
//!
//! - A cancelled handler's future is dropped at its next `.await`, like an HTTP handler
//!   whose client went away: keep state consistent across `.await` points, and move work
//!   that must finish into a task of its own. Blocking work (`spawn_blocking`) is not
//!   interrupted; poll [`Context::is_cancelled`] there.
//! - Output written to fd 1 before [`Plugin::run`] starts is not protected: run the
//!   plugin first thing in `main`.
//! - The SDK reads lines of at most 16 MiB (the protocol's default limit) even if the
//!   host announces a higher `maxMessageBytes`. When the host announces a lower one,
//!   longer lines are answered `-32006` and discarded, and results are held to it.
//!
//! # Features
//!
//! - `schemars`: `Tool::input` derives a tool's input schema from its argument type.

#![warn(missing_docs)]

mod builder;
mod context;
mod error;
mod fixture;
pub mod http;
mod line;
mod session;
mod stdio;
pub mod testing;

pub use builder::{
    Channel, Command, ConfigType, ContextEngine, GatewayMethod, Hook, HttpRoute, Operations,
    Plugin, PluginBuilder, Provider, Service, Tool,
};
pub use context::{Cancellation, Context, Host, RawConfig, ServiceContext};
pub use error::{BuildError, Error, HostError, ServeError};
pub use stdio::permanent_failure;

/// The protocol crate: wire types a handler takes and returns ([`protocol::methods`]),
/// error codes, registrations.
pub use outpost_protocol as protocol;

/// The wire types handlers take and return most, re-exported from [`protocol::methods`].
pub use outpost_protocol::methods::{
    CallContext, CommandResult, CommandRunParams, Content, HttpRequest, HttpResponse, LogLevel,
    ToolResult,
};
/// Re-exported for [`Error::with_code`], [`Provider::new`] and [`HttpRoute::new`].
pub use outpost_protocol::{ErrorCode, ProviderCapability, RouteAuth};
