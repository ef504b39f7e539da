//! A token bucket for log lines a plugin can cause: stderr lines, protocol problems.
//!
//! A plugin that floods stderr or spews garbage on stdout must not flood the operator's
//! log: a burst is logged, then a steady rate, and the log says how many were skipped.

use std::time::Instant;

/// Lines logged at once before the rate applies.
const BURST: f64 = 200.0;
/// Lines logged per second once the burst is spent.
const PER_SECOND: f64 = 100.0;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Throttle {
    tokens: f64,
    last: Instant,
    skipped: u64,
}

impl Throttle {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            tokens: BURST,
            last: now,
            skipped: 0,
        }
    }

    /// Whether to log one more line now.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.skipped += 1;
            false
        }
    }

    /// How many lines were refused since the last call.
    pub(crate) fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_a_steady_rate() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        assert_eq!((0..1000).filter(|_| throttle.admit(start)).count(), 200);
        assert_eq!(throttle.take_skipped(), 800);
        assert_eq!(throttle.take_skipped(), 0);
        let later = start + Duration::from_millis(500);
        assert_eq!((0..1000).filter(|_| throttle.admit(later)).count(), 50);
    }
}
