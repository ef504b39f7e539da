//! The example plugins of plugins/ pass the suite, as their READMEs promise, and so does
//! the Rust SDK's own test plugin.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::modes::FIXTURE_CHECKS;
use crate::support::{Conformance, ids_with, workspace_root};

/// Checks a plugin may skip for what it does not register (or for not being the
/// fixture); everything else must pass.
const MAY_SKIP: &[&str] = &[
    "handshake.known-hooks",
    "jsonrpc.invalid-params",
    "calls.tools",
    "calls.hooks",
    "calls.commands",
    "calls.gateway-methods",
    "calls.http-routes",
    "calls.services",
    "calls.operations",
    "calls.unknown-name",
];

/// The checks that need a slow call, skipped without one.
const SLOW_CHECKS: &[&str] = &["calls.concurrency", "calls.cancel", "jsonrpc.reused-id"];

/// Runs `run --json ARGS`; everything passes but for `MAY_SKIP`, the fixture checks,
/// `skip` and `warn`.
fn passes(args: &[&std::ffi::OsStr], skip: &[&str], warn: &[&str]) -> serde_json::Value {
    let outcome = Conformance::new(["run", "--json"])
        .args(args.iter().copied())
        .run();
    let report = outcome.json();
    assert_eq!(outcome.code(), 0, "{args:?} fails the suite:\n{report:#}");
    assert_eq!(report["result"], "pass");
    assert!(ids_with(&report, "fail").is_empty(), "{report:#}");
    let warned: Vec<String> = ids_with(&report, "warn").into_iter().collect();
    assert_eq!(warned, warn, "{report:#}");
    let unexpected: Vec<String> = ids_with(&report, "skip")
        .into_iter()
        .filter(|id| {
            let no_slow_call = warn.contains(&"calls.slow-call");
            let may_skip = MAY_SKIP.contains(&id.as_str())
                || skip.contains(&id.as_str())
                || FIXTURE_CHECKS.contains(&id.as_str())
                || (no_slow_call && SLOW_CHECKS.contains(&id.as_str()));
            !may_skip
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{args:?} skips {unexpected:?}:\n{report:#}"
    );
    report
}

/// As the README says: `--plugin-dir DIR --slow-call CALL`.
fn example_passes(dir: &str, slow_call: &str) {
    let root = workspace_root().join(dir);
    let report = passes(
        &[
            "--plugin-dir".as_ref(),
            root.as_os_str(),
            "--slow-call".as_ref(),
            slow_call.as_ref(),
        ],
        &[],
        &[],
    );
    assert_eq!(report["plugin"]["idSource"], "manifest");
}

#[test]
fn the_python_example_passes() {
    example_passes(
        "plugins/python-example",
        r#"tool note_wait {"timeoutSeconds": 2}"#,
    );
}

#[test]
fn the_node_example_passes() {
    example_passes(
        "plugins/node-example",
        r#"tool sleep_then_answer {"seconds": 2}"#,
    );
}

/// The Rust example's manifest runs `outpost-example-rust` from PATH; its README runs
/// the suite with `--bin-path target/debug`. The binary belongs to another package of
/// the workspace, so the test builds it (offline, into the target directory and profile
/// of this test's own binary) before running the suite the way the README does. It has
/// no slow call (the SDK's concurrency and cancellation are checked on the SDK's test
/// plugin, below): the report says so with a warning.
#[test]
fn the_rust_example_passes() {
    let bin_dir = build_bin("outpost-example-rust", None, "outpost-example-rust");
    let root = workspace_root().join("plugins/rust-example");
    let report = passes(
        &[
            "--plugin-dir".as_ref(),
            root.as_os_str(),
            "--bin-path".as_ref(),
            bin_dir.as_os_str(),
        ],
        &[],
        &["calls.slow-call"],
    );
    assert_eq!(report["plugin"]["idSource"], "manifest");
}

/// The SDK's own test plugin (`sdk-rust/tests/test_plugin`), a bare command with the
/// fixture capability: every check runs, `fixture/sleep` is its slow call, and its tool
/// that waits for an hour gives up at the deadline the suite sends.
#[test]
fn the_sdk_test_plugin_passes() {
    let bin_dir = build_bin(
        "outpost-sdk",
        Some("test-plugin"),
        "outpost-sdk-test-plugin",
    );
    let report = passes(
        &[
            "--plugin-id".as_ref(),
            "sdk-test".as_ref(),
            "--".as_ref(),
            bin_dir.join("outpost-sdk-test-plugin").as_os_str(),
        ],
        // A bare command: no manifest to check declarations against.
        &["handshake.registrations-declared"],
        &[],
    );
    assert_eq!(report["plugin"]["fixture"], true);
    for id in SLOW_CHECKS.iter().chain(FIXTURE_CHECKS) {
        assert_eq!(
            crate::support::check(&report, id)["status"],
            "pass",
            "{id}: {report:#}"
        );
    }
}

/// Builds `bin` of `package` (with `feature`) into the target directory and profile of
/// this test's own binary, offline; returns the directory it is in.
fn build_bin(package: &str, feature: Option<&str>, bin: &str) -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_outpost-conformance"))
        .parent()
        .expect("the binary is in a profile directory")
        .to_owned();
    let target_dir = bin_dir.parent().expect("the profile is in the target dir");
    let profile = match bin_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--offline", "-p", package, "--bin", bin])
        .args(feature.map(|f| ["--features", f]).into_iter().flatten())
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "{bin} does not build");
    let binary = bin_dir.join(bin);
    assert!(binary.is_file(), "{} was not built", binary.display());
    bin_dir
}
