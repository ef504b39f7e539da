//! The steps from a plugin's start to its readiness, timed from the supervisor's trace
//! events of target `outpost::spawn` (each names the step just done in `step`).
//! `cargo bench -p outpost-supervisor --bench data_plane -- spawn --steps` prints them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// The supervisor's step events, as they come.
#[derive(Clone, Default)]
pub(crate) struct Steps(Arc<Mutex<Vec<(Instant, String)>>>);

impl Steps {
    /// Installs the collector as the process's subscriber (of the step events only).
    pub(crate) fn install() -> Self {
        let steps = Self::default();
        let layer = steps
            .clone()
            .with_filter(filter_fn(|meta| meta.target() == "outpost::spawn"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other subscriber");
        steps
    }

    /// The events since the last call.
    pub(crate) fn take(&self) -> Vec<(Instant, String)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: Subscriber> Layer<S> for Steps {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let now = Instant::now();
        let mut step = Step(None);
        event.record(&mut step);
        if let Some(step) = step.0 {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((now, step));
        }
    }
}

struct Step(Option<String>);

impl Visit for Step {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn Debug) {}
}

/// The time each step took (from the one before it), over runs.
#[derive(Default)]
pub(crate) struct StepTimes {
    /// Step names in the order first seen.
    order: Vec<String>,
    times: BTreeMap<String, Vec<Duration>>,
}

impl StepTimes {
    /// Adds one run: from `begin` through `events` to `end` (named `last`).
    pub(crate) fn add(
        &mut self,
        begin: Instant,
        events: Vec<(Instant, String)>,
        end: Instant,
        last: &str,
    ) {
        let mut previous = begin;
        for (at, step) in events.into_iter().chain([(end, last.to_owned())]) {
            if !self.times.contains_key(&step) {
                self.order.push(step.clone());
            }
            self.times
                .entry(step)
                .or_default()
                .push(at.saturating_duration_since(previous));
            previous = at;
        }
    }

    /// `(step, median)` in order.
    pub(crate) fn medians(mut self) -> Vec<(String, Duration)> {
        self.order
            .into_iter()
            .map(|step| {
                let times = self.times.get_mut(&step).expect("recorded");
                times.sort();
                let median = times[times.len() / 2];
                (step, median)
            })
            .collect()
    }
}
