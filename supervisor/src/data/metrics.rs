//! What the supervisor counts as it works, for the Prometheus metrics (the `observe`
//! module encodes them on each scrape).
//!
//! Counting happens where it is cheap: a call's outcome and latency are recorded once
//! per plugin call (`PluginMetrics::record`: a relaxed atomic add and a histogram
//! observation), a connection's traffic by the peer itself ([`PeerStats`]). A plugin's
//! counters outlive its processes; they go with the plugin when a reload removes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use outpost_protocol::peer::PeerStats;
use outpost_protocol::{ErrorCode, RegistrationKind};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The outcomes a call is counted under: `ok`, or the name of its error's code.
const OUTCOMES: [Option<ErrorCode>; 18] = [
    None,
    Some(ErrorCode::ParseError),
    Some(ErrorCode::InvalidRequest),
    Some(ErrorCode::MethodNotFound),
    Some(ErrorCode::InvalidParams),
    Some(ErrorCode::InternalError),
    Some(ErrorCode::HandlerFailed),
    Some(ErrorCode::Timeout),
    Some(ErrorCode::NotInitialized),
    Some(ErrorCode::Unavailable),
    Some(ErrorCode::UnsupportedVersion),
    Some(ErrorCode::Forbidden),
    Some(ErrorCode::MessageTooLarge),
    Some(ErrorCode::AlreadyInitialized),
    Some(ErrorCode::NotFound),
    Some(ErrorCode::Overloaded),
    Some(ErrorCode::PluginExited),
    Some(ErrorCode::Cancelled),
];

/// Codes outside [`OUTCOMES`] are counted here.
const OTHER: usize = OUTCOMES.len();

const KINDS: usize = RegistrationKind::ALL.len();

/// Latency buckets: 50 µs to about 105 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 22)
}

fn outcome_index(outcome: Result<(), ErrorCode>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(code) => OUTCOMES
            .iter()
            .position(|known| *known == Some(code))
            .unwrap_or(OTHER),
    }
}

pub(crate) fn outcome_name(index: usize) -> &'static str {
    match OUTCOMES.get(index) {
        Some(None) => "ok",
        Some(Some(code)) => code.name(),
        None => "other",
    }
}

fn kind_index(kind: RegistrationKind) -> usize {
    RegistrationKind::ALL
        .iter()
        .position(|known| *known == kind)
        .expect("every kind is in ALL")
}

/// One plugin's measurements; they outlive its processes.
#[derive(Debug)]
pub(crate) struct PluginMetrics {
    /// Every connection to the plugin counts its traffic here.
    pub(crate) traffic: Arc<PeerStats>,
    calls: [[AtomicU64; OTHER + 1]; KINDS],
    latency: [OnceLock<Histogram>; KINDS],
    resources: Mutex<Option<Resources>>,
}

/// The last resource sample of one plugin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resources {
    /// The pid the sample was taken under (a new process starts the rate over).
    root: u32,
    pub(crate) resident_bytes: u64,
    pub(crate) processes: u64,
    cpu_ms: u64,
    at: Instant,
    /// Cores busy over the interval before `at`; `None` after the first sample.
    pub(crate) cpu_rate: Option<f64>,
}

impl PluginMetrics {
    pub(crate) fn new() -> Self {
        Self {
            traffic: Arc::default(),
            calls: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| OnceLock::new()),
            resources: Mutex::new(None),
        }
    }

    /// Counts one call a plugin answered (or that failed on its way to it).
    pub(crate) fn record(
        &self,
        kind: RegistrationKind,
        outcome: Result<(), ErrorCode>,
        elapsed: Duration,
    ) {
        let kind = kind_index(kind);
        self.calls[kind][outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
        self.latency[kind]
            .get_or_init(|| Histogram::new(latency_buckets()))
            .observe(elapsed.as_secs_f64());
    }

    /// Calls counted so far: `(kind, outcome, count)` for each non-zero count.
    pub(crate) fn calls(&self) -> impl Iterator<Item = (RegistrationKind, &'static str, u64)> + '_ {
        RegistrationKind::ALL
            .iter()
            .zip(&self.calls)
            .flat_map(|(kind, outcomes)| {
                outcomes
                    .iter()
                    .enumerate()
                    .filter_map(move |(index, count)| {
                        let count = count.load(Ordering::Relaxed);
                        (count > 0).then(|| (*kind, outcome_name(index), count))
                    })
            })
    }

    /// The latency histogram of each kind called so far.
    pub(crate) fn latencies(&self) -> impl Iterator<Item = (RegistrationKind, &Histogram)> + '_ {
        RegistrationKind::ALL
            .iter()
            .zip(&self.latency)
            .filter_map(|(kind, histogram)| histogram.get().map(|h| (*kind, h)))
    }

    /// The last resource sample, if any.
    pub(crate) fn resources(&self) -> Option<Resources> {
        *self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a resource sample of the process tree rooted at `root`.
    pub(crate) fn sample(
        &self,
        root: u32,
        resident_bytes: u64,
        processes: u64,
        cpu_ms: u64,
        at: Instant,
    ) {
        let mut resources = self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cpu_rate = resources.filter(|last| last.root == root).and_then(|last| {
            let elapsed = at.duration_since(last.at).as_secs_f64();
            (elapsed > 0.0).then(|| {
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "CPU milliseconds fit an f64 well"
                )]
                let used = cpu_ms.saturating_sub(last.cpu_ms) as f64 / 1000.0;
                used / elapsed
            })
        });
        *resources = Some(Resources {
            root,
            resident_bytes,
            processes,
            cpu_ms,
            at,
            cpu_rate,
        });
    }

    /// No process runs: no sample.
    pub(crate) fn forget_resources(&self) {
        *self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Calls refused before they reached any plugin (nothing registered under the name,
/// arguments that do not fit the tool's schema, a command the sender may not run...).
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    counts: Mutex<HashMap<(RegistrationKind, ErrorCode), u64>>,
}

impl Refusals {
    /// The counts so far, by kind and code.
    pub(crate) fn counts(&self) -> Vec<((RegistrationKind, ErrorCode), u64)> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, count)| (*key, *count))
            .collect()
    }

    pub(crate) fn record(&self, kind: RegistrationKind, code: ErrorCode) {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((kind, code))
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_stable_names() {
        assert_eq!(outcome_name(outcome_index(Ok(()))), "ok");
        assert_eq!(
            outcome_name(outcome_index(Err(ErrorCode::Timeout))),
            "timeout"
        );
        assert_eq!(
            outcome_name(outcome_index(Err(ErrorCode::Other(-1)))),
            "other"
        );
    }

    #[test]
    fn cpu_is_a_rate_over_the_interval_and_starts_over_with_a_new_process() {
        let metrics = PluginMetrics::new();
        let start = Instant::now();
        metrics.sample(10, 1000, 1, 500, start);
        let first = metrics.resources.lock().unwrap().unwrap();
        assert_eq!(first.cpu_rate, None);
        metrics.sample(10, 1000, 1, 1500, start + Duration::from_secs(2));
        let second = metrics.resources.lock().unwrap().unwrap();
        assert!((second.cpu_rate.unwrap() - 0.5).abs() < 1e-9);
        metrics.sample(11, 1000, 1, 100, start + Duration::from_secs(4));
        assert_eq!(metrics.resources.lock().unwrap().unwrap().cpu_rate, None);
    }
}
