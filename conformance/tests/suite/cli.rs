//! The binary as CI uses it: a clean plugin passes, the three output formats, baselines,
//! hangs, exit codes.

use std::collections::BTreeSet;

use quick_junit::{NonSuccessKind, TestCaseStatus};
use serde_json::Value;

use crate::modes::FIXTURE_CHECKS;
use crate::support::{Conformance, SLOW_CALL, all_ids, check, checks, fixture_dir, ids_with};

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|&id| id.to_owned()).collect()
}

fn write_file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// --------------------------------------------------------------------------------------
// A conforming plugin

#[test]
fn the_unmodified_fixture_passes_every_check() {
    let outcome = Conformance::fixture("").run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    assert_eq!(report["result"], "pass");
    assert_eq!(ids_with(&report, "pass"), all_ids(), "{report:#}");
    assert_eq!(report["summary"]["total"], all_ids().len());
    assert_eq!(report["format"], "outpost-conformance-report");
    assert_eq!(report["formatVersion"], 1);
    assert_eq!(report["plugin"]["id"], "fixture");
    assert_eq!(report["plugin"]["idSource"], "manifest");
    assert_eq!(report["plugin"]["fixture"], true);
    let ids: Vec<&str> = checks(&report)
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let catalogue: Vec<&str> = outpost_conformance::CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(ids, catalogue, "the report lists checks in catalogue order");
    for c in checks(&report) {
        let known = outpost_conformance::find_check(c["id"].as_str().unwrap()).unwrap();
        assert_eq!(c["level"], known.level.to_string());
        assert_eq!(c["section"], known.section);
        assert_eq!(c["family"], known.family());
        assert_eq!(c["baseline"], Value::Null);
        assert!(c["durationMs"].is_u64(), "{c}");
    }
}

/// The checks that need a call in flight (`--slow-call`, or the fixture capability).
const SLOW_CHECKS: &[&str] = &["calls.concurrency", "calls.cancel", "jsonrpc.reused-id"];

#[test]
fn without_the_fixture_capability_the_fixture_checks_are_skipped() {
    let outcome = Conformance::new(["run", "--json", "--slow-call", SLOW_CALL, "--plugin-dir"])
        .arg(fixture_dir())
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    assert_eq!(ids_with(&report, "skip"), set(FIXTURE_CHECKS), "{report:#}");
    assert_eq!(ids_with(&report, "fail"), BTreeSet::new());
    assert_eq!(ids_with(&report, "warn"), BTreeSet::new());
    assert_eq!(report["plugin"]["fixture"], false);
    let reason = check(&report, "fixture.echo")["details"].as_str().unwrap();
    assert!(reason.contains("capabilities.fixture"), "{reason}");
}

/// Without a slow call (and without the fixture capability), the report says plainly
/// that concurrency and cancellation were not verified: a warning, which `--strict`
/// turns into a failed run.
#[test]
fn without_a_slow_call_concurrency_is_not_verified_and_strict_fails() {
    let outcome = Conformance::new(["run", "--json", "--plugin-dir"])
        .arg(fixture_dir())
        .run();
    let report = outcome.json();
    assert_eq!(
        outcome.code(),
        0,
        "a warning does not fail the run: {report:#}"
    );
    assert_eq!(
        ids_with(&report, "warn"),
        set(&["calls.slow-call"]),
        "{report:#}"
    );
    let details = check(&report, "calls.slow-call")["details"]
        .as_str()
        .unwrap();
    assert!(
        details.starts_with("concurrency and cancellation were not verified")
            && details.contains("--slow-call"),
        "{details}"
    );
    let skipped = ids_with(&report, "skip");
    for id in SLOW_CHECKS {
        assert!(skipped.contains(*id), "{id} is skipped: {report:#}");
    }
    assert_eq!(report["strict"], false);

    let strict = Conformance::new(["run", "--json", "--strict", "--plugin-dir"])
        .arg(fixture_dir())
        .run();
    let report = strict.json();
    assert_eq!(strict.code(), 1, "{report:#}");
    assert_eq!(report["result"], "fail");
    assert_eq!(report["strict"], true);
    assert_eq!(check(&report, "calls.slow-call")["status"], "warn");
}

/// The suite's host answers a request the plugin sends the moment it reads
/// `initialized`, as the supervisor does (docs/protocol.md §5.3).
#[test]
fn a_request_right_after_initialized_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("transcript.txt");
    let outcome = Conformance::fixture("request-after-initialized")
        .arg("--transcript")
        .arg(&transcript)
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    let text = std::fs::read_to_string(&transcript).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let initialized = lines
        .iter()
        .position(|l| l.contains(r#""method":"initialized""#))
        .unwrap_or_else(|| panic!("no initialized:\n{text}"));
    let request = lines
        .iter()
        .position(|l| l.contains(" < ") && l.contains(r#""id":"after-initialized-1""#))
        .unwrap_or_else(|| panic!("the fixture's request is missing:\n{text}"));
    assert!(request > initialized, "{text}");
    let answer = lines
        .iter()
        .find(|l| l.contains(" > ") && l.contains(r#""id":"after-initialized-1""#))
        .unwrap_or_else(|| panic!("the request was not answered:\n{text}"));
    assert!(answer.contains(r#""result":{"config""#), "{answer}");
}

#[test]
fn a_slow_call_that_is_not_registered_is_named() {
    let outcome = Conformance::new(["run", "--json", "--only", "calls", "--plugin-dir"])
        .arg(fixture_dir())
        .args(["--slow-call", "tool no_such_tool {}"])
        .env("CONFORMANCE_FIXTURE_CAPABILITY", "1")
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    let details = check(&report, "calls.slow-call")["details"]
        .as_str()
        .unwrap();
    assert!(details.contains("`no_such_tool`"), "{details}");
    assert_eq!(check(&report, "calls.concurrency")["status"], "skip");
}

#[test]
fn a_bare_command_is_checked_without_the_manifest_checks() {
    let outcome = Conformance::fixture_command(&["--fixture"]).run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    assert_eq!(
        ids_with(&report, "skip"),
        set(&["handshake.registrations-declared"]),
        "{report:#}"
    );
    assert_eq!(report["plugin"]["idSource"], "option");
    assert_eq!(check(&report, "handshake.plugin-id")["status"], "pass");
}

#[test]
fn the_human_report_lists_every_check_and_the_verdict() {
    let outcome = Conformance::new(["run", "--plugin-dir"])
        .arg(fixture_dir())
        .env("CONFORMANCE_FIXTURE_MODE", "crlf")
        .run();
    assert_eq!(outcome.code(), 0, "{}", outcome.stdout);
    for id in all_ids() {
        assert!(
            outcome.stdout.contains(&id),
            "{id} missing:\n{}",
            outcome.stdout
        );
    }
    assert!(outcome.stdout.contains("Details:"), "{}", outcome.stdout);
    let verdict = outcome.stdout.lines().last().unwrap_or_default();
    // stream.plain-lines, and calls.slow-call: no slow call was given.
    assert!(
        verdict.starts_with("PASS: ") && verdict.contains("2 warnings"),
        "{verdict}"
    );
}

// --------------------------------------------------------------------------------------
// JUnit

#[test]
fn junit_is_well_formed_with_one_testcase_per_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    let outcome = Conformance::fixture("bad-registrations")
        .arg("--junit")
        .arg(&path)
        .run();
    assert_eq!(outcome.code(), 1);
    let xml = std::fs::read_to_string(&path).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("not well-formed JUnit ({e}):\n{xml}"));
    assert_eq!(junit.test_suites.len(), 1, "{xml}");
    let suite = &junit.test_suites[0];
    assert_eq!(suite.name.as_str(), "outpost-conformance");
    let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
    let catalogue: Vec<&str> = outpost_conformance::CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(
        names, catalogue,
        "one test case per check, in catalogue order"
    );
    assert_eq!(suite.tests, catalogue.len());

    let mut failed = BTreeSet::new();
    for case in &suite.test_cases {
        let id = case.name.as_str();
        let family = outpost_conformance::find_check(id).unwrap().family();
        assert_eq!(
            case.classname.as_ref().map(|c| c.as_str().to_owned()),
            Some(format!("outpost-conformance.{family}"))
        );
        match &case.status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                ty,
                ..
            } => {
                assert_eq!(
                    ty.as_ref().map(quick_junit::XmlString::as_str),
                    Some("MUST"),
                    "{id}"
                );
                failed.insert(id.to_owned());
            }
            TestCaseStatus::Success { .. } => {}
            other => panic!("{id}: unexpected status {other:?}"),
        }
        let warned = case
            .system_out
            .as_ref()
            .is_some_and(|out| out.as_str().starts_with("warning ("));
        assert_eq!(warned, id == "handshake.known-hooks", "{id}: {xml}");
    }
    assert_eq!(
        failed,
        set(&[
            "handshake.registrations-valid",
            "handshake.registrations-declared"
        ])
    );
    assert_eq!(suite.failures, 2);
    // The JSON on stdout says the same.
    assert_eq!(ids_with(&outcome.json(), "fail"), failed);
}

// --------------------------------------------------------------------------------------
// Baselines

#[test]
fn a_baseline_turns_known_failures_into_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = write_file(
        &dir,
        "expected-failures.txt",
        "# known problems of this plugin\n\nstream.only-messages  # prints a banner\nstream.plain-lines\n",
    );
    let junit = dir.path().join("report.xml");
    let outcome = Conformance::fixture("banner,crlf")
        .arg("--expected-failures")
        .arg(&baseline)
        .arg("--junit")
        .arg(&junit)
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    assert_eq!(report["result"], "pass");
    assert_eq!(report["summary"]["expectedFailures"], 2);
    assert_eq!(report["summary"]["stale"], 0);
    assert_eq!(report["summary"]["fail"], 1, "still counted as a failure");
    for id in ["stream.only-messages", "stream.plain-lines"] {
        assert_eq!(check(&report, id)["baseline"], "expected-failure", "{id}");
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let skipped: BTreeSet<String> = junit.test_suites[0]
        .test_cases
        .iter()
        .filter(|c| matches!(c.status, TestCaseStatus::Skipped { .. }))
        .map(|c| c.name.as_str().to_owned())
        .collect();
    assert_eq!(
        skipped,
        set(&["stream.only-messages", "stream.plain-lines"]),
        "expected failures are skipped test cases"
    );
}

#[test]
fn a_stale_baseline_entry_fails_the_run_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = write_file(
        &dir,
        "expected-failures.txt",
        "stream.only-messages\ncalls.ping  # fixed long ago\n",
    );
    let outcome = Conformance::fixture("banner")
        .arg("--expected-failures")
        .arg(&baseline)
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 1, "{report:#}");
    assert_eq!(report["result"], "fail");
    assert_eq!(report["summary"]["stale"], 1);
    assert_eq!(report["summary"]["expectedFailures"], 1);
    assert_eq!(check(&report, "calls.ping")["status"], "pass");
    assert_eq!(check(&report, "calls.ping")["baseline"], "stale");
    assert_eq!(
        check(&report, "stream.only-messages")["baseline"],
        "expected-failure"
    );

    // The human report names it too.
    let human = Conformance::new(["run", "--expected-failures"])
        .arg(&baseline)
        .arg("--plugin-dir")
        .arg(fixture_dir())
        .env("CONFORMANCE_FIXTURE_MODE", "banner")
        .run();
    assert_eq!(human.code(), 1);
    let stale_line = human
        .stdout
        .lines()
        .find(|l| l.contains("calls.ping") && l.contains("STALE"))
        .unwrap_or_else(|| panic!("no stale line:\n{}", human.stdout));
    assert!(stale_line.contains("passes now"), "{stale_line}");
    assert!(
        human.stdout.contains("1 stale baseline entries"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_baseline_with_an_unknown_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = write_file(&dir, "expected-failures.txt", "calls.ping\ncalls.pnig\n");
    let outcome = Conformance::fixture("")
        .arg("--expected-failures")
        .arg(&baseline)
        .run();
    assert_eq!(outcome.code(), 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(":2: unknown check id `calls.pnig`")
            && outcome.stderr.contains("did you mean `calls.ping`"),
        "{}",
        outcome.stderr
    );
}

// --------------------------------------------------------------------------------------
// Hangs

/// A plugin that never answers `initialize`, ignores stdin EOF and SIGTERM: the run
/// ends, names the step, and kills it (the harness checks no process is left).
#[test]
fn a_plugin_hung_in_the_handshake_does_not_hang_the_suite() {
    let outcome = Conformance::fixture("hang-initialize,no-exit-on-eof,ignore-sigterm")
        .args(["--handshake-timeout", "2"])
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 1, "{report:#}");
    let details = check(&report, "handshake.initialize")["details"]
        .as_str()
        .unwrap();
    assert!(
        details.starts_with("timed out after") && details.contains("the answer to `initialize`"),
        "{details}"
    );
    assert_eq!(ids_with(&report, "fail"), set(&["handshake.initialize"]));
}

/// A plugin that hangs in a tool call, in `shutdown` and at EOF: every later step still
/// runs, and each stuck step says what it waited for.
#[test]
fn a_plugin_hung_in_calls_and_shutdown_does_not_hang_the_suite() {
    let outcome = Conformance::fixture("hang-tool,no-shutdown-answer,no-exit-on-eof")
        .args(["--timeout", "2"])
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 1, "{report:#}");
    let expectations = [
        ("calls.tools", "waiting for the answer to `tool/invoke`"),
        (
            "calls.cancel-answered",
            "waiting for the answer to the cancelled `tool/invoke`",
        ),
        ("shutdown.answered", "waiting for the answer to `shutdown`"),
        ("shutdown.exit-on-eof", "still running"),
        ("shutdown.eof-without-shutdown", "still running"),
    ];
    for (id, says) in expectations {
        let result = check(&report, id);
        assert_eq!(result["status"], "fail", "{id}: {result}");
        let details = result["details"].as_str().unwrap();
        assert!(details.contains(says), "{id}: {details}");
    }
    assert_eq!(
        ids_with(&report, "fail"),
        expectations
            .iter()
            .map(|(id, _)| (*id).to_owned())
            .collect()
    );
    // The steps after the stuck call ran on the same plugin.
    assert_eq!(check(&report, "calls.unknown-name")["status"], "pass");
    assert_eq!(
        check(&report, "jsonrpc.survives-bad-lines")["status"],
        "pass"
    );
}

// --------------------------------------------------------------------------------------
// Exit codes and the other subcommands

#[test]
fn exit_code_2_when_the_suite_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Conformance, &str)> = vec![
        (
            Conformance::new(["run", "--plugin-dir"]).arg(dir.path()),
            "openclaw.plugin.json",
        ),
        (
            Conformance::new(["run", "--only", "calls.pnig", "--plugin-dir"]).arg(fixture_dir()),
            "did you mean `calls.ping`",
        ),
        (
            Conformance::new(["run", "--", "./no-such-plugin"]),
            "does not exist",
        ),
        (
            Conformance::new(["run", "--timeout", "0", "--plugin-dir"]).arg(fixture_dir()),
            "--timeout must be a positive number",
        ),
        (
            Conformance::new(["run", "--slow-call", "service ticker", "--plugin-dir"])
                .arg(fixture_dir()),
            "cannot be the slow call",
        ),
        (Conformance::new(["run"]), "required"),
    ];
    for (run, says) in cases {
        let outcome = run.run();
        assert_eq!(outcome.code(), 2, "{}", outcome.stderr);
        assert!(outcome.stderr.contains(says), "{says}: {}", outcome.stderr);
    }
}

#[test]
fn only_runs_the_checks_and_families_asked_for() {
    let outcome = Conformance::fixture("")
        .args(["--only", "shutdown,calls.ping"])
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{report:#}");
    let ran: BTreeSet<String> = checks(&report)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: BTreeSet<String> = all_ids()
        .into_iter()
        .filter(|id| id.starts_with("shutdown."))
        .collect();
    expected.insert("calls.ping".to_owned());
    assert_eq!(ran, expected);
    assert_eq!(ids_with(&report, "pass"), expected, "{report:#}");
}

#[test]
fn list_prints_the_catalogue() {
    let outcome = Conformance::new(["list", "--json"]).run();
    assert_eq!(outcome.code(), 0);
    let listed = outcome.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), all_ids().len());
    for (entry, check) in listed.iter().zip(outpost_conformance::CHECKS) {
        assert_eq!(entry["id"], check.id);
        assert_eq!(entry["level"], check.level.to_string());
        assert_eq!(entry["section"], check.section);
        assert_eq!(entry["family"], check.family());
        assert_eq!(entry["description"], check.description);
    }
    let table = Conformance::new(["list"]).run();
    assert_eq!(table.code(), 0);
    assert_eq!(table.stdout.lines().count(), all_ids().len());
    let markdown = Conformance::new(["list", "--markdown"]).run();
    assert_eq!(markdown.code(), 0);
    for family in outpost_conformance::FAMILIES {
        assert!(
            markdown
                .stdout
                .contains(&outpost_conformance::markdown_table(family)),
            "{family}"
        );
    }
}
