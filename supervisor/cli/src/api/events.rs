//! `registry.subscribe`: every registry event, in order, with its sequence number, so a
//! client loses none and can tell when it must start over from a snapshot.
//!
//! One pump task reads the supervisor's events and keeps the newest of them (at most
//! [`RING_EVENTS`], at most [`RING_BYTES`]) to replay to a client that says which event
//! it saw last (`since`). Each subscription forwards from there; a subscription that
//! falls behind, or asks for events no longer kept, gets a fresh snapshot instead,
//! announced as such. A slow subscriber only ever slows itself.
//!
//! Sequence numbers start at 0 with each `outpost serve`, so every message carries the
//! server's run id (random, chosen at start): a `since` from another run is answered
//! with a snapshot, never replayed against this run's numbers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use outpost_supervisor::{RegistryEvent, Supervisor};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events kept for replay.
const RING_EVENTS: usize = 4096;

/// The most bytes of events kept for replay (a registration can carry a large schema).
const RING_BYTES: usize = 16 * 1024 * 1024;

/// What the pump hands to subscriptions.
#[derive(Clone, Debug)]
enum Item {
    /// One event, serialized once for every subscriber.
    Event(u64, Arc<RawValue>),
    /// The pump itself missed events: every subscriber starts over.
    Gap,
}

/// What a new subscription asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Asked {
    /// The events after this `seq` of this run (`None`: a snapshot first).
    Since(Option<u64>),
    /// A `since` taken in another run, which means nothing here: a snapshot first.
    OtherRun,
}

/// Why a subscription gets a snapshot: the `reason` of the snapshot message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// No `since` was given.
    Subscribed,
    /// The `since` given is from another run of `outpost serve`.
    OtherRun,
    /// The events after `since` are no longer kept.
    NotKept,
    /// The subscription fell behind (a `lagged` message came just before).
    Lagged,
}

impl Why {
    fn reason(self) -> Value {
        let (kind, message) = match self {
            Self::Subscribed => (
                "subscribed",
                "no `since` was given: the registry as it is now",
            ),
            Self::OtherRun => (
                "otherRun",
                "the `run` given is not this server's: `outpost serve` restarted and its sequence numbers started over; replace everything you had",
            ),
            Self::NotKept => (
                "notKept",
                "the events after `since` are no longer kept; replace everything you had",
            ),
            Self::Lagged => (
                "lagged",
                "this subscription fell behind; replace everything you had",
            ),
        };
        json!({"kind": kind, "message": message})
    }
}

/// An event as subscribers get it: the supervisor's, and the run it belongs to.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(flatten)]
    event: &'a RegistryEvent,
    run: &'a str,
}

/// Where a new subscription starts.
pub(crate) enum Start {
    /// These events (oldest first), then live ones.
    Replay(Vec<Arc<RawValue>>, u64),
    /// A snapshot first: the events asked for are no longer kept (or none was asked).
    Snapshot(Why),
}

/// The supervisor's events, kept for replay and fanned out to subscriptions.
#[derive(Debug)]
pub(crate) struct EventHub {
    /// This run of `outpost serve`.
    run: Arc<str>,
    state: Mutex<Ring>,
    items: broadcast::Sender<Item>,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<(u64, Arc<RawValue>)>,
    bytes: usize,
}

impl EventHub {
    /// Starts pumping the supervisor's events, as events of `run`.
    pub(crate) fn start(supervisor: &Supervisor, run: &str) -> Arc<Self> {
        let hub = Arc::new(Self {
            run: Arc::from(run),
            state: Mutex::default(),
            items: broadcast::channel(RING_EVENTS).0,
        });
        let (_, mut events) = supervisor.subscribe();
        let pump = Arc::downgrade(&hub);
        let run = hub.run.clone();
        tokio::spawn(async move {
            loop {
                let item = match events.recv().await {
                    Ok(event) => {
                        let envelope = Envelope {
                            event: &event,
                            run: &run,
                        };
                        let json = serde_json::value::to_raw_value(&envelope)
                            .expect("registry events serialize");
                        Item::Event(event.seq(), Arc::from(json))
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "the API fell behind the registry's events; subscribers start over from a snapshot"
                        );
                        Item::Gap
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(hub) = pump.upgrade() else { return };
                hub.push(item);
            }
        });
        hub
    }

    fn push(&self, item: Item) {
        let mut ring = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &item {
            Item::Event(seq, json) => {
                ring.bytes += json.get().len();
                ring.events.push_back((*seq, json.clone()));
                while ring.events.len() > RING_EVENTS || ring.bytes > RING_BYTES {
                    let Some((_, old)) = ring.events.pop_front() else {
                        break;
                    };
                    ring.bytes -= old.get().len();
                }
            }
            Item::Gap => {
                ring.events.clear();
                ring.bytes = 0;
            }
        }
        // Under the lock, so a subscription sees each item either in the ring or live.
        let _ = self.items.send(item);
    }

    /// A new subscription: where it starts, and the live items after that.
    fn subscribe(&self, since: Option<u64>) -> (Start, broadcast::Receiver<Item>) {
        let ring = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let live = self.items.subscribe();
        let start = match since {
            // Everything after `since` is kept (or not yet pumped): replay it.
            Some(since)
                if ring
                    .events
                    .front()
                    .is_none_or(|(oldest, _)| *oldest <= since + 1) =>
            {
                let replay = ring
                    .events
                    .iter()
                    .filter(|(seq, _)| *seq > since)
                    .map(|(_, json)| json.clone())
                    .collect();
                let last = ring
                    .events
                    .back()
                    .map_or(since, |(seq, _)| (*seq).max(since));
                Start::Replay(replay, last)
            }
            Some(_) => Start::Snapshot(Why::NotKept),
            None => Start::Snapshot(Why::Subscribed),
        };
        (start, live)
    }
}

/// What a subscription sends, one notification each.
pub(crate) enum Message {
    Event(Arc<RawValue>),
    Value(Value),
}

/// Runs one `registry.subscribe` subscription until `closed` (the client unsubscribed
/// or went away): `send` delivers a notification and says whether it could.
pub(crate) async fn forward<F, Fut>(
    hub: &EventHub,
    supervisor: &Supervisor,
    asked: Asked,
    closed: impl std::future::Future<Output = ()>,
    mut send: F,
) where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::pin!(closed);
    let (start, mut live) = match asked {
        Asked::Since(since) => hub.subscribe(since),
        Asked::OtherRun => {
            let (_, live) = hub.subscribe(None);
            (Start::Snapshot(Why::OtherRun), live)
        }
    };
    let mut last = match start {
        Start::Replay(events, last) => {
            for event in events {
                if !send(Message::Event(event)).await {
                    return;
                }
            }
            last
        }
        Start::Snapshot(why) => match send_snapshot(hub, supervisor, &mut send, why).await {
            Some(seq) => seq,
            None => return,
        },
    };
    loop {
        let received = tokio::select! {
            received = live.recv() => received,
            () = &mut closed => return,
        };
        let resync = match received {
            Ok(Item::Event(seq, json)) => {
                if seq > last {
                    last = seq;
                    if !send(Message::Event(json)).await {
                        return;
                    }
                }
                false
            }
            Ok(Item::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => true,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if resync {
            // Behind: whatever was missed is in a fresh snapshot.
            let lagged = json!({"type": "lagged", "run": &*hub.run, "seq": last});
            if !send(Message::Value(lagged)).await {
                return;
            }
            match send_snapshot(hub, supervisor, &mut send, Why::Lagged).await {
                Some(seq) => last = seq,
                None => return,
            }
        }
    }
}

/// Sends `{"type": "snapshot", "run", "seq", "snapshot", "reason"}`; returns the
/// snapshot's sequence number.
async fn send_snapshot<F, Fut>(
    hub: &EventHub,
    supervisor: &Supervisor,
    send: &mut F,
    why: Why,
) -> Option<u64>
where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let snapshot = supervisor.snapshot();
    let seq = snapshot.seq;
    let message = json!({
        "type": "snapshot",
        "run": &*hub.run,
        "seq": seq,
        "snapshot": snapshot,
        "reason": why.reason(),
    });
    send(Message::Value(message)).await.then_some(seq)
}

/// Events are forwarded as the supervisor serialized them: this checks the shape a
/// client relies on.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_type_seq_and_run() {
        let event = RegistryEvent::PluginAdded {
            seq: 7,
            plugin: "notes".into(),
        };
        let envelope = Envelope {
            event: &event,
            run: "00ff00ff00ff00ff",
        };
        assert_eq!(
            serde_json::to_string(&envelope).unwrap(),
            r#"{"type":"pluginAdded","seq":7,"plugin":"notes","run":"00ff00ff00ff00ff"}"#
        );
    }

    #[test]
    fn a_subscription_replays_what_is_kept_and_asks_for_a_snapshot_otherwise() {
        let hub = EventHub {
            run: Arc::from("run"),
            state: Mutex::default(),
            items: broadcast::channel(16).0,
        };
        for seq in 1..=5 {
            let json = serde_json::value::to_raw_value(&json!({"seq": seq})).unwrap();
            hub.push(Item::Event(seq, Arc::from(json)));
        }
        let (start, _) = hub.subscribe(Some(3));
        let Start::Replay(events, last) = start else {
            panic!("kept events replay")
        };
        assert_eq!(events.len(), 2);
        assert_eq!(last, 5);
        let (start, _) = hub.subscribe(Some(9));
        assert!(
            matches!(start, Start::Replay(ref events, 9) if events.is_empty()),
            "not pumped yet: live events follow"
        );
        assert!(matches!(
            hub.subscribe(None).0,
            Start::Snapshot(Why::Subscribed)
        ));
        hub.push(Item::Gap);
        let json = serde_json::value::to_raw_value(&json!({"seq": 8})).unwrap();
        hub.push(Item::Event(8, Arc::from(json)));
        assert!(
            matches!(hub.subscribe(Some(5)).0, Start::Snapshot(Why::NotKept)),
            "6 and 7 are gone"
        );
    }
}
