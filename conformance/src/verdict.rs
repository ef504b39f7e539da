//! What a check comes to, and the record of a run's results as checks finish.
//!
//! A check returns a [`Verdict`]: `Ok` with what it saw, or why it did not pass. The
//! steps that can go wrong in many ways (a write that blocks, an answer that never
//! comes, an answer of the wrong shape) end early with `?`: [`Explain::or_explain`]
//! turns a session's stall into the failure that names what the suite waited for, and
//! [`ensure`] states a rule and the failure that breaks it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::checks::{CHECKS, CheckId};
use crate::report::{CheckResult, Status, status_for};
use crate::session::{Session, Stall};

/// Why a check did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NotPassed {
    /// The plugin breaks the rule: what it did, and what it should do.
    Fail(String),
    /// The check could not be judged: why.
    Skip(String),
}

impl NotPassed {
    /// The same failure with its details rewritten by `amend`; a skip stays as it is.
    pub(crate) fn amend(self, amend: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Fail(details) => Self::Fail(amend(details)),
            skip @ Self::Skip(_) => skip,
        }
    }
}

/// A check's outcome: `Ok` with what was seen.
pub(crate) type Verdict = Result<String, NotPassed>;

/// The plugin breaks the rule.
pub(crate) fn fail(details: impl Into<String>) -> NotPassed {
    NotPassed::Fail(details.into())
}

/// The check cannot be judged.
pub(crate) fn skip(reason: impl Into<String>) -> NotPassed {
    NotPassed::Skip(reason.into())
}

/// `Ok` when `rule` holds, else the failure `details` describes.
pub(crate) fn ensure(rule: bool, details: impl FnOnce() -> String) -> Result<(), NotPassed> {
    if rule { Ok(()) } else { Err(fail(details())) }
}

/// Failures from a session's stalls, for `?`.
pub(crate) trait Explain<T> {
    /// A stall becomes a failure saying what the suite waited for (`what`).
    fn or_explain(self, s: &Session, what: &str) -> Result<T, NotPassed>;
}

impl<T> Explain<T> for Result<T, Stall> {
    fn or_explain(self, s: &Session, what: &str) -> Result<T, NotPassed> {
        self.map_err(|stall| fail(s.explain(&stall, what)))
    }
}

/// The results so far, and the progress callback told of each as it is recorded.
pub(crate) struct Results<'p> {
    selected: Option<BTreeSet<CheckId>>,
    recorded: BTreeMap<CheckId, CheckResult>,
    progress: &'p mut dyn FnMut(&CheckResult),
}

impl std::fmt::Debug for Results<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results")
            .field("recorded", &self.recorded.len())
            .finish_non_exhaustive()
    }
}

impl<'p> Results<'p> {
    pub(crate) fn new(
        selected: Option<BTreeSet<CheckId>>,
        progress: &'p mut dyn FnMut(&CheckResult),
    ) -> Self {
        Self {
            selected,
            recorded: BTreeMap::new(),
            progress,
        }
    }

    /// Whether `id` was asked for and has no result yet.
    pub(crate) fn wants(&self, id: CheckId) -> bool {
        self.selected.as_ref().is_none_or(|s| s.contains(&id)) && !self.recorded.contains_key(&id)
    }

    /// Whether any of `ids` is still wanted.
    pub(crate) fn wants_any(&self, ids: &[CheckId]) -> bool {
        ids.iter().any(|id| self.wants(*id))
    }

    /// Records a check's verdict, timed from `started` (zero for checks judged from the
    /// whole run); the first verdict for a check wins.
    pub(crate) fn record(&mut self, id: CheckId, verdict: Verdict, started: Option<Instant>) {
        let duration = started.map(|s| s.elapsed()).unwrap_or_default();
        let level = id.check().level;
        match verdict {
            Ok(details) => self.put(id, Status::Pass, details, duration),
            Err(NotPassed::Fail(details)) => {
                self.put(id, status_for(level, false), details, duration);
            }
            Err(NotPassed::Skip(reason)) => self.put(id, Status::Skip, reason, Duration::ZERO),
        }
    }

    pub(crate) fn pass(&mut self, id: CheckId, details: impl Into<String>, started: Instant) {
        self.record(id, Ok(details.into()), Some(started));
    }

    pub(crate) fn fail(&mut self, id: CheckId, details: impl Into<String>, started: Instant) {
        self.record(id, Err(fail(details)), Some(started));
    }

    pub(crate) fn skip(&mut self, id: CheckId, reason: impl Into<String>) {
        self.record(id, Err(skip(reason)), None);
    }

    /// Skips every one of `ids` still wanted.
    pub(crate) fn skip_all(&mut self, ids: &[CheckId], reason: &str) {
        for id in ids {
            self.skip(*id, reason);
        }
    }

    fn put(&mut self, id: CheckId, status: Status, details: String, duration: Duration) {
        if !self.wants(id) {
            return;
        }
        let result = CheckResult {
            check: id.check(),
            status,
            details,
            duration,
            baseline: None,
        };
        (self.progress)(&result);
        self.recorded.insert(id, result);
    }

    /// Every selected check, in catalogue order; any left without a verdict is skipped.
    pub(crate) fn finish(mut self, reason: &str) -> Vec<CheckResult> {
        let all: Vec<CheckId> = CHECKS.iter().map(|c| c.key).collect();
        self.skip_all(&all, reason);
        self.recorded.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_first_verdict_and_respect_the_selection() {
        let mut seen = Vec::new();
        let mut progress = |r: &CheckResult| seen.push((r.check.id, r.status));
        let mut results = Results::new(
            Some([CheckId::CallsPing, CheckId::ShutdownSigterm].into()),
            &mut progress,
        );
        let now = Instant::now();
        results.pass(CheckId::CallsPing, "ok", now);
        results.fail(CheckId::CallsPing, "late", now);
        results.fail(CheckId::CallsTools, "not selected", now);
        results.fail(CheckId::ShutdownSigterm, "slow", now);
        let done = results.finish("not reached");
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].details, "ok");
        assert_eq!(done[1].status, Status::Warn, "a failed SHOULD is a warning");
        drop(done);
        assert_eq!(
            seen,
            [
                ("calls.ping", Status::Pass),
                ("shutdown.sigterm", Status::Warn)
            ]
        );
    }

    #[test]
    fn verdicts_become_statuses() {
        let mut progress = |_: &CheckResult| {};
        let mut results = Results::new(None, &mut progress);
        results.record(CheckId::CallsPing, Err(fail("no")), Some(Instant::now()));
        results.record(CheckId::CallsTools, Err(skip("none")), Some(Instant::now()));
        results.record(CheckId::CallsHooks, Ok("fine".into()), None);
        let done = results.finish("not run");
        let status = |id: &str| done.iter().find(|r| r.check.id == id).unwrap().status;
        assert_eq!(status("calls.ping"), Status::Fail);
        assert_eq!(status("calls.tools"), Status::Skip);
        assert_eq!(status("calls.hooks"), Status::Pass);
        assert_eq!(status("calls.commands"), Status::Skip);
        assert_eq!(ensure(true, String::new), Ok(()));
        assert_eq!(ensure(false, || "broken".into()), Err(fail("broken")));
    }
}
