//! Building the answers of HTTP route handlers.

use std::collections::BTreeMap;

use outpost_protocol::methods::HttpResponse;
use serde::Serialize;

/// A response with a UTF-8 body and `content-type: text/plain; charset=utf-8`.
pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
    with_body(status, "text/plain; charset=utf-8", body.into())
}

/// A response with `value` as JSON and `content-type: application/json`.
pub fn json(status: u16, value: &impl Serialize) -> HttpResponse {
    match serde_json::to_string(value) {
        Ok(body) => with_body(status, "application/json", body),
        Err(e) => text(
            500,
            format!("the response could not be turned into JSON: {e}"),
        ),
    }
}

/// "Not mine": the gateway tries its next handler for the request.
pub fn not_handled() -> HttpResponse {
    HttpResponse {
        handled: false,
        status: 404,
        headers: BTreeMap::new(),
        body: None,
        body_base64: None,
    }
}

fn with_body(status: u16, content_type: &str, body: String) -> HttpResponse {
    HttpResponse {
        handled: true,
        status,
        headers: BTreeMap::from([("content-type".to_owned(), content_type.to_owned())]),
        body: Some(body),
        body_base64: None,
    }
}
