//! Plugin HTTP routes, served for real on a listener of their own
//! (`outpost.http.listen`, off by default).
//!
//! Each request is matched to a registered route (exact first, then the longest
//! prefix), its body read up to `outpost.http.maxBodyBytes`, and handed to the owning
//! plugin as `http/handle`; the plugin's status, headers and body come back. A route
//! registered with `auth: "gateway"` needs the gateway's token in `Authorization:
//! Bearer ...`; that header is never passed on to a plugin when it carries the token.
//! Failures map to HTTP statuses: no route 404, no token 401, a plugin that is down or
//! full 503 with `Retry-After`, a plugin that did not answer in time 504, one that
//! crashed or answered nonsense 502, a body over the limit 413.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use outpost_protocol::methods::HttpRequest;
use outpost_protocol::{ErrorCode, ErrorObject};
use outpost_supervisor::{Answer, Call};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::State;

/// Response headers a plugin may not set: the connection's own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Binds the routes' listener.
pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| {
        anyhow::anyhow!(
            "plugin HTTP routes cannot be served on {address} (outpost.http.listen): {e}"
        )
    })
}

/// Serves plugin routes until `stop` is cancelled.
pub(crate) fn serve(
    listener: TcpListener,
    state: Arc<State>,
    max_body: u64,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        tracing::warn!("the plugin HTTP listener could not accept a connection: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop.cancelled() => return,
            };
            let state = state.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(request, &state, max_body).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection(TokioIo::new(socket), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    () = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
    });
}

async fn handle(request: Request<Incoming>, state: &State, max_body: u64) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, usize::try_from(max_body).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the request body is over the {max_body}-byte limit (outpost.http.maxBodyBytes)"
                ),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the request body could not be read: {e}"),
            );
        }
    };
    let mut authenticated = false;
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == hyper::header::AUTHORIZATION && carries(&value, &state.token) {
            // The gateway's credential stays with the gateway.
            authenticated = true;
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let (text, base64) = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => (None, None),
        Ok(text) => (Some(text), None),
        Err(bytes) => (None, Some(BASE64.encode(bytes.as_bytes()))),
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: text,
        body_base64: base64,
    };
    let call = Call::http(request).gateway_authenticated(authenticated);
    match state.supervisor.call(call).await {
        Ok(Answer::Http(response)) if response.handled => respond(&response),
        Ok(Answer::Http(_)) => error(
            StatusCode::NOT_FOUND,
            "the plugin route declined the request",
        ),
        Ok(other) => error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the plugin answered with something that is not an HTTP response: {}",
                other.into_value()
            ),
        ),
        Err(failure) => failed(&failure),
    }
}

fn carries(header: &str, token: &str) -> bool {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

fn respond(answer: &outpost_protocol::methods::HttpResponse) -> Response<Full<Bytes>> {
    let body = match (&answer.body, &answer.body_base64) {
        (_, Some(encoded)) => match BASE64.decode(encoded) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the plugin's bodyBase64 is not base64: {e}"),
                );
            }
        },
        (Some(text), None) => Bytes::from(text.clone()),
        (None, None) => Bytes::new(),
    };
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the plugin answered with status {}, which is not an HTTP status",
                answer.status
            ),
        );
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    for (name, value) in &answer.headers {
        if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "the plugin answered with the header `{name}`, which is not a valid HTTP header"
                ),
            );
        };
        response.headers_mut().append(name, value);
    }
    response
}

/// A failed call as an HTTP status.
fn failed(failure: &ErrorObject) -> Response<Full<Bytes>> {
    let retry_after = |default_ms: u64| {
        let ms = failure
            .data
            .as_ref()
            .and_then(|data| data.get("retryAfterMs"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(default_ms);
        ms.div_ceil(1000).max(1)
    };
    let (status, retry) = match failure.code {
        ErrorCode::NotFound => (StatusCode::NOT_FOUND, None),
        ErrorCode::Forbidden => (StatusCode::UNAUTHORIZED, None),
        ErrorCode::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Some(retry_after(5000))),
        ErrorCode::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, Some(retry_after(1000))),
        ErrorCode::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        ErrorCode::MessageTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, None),
        ErrorCode::InvalidParams => (StatusCode::BAD_REQUEST, None),
        _ => (StatusCode::BAD_GATEWAY, None),
    };
    let mut response = error(status, &failure.message);
    if let Some(seconds) = retry
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"outpost\""),
        );
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "error": message }).to_string(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
