//! Every mode of the fixture against the suite: the exact checks each one fails.
//!
//! The table is the specification of the fixture: a mode breaks one rule (sometimes a
//! rule that other checks depend on), and the suite must fail exactly the checks that
//! enforce it, warn exactly for the SHOULDs it breaks, skip exactly what it cannot run,
//! and pass everything else. Each mode is a test of its own, so they run in parallel;
//! [`every_check_can_fail`] proves the table reaches every check of the catalogue, and
//! [`every_mode_is_in_the_table`] that it covers every mode plugin.py knows.

use std::collections::BTreeSet;

use crate::support::{Conformance, all_ids, fixture_dir, ids_with};

/// What a mode makes the suite skip, besides its failures and warnings.
#[derive(Clone, Copy, Debug)]
enum Skip {
    /// Nothing: every other check passes.
    Nothing,
    /// These checks.
    Only(&'static [&'static str]),
    /// The checks that need the fixture capability (the mode breaks its declaration).
    FixtureChecks,
    /// Every other check: the handshake never completed.
    AllOthers,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    mode: &'static str,
    fail: &'static [&'static str],
    warn: &'static [&'static str],
    skip: Skip,
}

/// The checks that need `capabilities.fixture` (§13).
pub(crate) const FIXTURE_CHECKS: &[&str] = &[
    "fixture.echo",
    "fixture.log",
    "fixture.progress",
    "fixture.call-host",
    "fixture.concurrency",
    "fixture.cancel",
    "stream.stderr-flood",
    "fixture.large-echo",
];

macro_rules! modes {
    ($(
        $test:ident: $mode:literal => fail [$($fail:literal),* $(,)?]
            $(warn [$($warn:literal),* $(,)?])?
            $(skip $skip:expr)?;
    )*) => {
        /// mode -> what the suite reports.
        const TABLE: &[Case] = &[$(
            Case {
                mode: $mode,
                fail: &[$($fail),*],
                warn: &[$($($warn),*)?],
                skip: modes!(@skip $($skip)?),
            },
        )*];

        $(
            #[test]
            fn $test() {
                check_mode($mode);
            }
        )*
    };
    (@skip) => { Skip::Nothing };
    (@skip $skip:expr) => { $skip };
}

modes! {
    // stream
    buffered: "buffered" => fail ["stream.unbuffered"] skip Skip::AllOthers;
    banner: "banner" => fail ["stream.only-messages"];
    content_length: "content-length"
        => fail ["stream.only-messages", "stream.no-content-length"] warn ["stream.plain-lines"];
    bad_log: "bad-log" => fail ["stream.schema-valid"];
    long_log: "long-log" => fail ["stream.within-limit"];
    crlf: "crlf" => fail [] warn ["stream.plain-lines"];
    stderr_short: "stderr-short" => fail ["stream.stderr-flood"];
    strict_reader: "strict-reader" => fail ["stream.tolerant-reader"];

    // handshake
    hang_initialize: "hang-initialize" => fail ["handshake.initialize"] skip Skip::AllOthers;
    init_bad_capabilities: "init-bad-capabilities"
        => fail ["handshake.initialize"] skip Skip::FixtureChecks;
    version_2: "version-2" => fail [
        "handshake.version-offered",
        "handshake.version-negotiation",
        "handshake.unsupported-version",
    ];
    version_first: "version-first"
        => fail ["handshake.version-negotiation", "handshake.unsupported-version"];
    unsupported_no_data: "unsupported-no-data" => fail ["handshake.unsupported-version"];
    no_early_ping: "no-early-ping" => fail ["handshake.ping-before-initialize"];
    no_32002: "no-32002" => fail ["handshake.not-initialized"];
    reinit: "reinit" => fail ["handshake.second-initialize"];
    wrong_id: "wrong-id" => fail ["handshake.plugin-id"];
    bad_registrations: "bad-registrations"
        => fail ["handshake.registrations-valid", "handshake.registrations-declared"]
        warn ["handshake.known-hooks"];
    strict_fields: "strict-fields" => fail ["handshake.unknown-fields"]
        skip Skip::Only(&["handshake.second-initialize"]);
    early_request: "early-request" => fail ["handshake.no-early-requests"];
    // A request sent the moment `initialized` is read is answered, not refused -32002
    // (the fixture prints a stray line if it is refused).
    request_after_initialized: "request-after-initialized" => fail [];
    unknown_kind: "unknown-kind" => fail [] warn ["handshake.known-kinds"];

    // jsonrpc
    coerce_ids: "coerce-ids" => fail ["jsonrpc.id-types"];
    // Numbers read as doubles, as JSON.parse does: 7.0 comes back as 7, which conforms.
    js_ids: "js-ids" => fail [];
    big_ids_as_strings: "big-ids-as-strings" => fail ["jsonrpc.id-types"];
    reuse_keeps_id: "reuse-keeps-id" => fail ["jsonrpc.reused-id"];
    reuse_silent: "reuse-silent" => fail ["jsonrpc.reused-id"];
    params_32600: "params-32600" => fail ["jsonrpc.params-shape"];
    error_paths_dotted: "error-paths-dotted" => fail ["jsonrpc.invalid-params"];
    no_32601: "no-32601" => fail ["jsonrpc.method-not-found"];
    no_32602: "no-32602" => fail ["jsonrpc.invalid-params", "jsonrpc.params-shape"];
    wrong_parse_code: "wrong-parse-code" => fail ["jsonrpc.parse-error"];
    lenient_envelope: "lenient-envelope"
        => fail ["stream.only-messages", "jsonrpc.invalid-request"];
    batch: "batch" => fail ["jsonrpc.batch-rejected"];
    answer_notifications: "answer-notifications" => fail ["jsonrpc.notifications-unanswered"];
    answer_responses: "answer-responses" => fail ["jsonrpc.responses-unanswered"];
    double_errors: "double-errors" => fail ["jsonrpc.no-error-storm"];
    garbage_crash: "garbage-crash"
        => fail ["jsonrpc.parse-error", "jsonrpc.survives-bad-lines"]
        skip Skip::Only(&["jsonrpc.invalid-request", "jsonrpc.batch-rejected"]);
    no_limit: "no-limit" => fail [] warn ["jsonrpc.oversized-line"];

    // calls
    ping_bad_result: "ping-bad-result" => fail ["calls.ping"];
    tool_bad_result: "tool-bad-result" => fail ["calls.tools"];
    hang_tool: "hang-tool" => fail ["calls.tools", "calls.cancel-answered"];
    bad_hook_result: "bad-hook-result" => fail ["calls.hooks"];
    bad_command_result: "bad-command-result" => fail ["calls.commands"];
    forget_method: "forget-method" => fail ["calls.gateway-methods"];
    bad_route_result: "bad-route-result" => fail ["calls.http-routes"];
    bad_service_result: "bad-service-result" => fail ["calls.services"];
    operations_succeed: "operations-succeed" => fail ["calls.operations"];
    no_32008: "no-32008" => fail ["calls.unknown-name"];
    drop_cancelled: "drop-cancelled" => fail ["calls.cancel-answered"];
    no_slow_tool: "no-slow-tool" => fail [] warn ["calls.slow-call"]
        skip Skip::Only(&["calls.concurrency", "calls.cancel", "jsonrpc.reused-id"]);
    slow_blocks: "slow-blocks" => fail ["calls.concurrency"]
        skip Skip::Only(&["calls.cancel", "jsonrpc.reused-id"]);
    slow_ignores_cancel: "slow-ignores-cancel" => fail ["calls.cancel"];
    short_lines: "short-lines" => fail ["calls.large-message", "fixture.large-echo"];
    mangle_unicode: "mangle-unicode" => fail [
        "jsonrpc.parse-error",
        "calls.non-ascii",
        "fixture.echo",
        "fixture.call-host",
        "fixture.log",
    ];

    // shutdown
    no_shutdown_answer: "no-shutdown-answer" => fail ["shutdown.answered"];
    exit_nonzero: "exit-nonzero"
        => fail ["shutdown.exit-on-eof", "shutdown.eof-without-shutdown"];
    no_exit_on_eof: "no-exit-on-eof"
        => fail ["shutdown.exit-on-eof", "shutdown.eof-without-shutdown"]
        skip Skip::Only(&["shutdown.no-leftovers"]);
    leave_helper: "leave-helper" => fail ["shutdown.no-leftovers"];
    ignore_sigterm: "ignore-sigterm" => fail [] warn ["shutdown.sigterm"];

    // fixture
    fixture_bad_echo: "fixture-bad-echo" => fail ["fixture.echo"];
    fixture_truncate_echo: "fixture-truncate-echo" => fail ["fixture.large-echo"];
    fixture_ignore_cancel: "fixture-ignore-cancel" => fail ["fixture.cancel"];
    fixture_sequential: "fixture-sequential"
        => fail ["fixture.concurrency", "fixture.cancel"];
    fixture_progress_after: "fixture-progress-after" => fail ["fixture.progress"];
    fixture_callhost_drop: "fixture-callhost-drop" => fail ["fixture.call-host"];
    fixture_no_log: "fixture-no-log" => fail ["fixture.log"];
}

fn case(mode: &str) -> &'static Case {
    TABLE
        .iter()
        .find(|c| c.mode == mode)
        .unwrap_or_else(|| panic!("mode {mode} is in the table"))
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|&id| id.to_owned()).collect()
}

/// Runs the suite on the fixture in `mode` and compares every check's status with the
/// table.
fn check_mode(mode: &str) {
    let case = case(mode);
    let fail = set(case.fail);
    let warn = set(case.warn);
    let others: BTreeSet<String> = all_ids()
        .into_iter()
        .filter(|id| !fail.contains(id) && !warn.contains(id))
        .collect();
    let skip = match case.skip {
        Skip::Nothing => BTreeSet::new(),
        Skip::Only(ids) => set(ids),
        Skip::FixtureChecks => set(FIXTURE_CHECKS),
        Skip::AllOthers => others.clone(),
    };
    let pass: BTreeSet<String> = others.difference(&skip).cloned().collect();

    let outcome = Conformance::fixture(mode).run();
    let report = outcome.json();
    let expected = [
        ("fail", &fail),
        ("warn", &warn),
        ("skip", &skip),
        ("pass", &pass),
    ];
    let mut wrong = Vec::new();
    for (status, ids) in expected {
        let got = ids_with(&report, status);
        if got != *ids {
            let missing: Vec<_> = ids.difference(&got).collect();
            let extra: Vec<_> = got.difference(ids).collect();
            wrong.push(format!(
                "{status}: expected but not {status}: {missing:?}; {status} but not expected: {extra:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "mode {mode}:\n  {}\nreport:\n{report:#}",
        wrong.join("\n  ")
    );
    let (code, verdict) = if fail.is_empty() {
        (0, "pass")
    } else {
        (1, "fail")
    };
    assert_eq!(outcome.code(), code, "mode {mode}: exit code");
    assert_eq!(report["result"], verdict, "mode {mode}");
    assert_eq!(report["summary"]["fail"], fail.len(), "mode {mode}");
    assert_eq!(report["summary"]["warn"], warn.len(), "mode {mode}");
}

/// Every check of the catalogue fails (or warns) for at least one mode: no check is
/// dead code that passes whatever the plugin does.
#[test]
fn every_check_can_fail() {
    let reached: BTreeSet<String> = TABLE
        .iter()
        .flat_map(|c| c.fail.iter().chain(c.warn))
        .map(|&id| id.to_owned())
        .collect();
    let unreached: Vec<_> = all_ids().difference(&reached).cloned().collect();
    assert!(unreached.is_empty(), "no fixture mode fails {unreached:?}");
    let unknown: Vec<_> = reached.difference(&all_ids()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the table names unknown checks {unknown:?}"
    );
    for family in outpost_conformance::FAMILIES {
        assert!(
            reached
                .iter()
                .any(|id| id.starts_with(&format!("{family}."))),
            "no mode fails a check of family {family}"
        );
    }
    // Failures are MUSTs and warnings SHOULDs.
    for case in TABLE {
        for (ids, level) in [(case.fail, "MUST"), (case.warn, "SHOULD")] {
            for id in ids {
                let check = outpost_conformance::find_check(id).expect("known id");
                assert_eq!(
                    check.level.to_string(),
                    level,
                    "{} in mode {}",
                    id,
                    case.mode
                );
            }
        }
    }
}

/// The table knows every mode of plugin.py, and plugin.py every mode of the table.
#[test]
fn every_mode_is_in_the_table() {
    let source = std::fs::read_to_string(fixture_dir().join("plugin.py")).unwrap();
    let in_plugin: BTreeSet<String> = source
        .split("mode(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("\")").map(|(name, _)| name.to_owned()))
        .collect();
    let in_table: BTreeSet<String> = TABLE.iter().map(|c| c.mode.to_owned()).collect();
    assert_eq!(
        in_plugin, in_table,
        "plugin.py's modes and the table differ"
    );
    assert_eq!(in_table.len(), TABLE.len(), "a mode is listed twice");
}
