//! The gateway's side over the network: a client that subscribes to `gateway.offer`
//! answers plugins' `host/callMethod` for the methods it offers, and `host/getConfig`'s
//! `gateway` member if it offers its config.
//!
//! Requests go out as notifications of the client's `gateway.offer` subscription
//! (`{"type": "method" | "config" | "cancel", "requestId", ...}`) and come back through
//! `gateway.answer`. A request that the plugin cancels, or whose deadline passes, is
//! followed by `{"type": "cancel", "requestId"}`; a client that disconnects fails its
//! pending requests at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use outpost_protocol::{ErrorCode, ErrorObject};
use outpost_supervisor::{Gateway, GatewayFuture, MethodRequest};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Notifications waiting for an offering client, beyond which requests are refused
/// (`-32009`) rather than queued.
pub(crate) const OFFER_QUEUE: usize = 256;

/// How long a config read waits for the offering client.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateways connected to the API.
#[derive(Debug, Default)]
pub(crate) struct RemoteGateway {
    offers: Mutex<Vec<Offer>>,
    pending: Mutex<HashMap<u64, Waiting>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Offer {
    id: u64,
    /// Exact names, `prefix.*` or `*`.
    methods: Vec<String>,
    config: bool,
    requests: mpsc::Sender<Value>,
}

#[derive(Debug)]
struct Waiting {
    offer: u64,
    answer: oneshot::Sender<Result<Value, ErrorObject>>,
}

/// What `gateway.offer` asks for.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OfferParams {
    /// The methods the client answers.
    #[serde(default)]
    pub(crate) methods: Vec<String>,
    /// Whether the client answers config reads.
    #[serde(default)]
    pub(crate) config: bool,
}

/// A registered offer; dropping it withdraws the offer and fails what waits on it.
pub(crate) struct Registration {
    gateway: Arc<RemoteGateway>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.gateway.withdraw(self.id);
    }
}

impl RemoteGateway {
    /// Registers an offer; its requests arrive on the returned receiver.
    pub(crate) fn offer(
        self: &Arc<Self>,
        params: OfferParams,
    ) -> Result<(Registration, mpsc::Receiver<Value>), String> {
        for pattern in &params.methods {
            let name = pattern.strip_suffix(".*").unwrap_or(pattern);
            if pattern != "*" && (name.is_empty() || name.contains('*') || name.trim() != name) {
                return Err(format!(
                    "`{pattern}` is not a method name, a `prefix.*` pattern or `*`"
                ));
            }
        }
        if params.methods.is_empty() && !params.config {
            return Err("an offer needs `methods`, `config: true`, or both".to_owned());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (requests, receiver) = mpsc::channel(OFFER_QUEUE);
        self.offers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Offer {
                id,
                methods: params.methods,
                config: params.config,
                requests,
            });
        Ok((
            Registration {
                gateway: self.clone(),
                id,
            },
            receiver,
        ))
    }

    fn withdraw(&self, offer: u64) {
        self.offers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|o| o.id != offer);
        let orphans: Vec<Waiting> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, w)| w.offer == offer)
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        for waiting in orphans {
            let _ = waiting.answer.send(Err(ErrorObject::new(
                ErrorCode::Unavailable,
                "the gateway connection that was answering this request closed",
            )));
        }
    }

    /// `gateway.answer`: completes a waiting request. `false` if none waits by that id.
    pub(crate) fn answer(&self, request: u64, outcome: Result<Value, ErrorObject>) -> bool {
        let waiting = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request);
        match waiting {
            Some(waiting) => {
                let _ = waiting.answer.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Sends a request to the newest offer `pick` accepts and waits for its answer.
    async fn ask(
        &self,
        pick: impl Fn(&Offer) -> bool,
        mut request: Value,
        deadline: Instant,
    ) -> Asked {
        let found = {
            let offers = self.offers.lock().unwrap_or_else(PoisonError::into_inner);
            offers
                .iter()
                .rev()
                .find(|o| pick(o))
                .map(|offer| (offer.id, offer.requests.clone()))
        };
        let Some((offer, sender)) = found else {
            return Asked::NoOffer;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Waiting { offer, answer });
        let guard = Pending {
            gateway: self,
            id,
            sender: sender.clone(),
        };
        request["requestId"] = json!(id);
        request["timeoutMs"] = json!(
            u64::try_from(
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis()
            )
            .unwrap_or(u64::MAX)
        );
        match sender.try_send(request) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Asked::Answered(Err(ErrorObject::new(
                    ErrorCode::Overloaded,
                    format!("the connected gateway has {OFFER_QUEUE} requests it has not read yet; retry shortly"),
                )
                .with_data(json!({ "retryAfterMs": 100, "limit": OFFER_QUEUE }))));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Asked::Answered(Err(ErrorObject::new(
                    ErrorCode::Unavailable,
                    "the gateway connection that offered this closed",
                )));
            }
        }
        let outcome = match tokio::time::timeout_at(deadline.into(), answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ErrorObject::new(
                ErrorCode::Unavailable,
                "the gateway connection that was answering this request closed",
            )),
            // The guard withdraws the request and tells the client.
            Err(_) => return Asked::TimedOut,
        };
        drop(guard);
        Asked::Answered(outcome)
    }
}

/// How [`RemoteGateway::ask`] ended.
enum Asked {
    Answered(Result<Value, ErrorObject>),
    NoOffer,
    TimedOut,
}

/// A request that ended without its answer: forgotten, and the client told.
struct Pending<'a> {
    gateway: &'a RemoteGateway,
    id: u64,
    sender: mpsc::Sender<Value>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let removed = self
            .gateway
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        if removed.is_some() {
            let _ = self
                .sender
                .try_send(json!({"type": "cancel", "requestId": self.id}));
        }
    }
}

/// Whether `method` matches one of `patterns` (exact, `prefix.*` or `*`).
fn offers(patterns: &[String], method: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix(".*") {
            Some(prefix) => method
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => pattern == "*" || pattern == method,
        })
}

/// The [`Gateway`] the supervisor is given: what connected clients offer.
#[derive(Clone, Debug)]
pub(crate) struct Remote(pub(crate) Arc<RemoteGateway>);

impl Gateway for Remote {
    fn call_method(&self, request: MethodRequest) -> GatewayFuture<'_, Result<Value, ErrorObject>> {
        Box::pin(async move {
            let method = request.method.clone();
            let message = json!({
                "type": "method",
                "plugin": request.plugin,
                "method": request.method,
                "params": request.params,
                "context": request.context,
            });
            match self
                .0
                .ask(|offer| offers(&offer.methods, &method), message, request.deadline)
                .await
            {
                Asked::Answered(outcome) => outcome,
                Asked::TimedOut => Err(ErrorObject::new(
                    ErrorCode::Timeout,
                    format!("the connected gateway did not answer `{method}` in time"),
                )
                .with_data(json!({ "method": method }))),
                Asked::NoOffer => Err(ErrorObject::new(
                    ErrorCode::NotFound,
                    format!(
                        "no plugin registered gatewayMethod `{method}`, and no gateway connected to `outpost serve` offers it (a gateway offers its methods with `gateway.offer`)"
                    ),
                )
                .with_data(json!({ "kind": "gatewayMethod", "name": method }))),
            }
        })
    }

    fn config(&self, plugin: &str) -> GatewayFuture<'_, Result<Option<Value>, ErrorObject>> {
        let message = json!({"type": "config", "plugin": plugin});
        Box::pin(async move {
            let deadline = Instant::now() + CONFIG_TIMEOUT;
            match self.0.ask(|offer| offer.config, message, deadline).await {
                Asked::NoOffer | Asked::Answered(Ok(Value::Null)) => Ok(None),
                Asked::Answered(Ok(config)) => Ok(Some(config)),
                Asked::Answered(Err(error)) => Err(error),
                Asked::TimedOut => Err(ErrorObject::new(
                    ErrorCode::Timeout,
                    format!(
                        "the connected gateway did not share its config within {} s",
                        CONFIG_TIMEOUT.as_secs()
                    ),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str) -> MethodRequest {
        MethodRequest::new(
            "asker",
            method,
            json!({"n": 1}),
            Instant::now() + Duration::from_secs(5),
        )
    }

    #[tokio::test]
    async fn a_method_goes_to_the_newest_offer_and_comes_back_answered() {
        let gateway = Arc::new(RemoteGateway::default());
        let remote = Remote(gateway.clone());
        let error = remote.call_method(request("gw.echo")).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::NotFound);
        assert!(error.message.contains("gateway.offer"), "{}", error.message);

        let (_old, _old_requests) = gateway
            .offer(OfferParams {
                methods: vec!["gw.*".into()],
                config: false,
            })
            .unwrap();
        let (offer, mut requests) = gateway
            .offer(OfferParams {
                methods: vec!["gw.echo".into()],
                config: true,
            })
            .unwrap();
        let answering = {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let request = requests.recv().await.unwrap();
                assert_eq!(request["type"], "method");
                assert_eq!(request["plugin"], "asker");
                let id = request["requestId"].as_u64().unwrap();
                assert!(gateway.answer(id, Ok(json!({"echo": request["params"]}))));
                assert!(!gateway.answer(id, Ok(json!(null))), "answered once");
                requests
            })
        };
        let answer = remote.call_method(request("gw.echo")).await.unwrap();
        assert_eq!(answer, json!({"echo": {"n": 1}}));
        let _requests = answering.await.unwrap();

        // A client that goes away fails what waits on it at once.
        let waiting = tokio::spawn({
            let remote = remote.clone();
            async move { remote.config("asker").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(offer);
        let error = waiting.await.unwrap().unwrap_err();
        assert_eq!(error.code, ErrorCode::Unavailable);
        assert!(
            gateway
                .offer(OfferParams {
                    methods: vec!["a*b".into()],
                    config: false
                })
                .is_err()
        );
    }
}
