//! `registry.subscribe`: every registry event, in order, with its sequence number, so a
//! client loses none and can tell when it must start over from a snapshot.
//!
//! One pump task reads the supervisor's events and keeps the newest of them (at most
//! [`RING_EVENTS`], at most [`RING_BYTES`]) to replay to a client that says which event
//! it saw last (`since`). Each subscription forwards from there; a subscription that
//! falls behind, or asks for events no longer kept, gets a fresh snapshot instead,
//! announced as such. A slow subscriber only ever slows itself.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use outpost_supervisor::Supervisor;
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

/// Where a new subscription starts.
pub(crate) enum Start {
    /// These events (oldest first), then live ones.
    Replay(Vec<Arc<RawValue>>, u64),
    /// A snapshot first: the events asked for are no longer kept (or none was asked).
    Snapshot,
}

/// The supervisor's events, kept for replay and fanned out to subscriptions.
#[derive(Debug)]
pub(crate) struct EventHub {
    state: Mutex<Ring>,
    items: broadcast::Sender<Item>,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<(u64, Arc<RawValue>)>,
    bytes: usize,
}

impl EventHub {
    /// Starts pumping the supervisor's events.
    pub(crate) fn start(supervisor: &Supervisor) -> Arc<Self> {
        let hub = Arc::new(Self {
            state: Mutex::default(),
            items: broadcast::channel(RING_EVENTS).0,
        });
        let (_, mut events) = supervisor.subscribe();
        let pump = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let item = match events.recv().await {
                    Ok(event) => {
                        let json = serde_json::value::to_raw_value(&event)
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
            _ => Start::Snapshot,
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
    since: Option<u64>,
    closed: impl std::future::Future<Output = ()>,
    mut send: F,
) where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::pin!(closed);
    let (start, mut live) = hub.subscribe(since);
    let mut last = match start {
        Start::Replay(events, last) => {
            for event in events {
                if !send(Message::Event(event)).await {
                    return;
                }
            }
            last
        }
        Start::Snapshot => match send_snapshot(supervisor, &mut send, None).await {
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
            match send_snapshot(supervisor, &mut send, Some(last)).await {
                Some(seq) => last = seq,
                None => return,
            }
        }
    }
}

/// Sends `{"type": "snapshot", ...}` (after `{"type": "lagged", ...}` when the
/// subscription fell behind); returns the snapshot's sequence number.
async fn send_snapshot<F, Fut>(
    supervisor: &Supervisor,
    send: &mut F,
    lagged_after: Option<u64>,
) -> Option<u64>
where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if let Some(last) = lagged_after
        && !send(Message::Value(json!({"type": "lagged", "seq": last}))).await
    {
        return None;
    }
    let snapshot = supervisor.snapshot();
    let seq = snapshot.seq;
    let message = json!({"type": "snapshot", "seq": seq, "snapshot": snapshot});
    send(Message::Value(message)).await.then_some(seq)
}

/// Events are forwarded as the supervisor serialized them: this checks the shape a
/// client relies on.
#[cfg(test)]
mod tests {
    use outpost_supervisor::RegistryEvent;

    use super::*;

    #[test]
    fn events_carry_their_type_and_seq() {
        let event = RegistryEvent::PluginAdded {
            seq: 7,
            plugin: "notes".into(),
        };
        let json: Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            json!({"type": "pluginAdded", "seq": 7, "plugin": "notes"})
        );
    }

    #[test]
    fn a_subscription_replays_what_is_kept_and_asks_for_a_snapshot_otherwise() {
        let hub = EventHub {
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
        assert!(matches!(hub.subscribe(None).0, Start::Snapshot));
        hub.push(Item::Gap);
        let json = serde_json::value::to_raw_value(&json!({"seq": 8})).unwrap();
        hub.push(Item::Event(8, Arc::from(json)));
        assert!(
            matches!(hub.subscribe(Some(5)).0, Start::Snapshot),
            "6 and 7 are gone"
        );
    }
}
