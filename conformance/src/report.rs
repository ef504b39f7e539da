//! The outcome of a run and its three renderings: a table for people, a JSON document,
//! and JUnit XML for CI systems. The JSON shape is documented in docs/conformance.md
//! and is stable: fields are only ever added.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use serde_json::{Value, json};

use crate::checks::{CHECKS, Check, Level, closest_id};

/// The report format's version, bumped only for incompatible changes.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// What happened to one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The plugin does what the check asks.
    Pass,
    /// A MUST check failed.
    Fail,
    /// A SHOULD check failed.
    Warn,
    /// The check did not apply or could not run; the details say why.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Warn => "warn",
            Self::Skip => "skip",
        }
    }

    fn style(self) -> Style {
        let color = match self {
            Self::Pass => AnsiColor::Green,
            Self::Fail => AnsiColor::Red,
            Self::Warn => AnsiColor::Yellow,
            Self::Skip => AnsiColor::BrightBlack,
        };
        Style::new().fg_color(Some(color.into())).bold()
    }
}

/// How an `--expected-failures` baseline changed a check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineMark {
    /// Listed, and it failed (or warned) as expected: it does not fail the run.
    ExpectedFailure,
    /// Listed, but it passed: the baseline is out of date, and the run fails until the
    /// line is removed.
    Stale,
}

/// The result of one check.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// The check.
    pub check: &'static Check,
    /// Its status.
    pub status: Status,
    /// What was seen: for a failure, what the plugin did and what it should do.
    pub details: String,
    /// Time spent on the check's own steps (zero for checks judged from the whole
    /// run's traffic).
    pub duration: Duration,
    /// Set when a baseline lists the check.
    pub baseline: Option<BaselineMark>,
}

impl CheckResult {
    /// Whether this result fails the run.
    pub fn fails_run(&self) -> bool {
        match self.baseline {
            Some(BaselineMark::ExpectedFailure) => false,
            Some(BaselineMark::Stale) => true,
            None => self.status == Status::Fail,
        }
    }
}

/// What the report says about the plugin.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSummary {
    /// The plugin id used for the run.
    pub id: Option<String>,
    /// Where the id came from: `manifest`, `option` (`--plugin-id`) or `plugin` (taken
    /// from the plugin's own answer).
    pub id_source: Option<String>,
    /// `--plugin-dir`, when given.
    pub dir: Option<String>,
    /// The program and arguments started.
    pub command: Vec<String>,
    /// `plugin.name` from the `initialize` result.
    pub name: Option<String>,
    /// `plugin.version` from the `initialize` result.
    pub version: Option<String>,
    /// Whether the plugin declared the conformance fixture capability.
    pub fixture: bool,
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plugin.
    pub plugin: PluginSummary,
    /// One result per check run, in catalogue order.
    pub results: Vec<CheckResult>,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// The last lines the plugin wrote to stderr, tagged with the session.
    pub stderr_tail: Vec<String>,
    /// `--strict`: warnings (failed SHOULD checks outside the baseline) fail the run too.
    pub strict: bool,
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Checks run.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed (MUST), baseline or not.
    pub fail: usize,
    /// Failed (SHOULD).
    pub warn: usize,
    /// Skipped.
    pub skip: usize,
    /// Failures and warnings a baseline expected.
    pub expected_failures: usize,
    /// Baseline entries that passed.
    pub stale: usize,
}

impl Report {
    /// Whether the run passes: no MUST failure outside the baseline, no stale entry, and
    /// with [`Report::strict`] no warning outside the baseline either.
    pub fn passed(&self) -> bool {
        !self.results.iter().any(|r| self.fails_run(r))
    }

    /// Whether `result` fails this run: [`CheckResult::fails_run`], or a warning under
    /// [`Report::strict`].
    pub fn fails_run(&self, result: &CheckResult) -> bool {
        result.fails_run()
            || (self.strict && result.status == Status::Warn && result.baseline.is_none())
    }

    /// Counts per status.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            total: self.results.len(),
            ..Summary::default()
        };
        for result in &self.results {
            match result.status {
                Status::Pass => summary.pass += 1,
                Status::Fail => summary.fail += 1,
                Status::Warn => summary.warn += 1,
                Status::Skip => summary.skip += 1,
            }
            match result.baseline {
                Some(BaselineMark::ExpectedFailure) => summary.expected_failures += 1,
                Some(BaselineMark::Stale) => summary.stale += 1,
                None => {}
            }
        }
        summary
    }

    /// The result of check `id`, if it ran.
    pub fn result(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check.id == id)
    }

    /// Marks listed checks as expected failures or stale entries.
    pub fn apply_baseline(&mut self, baseline: &ExpectedFailures) {
        for result in &mut self.results {
            if !baseline.ids.contains(result.check.id) {
                continue;
            }
            result.baseline = match result.status {
                Status::Fail | Status::Warn => Some(BaselineMark::ExpectedFailure),
                Status::Pass => Some(BaselineMark::Stale),
                // A skipped check proves nothing either way.
                Status::Skip => None,
            };
        }
    }

    /// The JSON document (shape in docs/conformance.md).
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "id": r.check.id,
                    "family": r.check.family(),
                    "level": r.check.level,
                    "section": r.check.section,
                    "description": r.check.description,
                    "status": r.status,
                    "details": r.details,
                    "durationMs": duration_ms(r.duration),
                    "baseline": r.baseline,
                })
            })
            .collect();
        json!({
            "format": "outpost-conformance-report",
            "formatVersion": REPORT_FORMAT_VERSION,
            "suite": {
                "name": "outpost-conformance",
                "version": env!("CARGO_PKG_VERSION"),
                "protocolVersion": outpost_protocol::PROTOCOL_VERSION,
            },
            "plugin": self.plugin,
            "result": if self.passed() { "pass" } else { "fail" },
            "strict": self.strict,
            "summary": self.summary(),
            "durationMs": duration_ms(self.duration),
            "checks": checks,
            "stderrTail": self.stderr_tail,
        })
    }

    /// JUnit XML: one test suite, one test case per check (class name = family).
    /// Warnings pass with a note in `system-out`; expected failures are skipped; stale
    /// baseline entries fail.
    pub fn to_junit(&self) -> String {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

        let mut suite = TestSuite::new("outpost-conformance");
        suite.set_time(self.duration);
        for result in &self.results {
            let check = result.check;
            let headline = format!("{} ({}, {})", check.description, check.level, check.section);
            let status = match (result.baseline, result.status) {
                (Some(BaselineMark::Stale), _) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message("stale baseline entry: the check passes now; remove it from the expected-failures file");
                    status
                }
                (Some(BaselineMark::ExpectedFailure), _) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("expected failure (baseline): {}", result.details));
                    status
                }
                (None, Status::Fail) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(result.details.clone());
                    status.set_type(check.level.to_string());
                    status.set_description(format!("{headline}\n{}", result.details));
                    status
                }
                (None, Status::Skip) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(result.details.clone());
                    status
                }
                (None, Status::Warn) if self.strict => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(format!("warning (--strict): {}", result.details));
                    status.set_type(check.level.to_string());
                    status.set_description(format!("{headline}\n{}", result.details));
                    status
                }
                (None, Status::Pass | Status::Warn) => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(check.id, status);
            case.set_classname(format!("outpost-conformance.{}", check.family()));
            case.set_time(result.duration);
            if result.status == Status::Warn && result.baseline.is_none() && !self.strict {
                case.set_system_out(format!("warning ({headline}): {}", result.details));
            }
            suite.add_test_case(case);
        }
        let mut report = quick_junit::Report::new("outpost-conformance");
        report.set_time(self.duration);
        report.add_test_suite(suite);
        report
            .to_string()
            .expect("a JUnit report of plain strings always serializes")
    }

    /// The closing part of the human output: failures and warnings with their details,
    /// then the verdict.
    pub fn render_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        let problems: Vec<&CheckResult> = self
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::Warn) || r.baseline.is_some())
            .collect();
        if !problems.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                Style::new().bold().render().to_string()
                    + "Details:"
                    + &Style::new().bold().render_reset().to_string()
            )?;
            for result in problems {
                let note = match result.baseline {
                    Some(BaselineMark::ExpectedFailure) => " [expected failure]",
                    Some(BaselineMark::Stale) => " [STALE baseline entry: it passes now]",
                    None => "",
                };
                let style = result.status.style();
                writeln!(
                    out,
                    "  {style}{}{style:#} {} ({}, {}){note}",
                    result.status.label(),
                    result.check.id,
                    result.check.level,
                    result.check.section,
                )?;
                writeln!(out, "       {}", result.check.description)?;
                if !result.details.is_empty() {
                    for line in wrap(&result.details, 96) {
                        writeln!(out, "       {line}")?;
                    }
                }
            }
        }
        let s = self.summary();
        let verdict = if self.passed() {
            let style = Style::new().fg_color(Some(AnsiColor::Green.into())).bold();
            format!("{style}PASS{style:#}")
        } else {
            let style = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
            format!("{style}FAIL{style:#}")
        };
        let mut counts = format!(
            "{} passed, {} failed, {} warnings, {} skipped",
            s.pass, s.fail, s.warn, s.skip
        );
        if s.expected_failures > 0 {
            let _ = write!(counts, ", {} expected failures", s.expected_failures);
        }
        if s.stale > 0 {
            let _ = write!(counts, ", {} stale baseline entries", s.stale);
        }
        if self.strict && s.warn > 0 {
            counts.push_str("; --strict: warnings fail the run");
        }
        writeln!(out)?;
        writeln!(
            out,
            "{verdict}: {counts} ({:.1} s)",
            self.duration.as_secs_f64()
        )?;
        Ok(())
    }
}

/// One line of the live table: status, id, level, section, duration, and the details
/// of a failure or a skip.
pub fn render_row(result: &CheckResult, out: &mut dyn Write) -> io::Result<()> {
    let style = result.status.style();
    let check = result.check;
    let millis = duration_ms(result.duration);
    write!(
        out,
        "  {style}{:<4}{style:#}  {:<34} {:<6} {:<5} {:>6} ms",
        result.status.label(),
        check.id,
        check.level.to_string(),
        check.section,
        millis,
    )?;
    if result.status == Status::Skip && !result.details.is_empty() {
        let dim = Style::new().fg_color(Some(AnsiColor::BrightBlack.into()));
        write!(
            out,
            "  {dim}{}{dim:#}",
            crate::traffic::cut(&result.details, 90)
        )?;
    }
    writeln!(out)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A baseline: check ids a plugin is known to fail, one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedFailures {
    ids: BTreeSet<&'static str>,
}

/// Why a baseline file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// A line names no known check.
    #[error(
        "{file}:{line}: unknown check id `{id}`{hint}; `outpost-conformance list` prints every id"
    )]
    UnknownId {
        /// The file, for the message.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The id as written.
        id: String,
        /// ` (did you mean ...?)` or empty.
        hint: String,
    },
}

impl ExpectedFailures {
    /// Parses a baseline: one check id per line; `#` starts a comment; blank lines are
    /// ignored. `file` names the file in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, BaselineError> {
        let mut ids = BTreeSet::new();
        for (index, line) in text.lines().enumerate() {
            let id = line.split('#').next().unwrap_or("").trim();
            if id.is_empty() {
                continue;
            }
            let Some(check) = CHECKS.iter().find(|c| c.id == id) else {
                return Err(BaselineError::UnknownId {
                    file: file.to_owned(),
                    line: index + 1,
                    id: id.to_owned(),
                    hint: closest_id(id)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default(),
                });
            };
            ids.insert(check.id);
        }
        Ok(Self { ids })
    }

    /// The ids listed.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.ids.iter().copied()
    }
}

/// Whether a MUST check failed (for callers that want the level rule spelled out).
pub(crate) fn status_for(level: Level, passed: bool) -> Status {
    match (passed, level) {
        (true, _) => Status::Pass,
        (false, Level::Must) => Status::Fail,
        (false, Level::Should) => Status::Warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::find_check;

    fn result(id: &str, status: Status) -> CheckResult {
        CheckResult {
            check: find_check(id).unwrap(),
            status,
            details: format!("details of {id}"),
            duration: Duration::from_millis(3),
            baseline: None,
        }
    }

    fn report(results: Vec<CheckResult>) -> Report {
        Report {
            plugin: PluginSummary {
                id: Some("notes".into()),
                ..PluginSummary::default()
            },
            results,
            duration: Duration::from_millis(1500),
            stderr_tail: vec!["[main] hello".into()],
            strict: false,
        }
    }

    #[test]
    fn baselines_parse_with_comments_and_reject_unknown_ids() {
        let baseline = ExpectedFailures::parse(
            "# known problems\n\nstream.plain-lines  # CRLF on Windows\ncalls.tools\n",
            "baseline.txt",
        )
        .unwrap();
        assert_eq!(
            baseline.ids().collect::<Vec<_>>(),
            ["calls.tools", "stream.plain-lines"]
        );
        let error = ExpectedFailures::parse("calls.tools\ncalls.tool\n", "b.txt").unwrap_err();
        assert_eq!(
            error.to_string(),
            "b.txt:2: unknown check id `calls.tool` (did you mean `calls.tools`?); `outpost-conformance list` prints every id"
        );
    }

    #[test]
    fn the_verdict_follows_levels_and_the_baseline() {
        let mut r = report(vec![
            result("calls.ping", Status::Pass),
            result("stream.plain-lines", Status::Warn),
        ]);
        assert!(r.passed(), "a warning does not fail the run");

        let mut r2 = report(vec![
            result("calls.ping", Status::Pass),
            result("calls.tools", Status::Fail),
        ]);
        assert!(!r2.passed());
        r2.apply_baseline(&ExpectedFailures::parse("calls.tools", "b").unwrap());
        assert!(r2.passed(), "an expected failure does not fail the run");
        assert_eq!(r2.summary().expected_failures, 1);

        r.strict = true;
        assert!(!r.passed(), "under --strict a warning fails the run");
        assert_eq!(r.to_json()["strict"], true);
        assert!(r.to_junit().contains("warning (--strict)"));
        r.apply_baseline(&ExpectedFailures::parse("stream.plain-lines", "b").unwrap());
        assert!(r.passed(), "an expected warning does not fail a strict run");
        r.strict = false;
        r.apply_baseline(&ExpectedFailures::parse("calls.ping\nstream.plain-lines", "b").unwrap());
        assert!(!r.passed(), "a stale entry fails the run");
        assert_eq!(r.summary().stale, 1);
        assert_eq!(r.summary().expected_failures, 1);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let r = report(vec![
            result("calls.ping", Status::Pass),
            result("calls.tools", Status::Fail),
        ]);
        let json = r.to_json();
        assert_eq!(json["format"], "outpost-conformance-report");
        assert_eq!(json["formatVersion"], 1);
        assert_eq!(json["result"], "fail");
        assert_eq!(json["plugin"]["id"], "notes");
        assert_eq!(json["summary"]["fail"], 1);
        assert_eq!(json["durationMs"], 1500);
        let tools = &json["checks"][1];
        assert_eq!(tools["id"], "calls.tools");
        assert_eq!(tools["family"], "calls");
        assert_eq!(tools["level"], "MUST");
        assert_eq!(tools["section"], "§6.1");
        assert_eq!(tools["status"], "fail");
        assert_eq!(tools["durationMs"], 3);
        assert_eq!(tools["baseline"], Value::Null);
        assert_eq!(json["stderrTail"][0], "[main] hello");
    }

    #[test]
    fn junit_has_one_case_per_check() {
        let mut r = report(vec![
            result("calls.ping", Status::Pass),
            result("calls.tools", Status::Fail),
            result("stream.plain-lines", Status::Warn),
            result("fixture.echo", Status::Skip),
            result("calls.hooks", Status::Fail),
        ]);
        r.apply_baseline(&ExpectedFailures::parse("calls.hooks", "b").unwrap());
        let xml = r.to_junit();
        assert_eq!(xml.matches("<testcase ").count(), 5, "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert_eq!(xml.matches("<skipped").count(), 2, "{xml}");
        assert!(
            xml.contains("classname=\"outpost-conformance.calls\""),
            "{xml}"
        );
        assert!(xml.contains("warning ("), "{xml}");
    }

    #[test]
    fn statuses_follow_levels() {
        assert_eq!(status_for(Level::Must, false), Status::Fail);
        assert_eq!(status_for(Level::Should, false), Status::Warn);
        assert_eq!(status_for(Level::Should, true), Status::Pass);
    }
}
