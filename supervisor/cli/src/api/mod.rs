//! The gateway API of `outpost serve`: JSON-RPC 2.0 over HTTP and WebSocket on one port
//! (jsonrpsee), plus `/metrics`, `/healthz` and `/readyz`. docs/gateway-api.md is its
//! reference.
//!
//! # Theory of operation
//!
//! One accept loop takes TCP connections. Each request passes through [`handle`]
//! first: the health endpoints answer without a token; everything else needs
//! `Authorization: Bearer <token>` (compared in constant time), or gets 401 and nothing
//! else. `/metrics` is encoded there too. The rest goes to jsonrpsee, as a POST or a
//! WebSocket upgrade, with a [`Connection`] in the request's extensions: it is cancelled
//! when the client goes away (the TCP connection for HTTP, the session for WebSocket),
//! which cancels the client's calls in flight.
//!
//! Limits are set once, here: request and response sizes, connections, subscriptions
//! per connection and each connection's outbound buffer (so a client that does not read
//! fills its own buffer and slows no one else).
//!
//! # Caveats
//!
//! jsonrpsee answers its own limits with error codes that are also protocol.md §11
//! codes with other meanings (-32006 too many subscriptions, -32007 request too big,
//! -32008 response too big, -32010 batch too large). The API answers them itself, with
//! codes of its own ([`methods`]' `TOO_MANY_SUBSCRIPTIONS` and the three after it): a
//! request body over the limit is refused here before jsonrpsee reads it, batches and
//! responses are measured in [`methods::Explained`], and a refused subscription is
//! answered again with the API's code. One case stays jsonrpsee's: a WebSocket message
//! over [`MAX_REQUEST_BYTES`] is refused while it is read, before any hook, with
//! -32007 and `id: null` (docs/gateway-api.md §3.3).

pub(crate) mod events;
pub(crate) mod gateway;
mod methods;
pub(crate) mod token;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::FutureExt as _;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, StatusCode};
use jsonrpsee::server::{
    BatchRequestConfig, HttpBody, HttpResponse, ServerConfig, ServerHandle, StopHandle,
    serve_with_graceful_shutdown, stop_channel,
};
use prometheus_client::encoding;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Service as _;

use crate::server::State;

/// The largest request body: a tool call's arguments can be as large as a plugin's
/// message limit (16 MiB by default).
pub(crate) const MAX_REQUEST_BYTES: u32 = 16 * 1024 * 1024 + 64 * 1024;

/// The largest response (or batch of responses): a registry snapshot with every input
/// schema. Measured by [`methods::Explained`]; jsonrpsee's own limit is off.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What jsonrpsee counts against its connection limit: each HTTP request while it is
/// being handled, and each WebSocket session for as long as it is open. An idle
/// keep-alive connection between two requests does not count; past the limit a request
/// gets HTTP 429.
pub(crate) const MAX_CONNECTIONS: u32 = 256;

/// TCP connections open at once, idle ones and those that have not sent a request yet
/// included: more are closed as soon as they are accepted, so that clients (with or
/// without a token) cannot take the file descriptors plugins need to start.
pub(crate) const MAX_OPEN_CONNECTIONS: usize = 1024;

/// A connection that sends no request within this of opening, or none within
/// [`IDLE_TIMEOUT`] of its last one finishing, is closed.
const FIRST_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// See [`FIRST_REQUEST_TIMEOUT`].
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(1);

/// Subscriptions one WebSocket session may hold.
pub(crate) const MAX_SUBSCRIPTIONS: u32 = 64;

/// Messages waiting to be sent to one WebSocket client; a subscription whose client
/// does not read waits here, alone.
const OUTBOUND_BUFFER: u32 = 1024;

/// Requests in one batch. Counted by [`methods::Explained`]; jsonrpsee's own limit is
/// off.
pub(crate) const MAX_BATCH: usize = 32;

/// What a method knows about the client connection its request came on.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    /// Cancelled when the client goes away.
    pub(crate) gone: CancellationToken,
}

/// The API's own metrics, after the supervisor's in `/metrics`.
#[derive(Debug)]
pub(crate) struct Counters {
    registry: Registry,
    connections: Gauge,
    sessions: Gauge,
    unauthorized: Counter,
    refused: Counter,
    idle_closed: Counter,
}

/// What a connection's requests have done, for its idle watchdog.
#[derive(Default)]
struct Activity {
    /// Requests being handled.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Requests begun or finished so far.
    moves: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn moved(&self, delta: isize) {
        use std::sync::atomic::Ordering::SeqCst;
        if delta > 0 {
            self.in_flight.fetch_add(1, SeqCst);
        } else {
            self.in_flight.fetch_sub(1, SeqCst);
        }
        self.moves.fetch_add(1, SeqCst);
    }

    /// Ends when the connection has been idle too long: nothing in flight and nothing
    /// begun or finished for a whole period (the first one waits for a first request).
    async fn idle(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let mut seen = self.moves.load(SeqCst);
        let mut period = FIRST_REQUEST_TIMEOUT;
        loop {
            tokio::time::sleep(period).await;
            let now = self.moves.load(SeqCst);
            if now == seen && self.in_flight.load(SeqCst) == 0 {
                return;
            }
            seen = now;
            period = IDLE_TIMEOUT;
        }
    }
}

/// Counts a request in flight until dropped.
struct Handling(Arc<Activity>);

impl Handling {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.moved(1);
        Self(activity.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.moved(-1);
    }
}

impl Counters {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("outpost_api");
        let connections = Gauge::default();
        let sessions = Gauge::default();
        let unauthorized = Counter::default();
        let refused = Counter::default();
        let idle_closed = Counter::default();
        // The encoder ends each help text with a full stop.
        registry.register(
            "connections",
            "HTTP connections open to the gateway API (a WebSocket upgrade leaves this count and joins outpost_api_websocket_sessions)",
            connections.clone(),
        );
        registry.register(
            "websocket_sessions",
            "WebSocket sessions open on the gateway API",
            sessions.clone(),
        );
        registry.register(
            "unauthorized",
            "Requests refused for a missing or wrong bearer token",
            unauthorized.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed as soon as they were accepted: outpost_api_connections was at its limit of 1024",
            refused.clone(),
        );
        registry.register(
            "connections_idle_closed",
            "Connections closed for sending no request (10 s after opening, 60 s after their last request)",
            idle_closed.clone(),
        );
        Self {
            registry,
            connections,
            sessions,
            unauthorized,
            refused,
            idle_closed,
        }
    }
}

/// Binds the API's listener, so `outpost serve` fails at once when the port is taken.
pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| {
        anyhow::anyhow!(
            "the gateway API cannot listen on {address}: {e}; is another `outpost serve` running? (outpost.api.listen or --api-listen picks another address)"
        )
    })
}

/// Serves the API on `listener` until the handle is stopped.
pub(crate) fn serve(listener: TcpListener, state: Arc<State>) -> ServerHandle {
    if let Ok(address) = listener.local_addr() {
        state.listening_on(address);
    }
    let (stop, handle) = stop_channel();
    let methods = methods::module(state.clone());
    let config = ServerConfig::builder()
        // Still jsonrpsee's for WebSocket messages; HTTP bodies are measured in `handle`.
        .max_request_body_size(MAX_REQUEST_BYTES)
        // Measured (and answered with the API's own codes) by `methods::Explained`.
        .max_response_body_size(u32::MAX)
        .set_batch_request_config(BatchRequestConfig::Unlimited)
        .max_connections(MAX_CONNECTIONS)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS)
        .set_message_buffer_capacity(OUTBOUND_BUFFER)
        .build();
    let builder = jsonrpsee::server::Server::builder()
        .set_config(config)
        .to_service_builder();
    let counters = Arc::new(Counters::new());
    tokio::spawn(accept(listener, state, methods, builder, stop, counters));
    handle
}

type ServiceBuilder = jsonrpsee::server::TowerServiceBuilder<
    tower::layer::util::Identity,
    tower::layer::util::Identity,
>;

async fn accept(
    listener: TcpListener,
    state: Arc<State>,
    methods: jsonrpsee::Methods,
    builder: ServiceBuilder,
    stop: StopHandle,
    counters: Arc<Counters>,
) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_CONNECTIONS));
    let mut last_warned: Option<std::time::Instant> = None;
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!("the gateway API could not accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.clone().shutdown() => return,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            drop(socket);
            counters.refused.inc();
            if last_warned.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10)) {
                last_warned = Some(std::time::Instant::now());
                tracing::warn!(
                    "the gateway API has {MAX_OPEN_CONNECTIONS} connections open: new ones are closed at once until some end (outpost_api_connections_refused counts them); a client that opens many and sends nothing is closed after 10 s"
                );
            }
            continue;
        };
        let _ = socket.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let gone = CancellationToken::new();
        let service = {
            let (state, methods, builder, stop, counters, gone, activity) = (
                state.clone(),
                methods.clone(),
                builder.clone(),
                stop.clone(),
                counters.clone(),
                gone.clone(),
                activity.clone(),
            );
            tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (state, methods, builder, stop, counters, gone) = (
                    state.clone(),
                    methods.clone(),
                    builder.clone(),
                    stop.clone(),
                    counters.clone(),
                    gone.clone(),
                );
                let handling = Handling::new(&activity);
                async move {
                    let response =
                        handle(request, &state, methods, builder, stop, &counters, gone).await;
                    drop(handling);
                    Ok::<_, Infallible>(response)
                }
                .boxed()
            })
        };
        let (stop, counters) = (stop.clone(), counters.clone());
        tokio::spawn(async move {
            let _permit = permit;
            counters.connections.inc();
            tokio::select! {
                _ = serve_with_graceful_shutdown(socket, service, stop.shutdown()) => {}
                () = activity.idle() => {
                    counters.idle_closed.inc();
                }
            }
            counters.connections.dec();
            // The client went away (or the server stops): its calls are cancelled.
            gone.cancel();
        });
    }
}

async fn handle(
    mut request: hyper::Request<hyper::body::Incoming>,
    state: &Arc<State>,
    methods: jsonrpsee::Methods,
    builder: ServiceBuilder,
    stop: StopHandle,
    counters: &Counters,
    gone: CancellationToken,
) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let get = request.method() == Method::GET;
    match (get, path.as_str()) {
        (true, "/healthz") => return health(state),
        (true, "/readyz") => return ready(state),
        _ => {}
    }
    if !authorized(&request, &state.token) {
        counters.unauthorized.inc();
        return unauthorized();
    }
    if get && path == "/metrics" {
        return metrics(state, counters);
    }
    let websocket = jsonrpsee::server::ws::is_upgrade_request(&request);
    if path != "/" {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no such endpoint `{path}`: JSON-RPC goes to `/` (POST, or a WebSocket upgrade); `/metrics`, `/healthz` and `/readyz` are the others")}),
        );
    }
    let named = methods.clone();
    let rpc = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(move |inner| {
        methods::Explained {
            inner,
            methods: named.clone(),
            websocket,
        }
    });
    let mut service = builder.set_rpc_middleware(rpc).build(methods, stop);
    let gone = if websocket {
        // The upgrade ends this HTTP exchange at once; the session lives on its own.
        let session = CancellationToken::new();
        let closed = service.on_session_closed();
        let cancel = session.clone();
        let sessions = counters.sessions.clone();
        sessions.inc();
        tokio::spawn(async move {
            closed.await;
            sessions.dec();
            cancel.cancel();
        });
        session
    } else {
        gone
    };
    request.extensions_mut().insert(Connection { gone });
    let request = if !websocket && request.method() == Method::POST {
        // Read here, so a body over the limit gets the API's code, not jsonrpsee's.
        match read_body(request).await {
            Ok(request) => request,
            Err(response) => return *response,
        }
    } else {
        request.map(HttpBody::new)
    };
    match service.call(request).await {
        Ok(response) => response,
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": format!("the request failed: {e}")}),
        ),
    }
}

/// The whole body of an HTTP request, up to [`MAX_REQUEST_BYTES`]; over it, 413 with
/// [`methods::REQUEST_TOO_LARGE`].
async fn read_body(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Request<HttpBody>, Box<HttpResponse>> {
    let limit = MAX_REQUEST_BYTES as usize;
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(size) = declared.filter(|size| *size > limit as u64) {
        return Err(Box::new(too_large(Some(size))));
    }
    let (parts, body) = request.into_parts();
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        Ok(body) => {
            let body = body.to_bytes();
            if let Some(id) = unusable_id(&body) {
                return Err(Box::new(unusable_id_response(&id)));
            }
            Ok(hyper::Request::from_parts(
                parts,
                HttpBody::new(http_body_util::Full::new(body)),
            ))
        }
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Box::new(too_large(None)))
        }
        Err(error) => Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("the request body could not be read: {error}")}),
        ))),
    }
}

/// The first request `id` in `body` (one request or a batch) that jsonrpsee, the API's
/// JSON-RPC layer, cannot take: it takes a string, a non-negative integer or `null`,
/// and drops any other request without a word (the answer is `null`). `None` when
/// every id is usable, or the body is not JSON (jsonrpsee answers that itself).
fn unusable_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        id: Option<Box<serde_json::value::RawValue>>,
    }
    let probes: Vec<Probe> = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(body).ok()?
    } else {
        vec![serde_json::from_slice(body).ok()?]
    };
    probes
        .iter()
        .filter_map(|probe| probe.id.as_deref().map(serde_json::value::RawValue::get))
        .find(|id| !id.starts_with('"') && id.parse::<u64>().is_err())
        .map(str::to_owned)
}

/// `-32600` for a request whose id jsonrpsee cannot take ([`unusable_id`]).
fn unusable_id_response(id: &str) -> HttpResponse {
    let shown: String = id.chars().take(64).collect();
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32600,
            "message": format!("the request's id {shown} cannot be used: the gateway API takes a string or a non-negative integer as an id (nothing in this body was run)"),
        },
    });
    json_response(StatusCode::OK, &body)
}

/// 413: the request is over [`MAX_REQUEST_BYTES`] (`size` when it said how large).
fn too_large(size: Option<u64>) -> HttpResponse {
    let said = size.map_or_else(String::new, |size| format!(" ({size} bytes)"));
    let data = match size {
        Some(size) => json!({"limit": MAX_REQUEST_BYTES, "size": size}),
        None => json!({"limit": MAX_REQUEST_BYTES}),
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": methods::REQUEST_TOO_LARGE,
            "message": format!("the request{said} is over the gateway API's limit of {MAX_REQUEST_BYTES} bytes"),
            "data": data,
        },
    });
    json_response(StatusCode::PAYLOAD_TOO_LARGE, &body)
}

/// Whether the request carries the token (`Authorization: Bearer <token>`).
fn authorized<B>(request: &hyper::Request<B>, token: &str) -> bool {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

fn unauthorized() -> HttpResponse {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32005,
            "message": "missing or wrong bearer token: send `Authorization: Bearer <token>`; the token is OUTPOST_API_TOKEN, or outpost.api.token, or in the token file `outpost serve` logged when it started",
        },
    });
    let mut response = json_response(StatusCode::UNAUTHORIZED, &body);
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer realm=\"outpost\""),
    );
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// `/healthz`: the server answers.
fn health(state: &State) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({"status": "ok", "uptimeMs": state.uptime_ms()}),
    )
}

/// `/readyz`: 200 once every plugin got past its first start (ready, failed or
/// stopped); 503 before. The body counts plugins by state.
fn ready(state: &State) -> HttpResponse {
    let snapshot = state.supervisor.snapshot();
    let mut counts = serde_json::Map::new();
    for plugin in &snapshot.plugins {
        let count = counts.entry(plugin.state.to_string()).or_insert(json!(0));
        *count = json!(count.as_u64().unwrap_or(0) + 1);
    }
    let ready = state.settled();
    json_response(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &json!({"ready": ready, "plugins": counts}),
    )
}

/// `/metrics`: the supervisor's metrics, then the API's own.
fn metrics(state: &State, counters: &Counters) -> HttpResponse {
    let mut text = String::new();
    let written = state
        .supervisor
        .encode_metrics(&mut text)
        .and_then(|()| encoding::text::encode_registry(&mut text, &counters.registry))
        .and_then(|()| encoding::text::encode_eof(&mut text));
    if let Err(e) = written {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": format!("the metrics could not be encoded: {e}")}),
        );
    }
    let mut response = HttpResponse::new(HttpBody::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}
