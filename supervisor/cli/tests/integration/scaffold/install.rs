//! The install path a newcomer takes (README, "Install"): `scripts/install.sh` into a
//! temporary prefix, then, from a directory outside the repository, the installed
//! `outpost` writes a Rust plugin that builds against the SDK installed beside it (with
//! a `CARGO_HOME` of its own, so nothing of this machine's cargo state helps) and passes
//! the installed `outpost-conformance`.
//!
//! The heaviest test of the crate, so one test does it all. It installs a debug build
//! (`--debug`) into the workspace's own target directory, so the binaries `cargo test`
//! built already are mostly reused, and builds the plugin in a target directory shared
//! with the other Rust template test.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::new::{cargo, target_dir, workspace_root};

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn installed_outpost_scaffolds_a_rust_plugin_that_builds_and_passes_outside_the_repository() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let prefix = work.path().join("prefix");
    let target = target_dir();
    run(Command::new("sh")
        .arg(workspace_root().join("scripts/install.sh"))
        .arg("--debug")
        .arg(&prefix)
        .env("CARGO", cargo())
        .env("CARGO_TARGET_DIR", &target));

    // The layout the docs promise.
    let share = prefix.join("share/outpost");
    for path in [
        "bin/outpost",
        "bin/outpost-conformance",
        "share/outpost/plugins/python-example/openclaw.plugin.json",
        "share/outpost/plugins/node-example/openclaw.plugin.json",
        "share/outpost/rust/outpost-sdk/Cargo.toml",
        "share/outpost/rust/outpost-protocol/Cargo.toml",
        "share/man/man1/outpost.1",
        "share/man/man1/outpost-serve.1",
        "share/bash-completion/completions/outpost",
        "share/zsh/site-functions/_outpost",
        "share/fish/vendor_completions.d/outpost.fish",
    ] {
        assert!(prefix.join(path).is_file(), "{path} was not installed");
    }
    let outpost = prefix.join("bin/outpost");

    // The installed outpost finds its bundled plugins in share/outpost/plugins.
    let outside = work.path().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("outpost.json5"), "{}").unwrap();
    let list = run(Command::new(&outpost)
        .args(["plugins", "list", "--json"])
        .current_dir(&outside)
        .env_remove("OUTPOST_BUNDLED_DIR")
        .env_remove("OUTPOST_CONFIG"));
    let rows: Vec<Value> = serde_json::from_str(&list).expect("JSON");
    let bundled = share.join("plugins").canonicalize().unwrap();
    for id in ["notes", "clock"] {
        let row = rows
            .iter()
            .find(|row| row["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {list}"));
        assert_eq!(row["origin"], "bundled", "{row}");
        let source = PathBuf::from(row["source"].as_str().unwrap_or_default());
        let source = source.canonicalize().unwrap_or(source);
        assert!(
            source.starts_with(&bundled),
            "{id} comes from {}",
            source.display()
        );
    }

    // A Rust plugin, generated outside the repository.
    let steps = run(Command::new(&outpost)
        .args(["new", "plugin", "--lang", "rust", "hello-rs"])
        .current_dir(&outside));
    let root = outside.join("hello-rs");
    let sdk = share.join("rust/outpost-sdk").canonicalize().unwrap();
    assert!(steps.contains(&sdk.display().to_string()), "{steps}");
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains(&format!("outpost-sdk = {{ path = \"{}\" }}", sdk.display())),
        "the SDK is the installed one:\n{cargo_toml}"
    );
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("a Cargo.lock");
    let repository = workspace_root().canonicalize().unwrap();
    assert!(!root.starts_with(&repository));

    // Built with a cargo home of its own: the registry serves serde and tokio, the
    // installed sources outpost-sdk, and the lock the versions Outpost was tested with.
    let plugin_target = target.join("outpost-new-rust");
    run(Command::new(cargo())
        .args(["build", "--quiet"])
        .current_dir(&root)
        .env("CARGO_HOME", work.path().join("cargo-home"))
        .env("CARGO_TARGET_DIR", &plugin_target)
        .env_remove("RUSTFLAGS"));
    let built = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let workspace = std::fs::read_to_string(repository.join("Cargo.lock")).unwrap();
    for name in ["tokio", "serde", "serde_json", "outpost-sdk"] {
        let tested = versions(&workspace, name);
        assert!(!tested.is_empty(), "{name} is not in the workspace's lock");
        assert_eq!(versions(&lock, name), tested, "the shipped lock's {name}");
        assert_eq!(versions(&built, name), tested, "the build's {name}");
    }
    let release = root.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(
        plugin_target.join("debug/hello-rs"),
        release.join("hello-rs"),
    )
    .unwrap();

    let report = run(Command::new(prefix.join("bin/outpost-conformance"))
        .args(["run", "--plugin-dir"])
        .arg(&root)
        .current_dir(&outside));
    assert!(report.contains("handshake.initialize"), "{report}");
}

/// The versions of package `name` in a lock file.
fn versions<'a>(lock: &'a str, name: &str) -> Vec<&'a str> {
    let wanted = format!("name = \"{name}\"");
    lock.split("[[package]]\n")
        .filter_map(|entry| {
            let mut lines = entry.lines();
            (lines.next()? == wanted).then_some(())?;
            lines.next()?.strip_prefix("version = ")
        })
        .collect()
}

/// The generated READMEs and `new`'s next steps name only commands an install gives.
#[test]
fn what_a_newcomer_reads_names_the_install() {
    for path in [
        "README.md",
        "docs/authors.md",
        "supervisor/cli/templates/rust/README.md",
        "supervisor/cli/templates/python/README.md",
        "supervisor/cli/templates/node/README.md",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
        assert!(
            text.contains("scripts/install.sh"),
            "{path} uses `outpost` by name without saying how it gets on PATH"
        );
    }
}
