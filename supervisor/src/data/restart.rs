//! What to do after a plugin exits without being asked to: a pure function of the
//! policy, the crash history and the current time.
//!
//! Nothing here sleeps, spawns or reads a clock: the caller passes `now` and a jitter
//! sample, so every rule is unit-tested with plain values.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::policy::RestartPolicy;

/// How a plugin's process ended, as far as the restart decision cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// Exit code 78: the plugin says it cannot work as configured.
    Permanent,
    /// Any other exit, signal or kill that nobody asked for (including "unresponsive"
    /// and "handshake timed out").
    Crash,
}

/// The verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Start the plugin again after this delay.
    RestartAfter(Duration),
    /// Too many crashes: `crashes` within the policy's window. State `failed` until an
    /// operator restarts it.
    GiveUp {
        /// Crashes counted within the window, this one included.
        crashes: usize,
    },
    /// Exit code 78, or restarts disabled: state `failed` without retrying.
    Permanent,
}

/// The crashes that still count, and the backoff step.
#[derive(Clone, Debug, Default)]
pub(crate) struct RestartHistory {
    /// When recent crashes happened, oldest first, pruned to the policy's window.
    crashes: VecDeque<Instant>,
    /// Crashes since the plugin last ran stably; drives the backoff exponent.
    consecutive: u32,
}

impl RestartHistory {
    /// Records an exit and decides.
    ///
    /// - `now`: when the exit was observed;
    /// - `ran_for`: how long the plugin had been ready before it exited (zero when it
    ///   never got ready); running at least `reset_after_ms` forgets the backoff;
    /// - `jitter`: a sample in `[-1.0, 1.0]`; the delay moves by `jitter * policy.jitter`
    ///   of itself.
    pub(crate) fn record(
        &mut self,
        policy: &RestartPolicy,
        kind: ExitKind,
        now: Instant,
        ran_for: Duration,
        jitter: f64,
    ) -> Decision {
        if kind == ExitKind::Permanent || !policy.enabled {
            return Decision::Permanent;
        }
        if ran_for >= Duration::from_millis(policy.reset_after_ms) {
            self.consecutive = 0;
        }
        let window = Duration::from_millis(policy.window_ms);
        while self
            .crashes
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) > window)
        {
            self.crashes.pop_front();
        }
        self.crashes.push_back(now);
        self.consecutive = self.consecutive.saturating_add(1);
        if self.crashes.len() > policy.max_crashes as usize {
            return Decision::GiveUp {
                crashes: self.crashes.len(),
            };
        }
        Decision::RestartAfter(backoff(policy, self.consecutive, jitter))
    }

    /// Forgets everything: an operator restarted the plugin by hand.
    pub(crate) fn clear(&mut self) {
        self.crashes.clear();
        self.consecutive = 0;
    }

    /// Crashes within the window as of the last record.
    pub(crate) fn recent_crashes(&self) -> usize {
        self.crashes.len()
    }
}

/// The delay before restart number `attempt` (1-based): exponential, capped, jittered.
#[expect(
    clippy::cast_precision_loss,
    reason = "backoff milliseconds are far below 2^52"
)]
fn backoff(policy: &RestartPolicy, attempt: u32, jitter: f64) -> Duration {
    let initial = policy.initial_backoff_ms as f64;
    let max = policy.max_backoff_ms as f64;
    let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = (initial * policy.multiplier.max(1.0).powi(exponent)).min(max);
    let spread = policy.jitter.clamp(0.0, 1.0) * jitter.clamp(-1.0, 1.0);
    Duration::from_secs_f64((base * (1.0 + spread)).max(0.0) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy::default()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_250ms_and_caps_at_30s() {
        let policy = policy();
        let start = Instant::now();
        let mut history = RestartHistory::default();
        // Crashes spread out so the give-up window never fills.
        let mut delays = Vec::new();
        for i in 0..10 {
            let now = start + Duration::from_secs(40 * i);
            match history.record(&policy, ExitKind::Crash, now, Duration::ZERO, 0.0) {
                Decision::RestartAfter(d) => delays.push(d.as_millis()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn jitter_moves_the_delay_within_its_fraction() {
        let policy = policy();
        let now = Instant::now();
        for (jitter, expected) in [(-1.0, 200), (0.0, 250), (1.0, 300), (0.5, 275), (7.0, 300)] {
            let mut history = RestartHistory::default();
            let decision = history.record(&policy, ExitKind::Crash, now, Duration::ZERO, jitter);
            assert_eq!(
                decision,
                Decision::RestartAfter(ms(expected)),
                "jitter {jitter}"
            );
        }
    }

    #[test]
    fn stable_running_resets_the_backoff_but_not_the_window() {
        let policy = policy();
        let start = Instant::now();
        let mut history = RestartHistory::default();
        history.record(&policy, ExitKind::Crash, start, Duration::ZERO, 0.0);
        history.record(&policy, ExitKind::Crash, start + ms(1), Duration::ZERO, 0.0);
        // Ran 60 s after the second restart: the next delay starts over at 250 ms.
        let decision = history.record(
            &policy,
            ExitKind::Crash,
            start + ms(61_000),
            ms(60_000),
            0.0,
        );
        assert_eq!(decision, Decision::RestartAfter(ms(250)));
        assert_eq!(history.recent_crashes(), 3);
        // Just under the reset: the backoff keeps growing.
        let decision = history.record(
            &policy,
            ExitKind::Crash,
            start + ms(62_000),
            ms(59_999),
            0.0,
        );
        assert_eq!(decision, Decision::RestartAfter(ms(500)));
    }

    #[test]
    fn more_than_five_crashes_in_three_minutes_gives_up() {
        let policy = policy();
        let start = Instant::now();
        let mut history = RestartHistory::default();
        for i in 0..5 {
            let decision = history.record(
                &policy,
                ExitKind::Crash,
                start + ms(i * 1000),
                Duration::ZERO,
                0.0,
            );
            assert!(
                matches!(decision, Decision::RestartAfter(_)),
                "crash {i}: {decision:?}"
            );
        }
        let decision = history.record(
            &policy,
            ExitKind::Crash,
            start + ms(5000),
            Duration::ZERO,
            0.0,
        );
        assert_eq!(decision, Decision::GiveUp { crashes: 6 });
    }

    #[test]
    fn crashes_older_than_the_window_do_not_count() {
        let policy = policy();
        let start = Instant::now();
        let mut history = RestartHistory::default();
        for i in 0..5 {
            history.record(
                &policy,
                ExitKind::Crash,
                start + ms(i * 1000),
                Duration::ZERO,
                0.0,
            );
        }
        // 181 s after the first crash, the first has left the window.
        let decision = history.record(
            &policy,
            ExitKind::Crash,
            start + ms(181_000),
            Duration::ZERO,
            0.0,
        );
        assert!(
            matches!(decision, Decision::RestartAfter(_)),
            "{decision:?}"
        );
        assert_eq!(history.recent_crashes(), 5);
    }

    #[test]
    fn exit_78_and_disabled_restarts_are_permanent() {
        let mut history = RestartHistory::default();
        let now = Instant::now();
        assert_eq!(
            history.record(&policy(), ExitKind::Permanent, now, Duration::ZERO, 0.0),
            Decision::Permanent
        );
        let disabled = RestartPolicy {
            enabled: false,
            ..policy()
        };
        assert_eq!(
            history.record(&disabled, ExitKind::Crash, now, Duration::ZERO, 0.0),
            Decision::Permanent
        );
    }

    #[test]
    fn a_manual_restart_clears_the_history() {
        let policy = policy();
        let now = Instant::now();
        let mut history = RestartHistory::default();
        for i in 0..6 {
            history.record(&policy, ExitKind::Crash, now + ms(i), Duration::ZERO, 0.0);
        }
        history.clear();
        let decision = history.record(&policy, ExitKind::Crash, now + ms(10), Duration::ZERO, 0.0);
        assert_eq!(decision, Decision::RestartAfter(ms(250)));
    }
}
