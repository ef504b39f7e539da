//! The example plugins of plugins/ pass the suite, as their READMEs promise.

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

fn passes(root: &Path, extra: &[&std::ffi::OsStr]) {
    let outcome = Conformance::new(["run", "--json", "--plugin-dir"])
        .arg(root)
        .args(extra.iter().copied())
        .run();
    let report = outcome.json();
    assert_eq!(
        outcome.code(),
        0,
        "{} fails the suite:\n{report:#}",
        root.display()
    );
    assert_eq!(report["result"], "pass");
    assert!(ids_with(&report, "fail").is_empty(), "{report:#}");
    assert!(ids_with(&report, "warn").is_empty(), "{report:#}");
    let unexpected: Vec<String> = ids_with(&report, "skip")
        .into_iter()
        .filter(|id| !MAY_SKIP.contains(&id.as_str()) && !FIXTURE_CHECKS.contains(&id.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} skips {unexpected:?}:\n{report:#}",
        root.display()
    );
    assert_eq!(report["plugin"]["idSource"], "manifest");
}

#[test]
fn the_python_example_passes() {
    passes(&workspace_root().join("plugins/python-example"), &[]);
}

#[test]
fn the_node_example_passes() {
    passes(&workspace_root().join("plugins/node-example"), &[]);
}

/// The Rust example's manifest runs `outpost-example-rust` from PATH; its README runs
/// the suite with `--bin-path target/debug`. The binary belongs to another package of
/// the workspace, so the test builds it (offline, into the target directory and profile
/// of this test's own binary) before running the suite the way the README does.
#[test]
fn the_rust_example_passes() {
    let bin_dir = rust_example_bin_dir();
    passes(
        &workspace_root().join("plugins/rust-example"),
        &["--bin-path".as_ref(), bin_dir.as_os_str()],
    );
}

fn rust_example_bin_dir() -> PathBuf {
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
        .args([
            "build",
            "--quiet",
            "--offline",
            "-p",
            "outpost-example-rust",
        ])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the Rust example does not build");
    let binary = bin_dir.join("outpost-example-rust");
    assert!(binary.is_file(), "{} was not built", binary.display());
    bin_dir
}
