//! `outpost new plugin`: the scaffolder's rules, and each language's template generated
//! into a temporary directory and run through the generic protocol checks of
//! [`super::examples`] (and the conformance suite).
//!
//! The scaffolder lives in the binary (`supervisor/cli/src/new.rs`); this test crate compiles the
//! same file as a module to call it directly, and also runs it through the built
//! `outpost` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::examples::{Example, run_generic_checks};

#[path = "../../../src/new.rs"]
#[expect(
    dead_code,
    reason = "the command's entry point is exercised through the built binary"
)]
mod cli_new;

use cli_new::{Lang, NewError, scaffold};

/// A plugin generated from the `lang` template into a fresh temporary directory.
fn generate(lang: Lang, dir_name: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("a temporary directory");
    let root = parent.path().join(dir_name);
    let scaffold = scaffold(lang, &root, None)
        .unwrap_or_else(|error| panic!("cannot generate the {lang} template: {error}"));
    assert_eq!(scaffold.root, root);
    (parent, root)
}

/// The generated plugin as a test subject: the greeting tool is the quick call.
fn subject(lang: Lang, id: &str) -> Example {
    let (dir, root) = generate(lang, id);
    template_subject(root, id, Some(dir))
}

fn template_subject(root: PathBuf, id: &str, dir: Option<tempfile::TempDir>) -> Example {
    Example {
        root,
        id: id.to_owned(),
        config: json!({"greeting": "Hello"}),
        bad_config: json!({"greeting": " "}),
        quick_tool: (
            format!("{}_greet", id.replace('-', "_")),
            json!({"name": "Ada"}),
        ),
        slow_tool: None,
        command: id.to_owned(),
        logs_at_start: false,
        _dir: dir,
    }
}

/// The greeting tool and the command, as a newcomer would first try them.
fn tool_and_command_answer(subject: &Example) {
    let (mut plugin, result) = subject.start();
    assert_eq!(result["plugin"]["id"], subject.id.as_str());
    let (tool, arguments) = &subject.quick_tool;
    let greeted = plugin.call(
        json!(2),
        "tool/invoke",
        json!({"name": tool, "arguments": arguments, "context": {}}),
    );
    assert_eq!(greeted["content"][0]["text"], "Hello, Ada!", "{greeted}");
    let status = plugin.call(
        json!(3),
        "command/run",
        json!({"name": subject.command, "commandBody": format!("/{}", subject.command), "context": {}}),
    );
    assert!(
        status["text"]
            .as_str()
            .unwrap_or_default()
            .contains("1 greeting."),
        "{status}"
    );
    assert_eq!(plugin.call(json!(4), "ping", json!({})), json!({}));
    assert_eq!(plugin.call(json!(5), "shutdown", json!({})), json!({}));
    plugin.close_stdin();
    assert_eq!(plugin.wait_exit().code(), Some(0));
}

#[test]
fn python_template_works_as_generated() {
    let subject = subject(Lang::Python, "py-hello");
    tool_and_command_answer(&subject);
    run_generic_checks(&subject);
}

#[test]
fn node_template_works_as_generated() {
    let subject = subject(Lang::Node, "node-hello");
    tool_and_command_answer(&subject);
    run_generic_checks(&subject);
}

/// Building the generated crate is the slow part: it uses a target directory of its own
/// under the workspace's `target/` (so the SDK and its dependencies are compiled once
/// and reused by later runs), the `Cargo.lock` it was generated with (the workspace's
/// versions: nothing is resolved or downloaded, `--offline`), and the debug profile. The binary is then copied to where
/// the generated manifest expects the release build.
#[test]
fn rust_template_builds_and_works_as_generated() {
    let id = "rs-hello";
    let (dir, root) = generate(Lang::Rust, id);
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sdk-rust")
        .canonicalize()
        .unwrap();
    assert!(
        cargo_toml.contains(&format!("outpost-sdk = {{ path = \"{}\" }}", sdk.display())),
        "from a source checkout, the SDK is a path dependency:\n{cargo_toml}"
    );

    // The generated Cargo.lock pins what the workspace's lock does, so the build needs
    // nothing that is not in the cargo cache already.
    let target = target_dir().join("outpost-new-rust");
    let status = Command::new(cargo())
        .args(["build", "--offline", "--quiet", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the generated Rust plugin does not build");
    let release = root.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(target.join("debug").join(id), release.join(id)).unwrap();

    let subject = template_subject(root, id, Some(dir));
    tool_and_command_answer(&subject);
    run_generic_checks(&subject);
    conformance_passes(&subject.root);
}

#[test]
fn conformance_suite_passes_on_the_examples_and_the_script_templates() {
    let python = subject(Lang::Python, "py-conform");
    let node = subject(Lang::Node, "node-conform");
    for root in [
        super::examples::python().root,
        super::examples::node().root,
        python.root.clone(),
        node.root.clone(),
    ] {
        conformance_passes(&root);
    }
}

/// `outpost-conformance run --plugin-dir ROOT` succeeds, with a report that names its
/// checks (so that a stub binary cannot pass).
fn conformance_passes(root: &Path) {
    let binary = conformance_binary();
    let output = Command::new(&binary)
        .args(["run", "--plugin-dir"])
        .arg(root)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("handshake.initialize"),
        "the conformance suite fails on {} ({}):\n{stdout}\n{stderr}",
        root.display(),
        output.status
    );
}

/// Builds (or finds up to date) `outpost-conformance` in the workspace's target
/// directory.
fn conformance_binary() -> PathBuf {
    let status = Command::new(cargo())
        .args([
            "build",
            "--quiet",
            "-p",
            "outpost-conformance",
            "--manifest-path",
        ])
        .arg(workspace_root().join("Cargo.toml"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "outpost-conformance does not build");
    target_dir().join("debug/outpost-conformance")
}

pub(super) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

pub(super) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target directory this test binary was built in: `<target>/debug/deps/scaffold-*`.
pub(super) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_owned()
}

// -----------------------------------------------------------------------------------------
// The scaffolder's rules
// -----------------------------------------------------------------------------------------

/// (language, directory name, `--id`, the id written or a phrase of the error)
type Case<'a> = (Lang, &'a str, Option<&'a str>, Result<&'a str, &'a str>);

#[test]
fn ids_are_checked_and_refusals_say_what_to_do() {
    let cases: &[Case<'_>] = &[
        (Lang::Python, "hello", None, Ok("hello")),
        (Lang::Node, "dir", Some("my-plugin2"), Ok("my-plugin2")),
        (Lang::Python, "test", None, Ok("test")),
        (Lang::Rust, "test", None, Err("cannot name a Rust package")),
        (Lang::Python, "My_Plugin", None, Err("pass --id my-plugin")),
        (
            Lang::Python,
            "dir",
            Some("node-mcp"),
            Err("reserved by OpenClaw core"),
        ),
        (
            Lang::Node,
            "dir",
            Some("9lives"),
            Err("start with a lowercase letter"),
        ),
        (
            Lang::Node,
            "dir",
            Some("a--b"),
            Err("between two letters or digits"),
        ),
        (
            Lang::Node,
            "dir",
            Some("ab-"),
            Err("between two letters or digits"),
        ),
        (Lang::Node, "dir", Some("a.b"), Err("pass --id a-b")),
        (Lang::Node, "dir", Some(""), Err("it is empty")),
        (
            Lang::Python,
            "dir",
            Some(&"x".repeat(49)),
            Err("longer than 48"),
        ),
    ];
    for (lang, dir_name, id, expected) in cases {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join(dir_name);
        let result = scaffold(*lang, &root, *id);
        match (expected, result) {
            (Ok(expected), Ok(scaffold)) => {
                assert_eq!(scaffold.id, *expected);
                let manifest: Value = serde_json::from_str(
                    &std::fs::read_to_string(root.join("openclaw.plugin.json")).unwrap(),
                )
                .unwrap();
                assert_eq!(manifest["id"], *expected);
            }
            (Err(phrase), Err(error)) => {
                let message = error.to_string();
                assert!(
                    message.contains(phrase),
                    "{dir_name} {id:?}: `{message}` should say `{phrase}`"
                );
                assert!(!root.exists(), "nothing is written when the id is refused");
            }
            (expected, result) => {
                panic!("{dir_name} {id:?}: expected {expected:?}, got {result:?}")
            }
        }
    }
}

#[test]
fn the_directory_name_cannot_be_missing() {
    let result = scaffold(Lang::Python, Path::new("/"), None);
    assert!(
        matches!(result, Err(NewError::NoDirectoryName { .. })),
        "{result:?}"
    );
}

#[test]
fn a_non_empty_directory_is_refused_naming_what_is_in_the_way() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("busy");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for name in ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"] {
        std::fs::write(root.join(name), "keep me").unwrap();
    }
    let error = scaffold(Lang::Node, &root, None).unwrap_err();
    let message = error.to_string();
    for phrase in [
        root.display().to_string(),
        "`a.txt`".to_owned(),
        "`e.txt`".to_owned(),
        "2 more".to_owned(),
        "choose a new or empty directory".to_owned(),
    ] {
        assert!(
            message.contains(&phrase),
            "`{message}` should say `{phrase}`"
        );
    }
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        7,
        "nothing written"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "keep me"
    );

    // A file where the directory should be.
    let file = parent.path().join("file");
    std::fs::write(&file, "").unwrap();
    let error = scaffold(Lang::Node, &file, Some("file")).unwrap_err();
    assert!(matches!(error, NewError::NotADirectory { .. }), "{error:?}");
}

#[test]
fn an_empty_or_missing_directory_is_filled_without_placeholders_left() {
    for lang in [Lang::Rust, Lang::Python, Lang::Node] {
        let parent = tempfile::tempdir().unwrap();
        let empty = parent.path().join("empty-one");
        std::fs::create_dir(&empty).unwrap();
        let nested = parent.path().join("not/yet/there");
        for (root, id) in [(&empty, "empty-one"), (&nested, "there")] {
            let scaffold = scaffold(lang, root, None).unwrap();
            assert_eq!(scaffold.id, id);
            for file in &scaffold.files {
                let text = std::fs::read_to_string(root.join(file)).unwrap();
                let leftover = text
                    .match_indices("__")
                    .find(|(at, _)| text[at + 2..].starts_with(|c: char| c.is_ascii_uppercase()));
                assert!(
                    leftover.is_none(),
                    "{lang}: a placeholder is left in {file}"
                );
                assert!(text.contains(id) || *file == ".gitignore", "{lang}: {file}");
            }
        }
    }
}

#[test]
fn a_reserved_command_name_is_avoided() {
    let (_dir, root) = generate(Lang::Python, "status");
    let subject = Example {
        command: "status-info".to_owned(),
        ..template_subject(root, "status", None)
    };
    tool_and_command_answer(&subject);
}

#[test]
fn next_steps_name_the_directory_and_the_commands() {
    let (_dir, root) = generate(Lang::Rust, "steps");
    let scaffold = cli_new::Scaffold {
        root: root.clone(),
        id: "steps".to_owned(),
        lang: Lang::Rust,
        files: vec!["openclaw.plugin.json", "Cargo.toml"],
        sdk: Some(cli_new::sdk_source()),
    };
    let mut out = Vec::new();
    cli_new::print_next_steps(&scaffold, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for phrase in [
        format!("Created the Rust plugin `steps` in {}", root.display()),
        "  Cargo.toml".to_owned(),
        "cargo build --release".to_owned(),
        format!("outpost-conformance run --plugin-dir {}", root.display()),
        "plugins.load.paths".to_owned(),
        "outpost plugins inspect steps".to_owned(),
    ] {
        assert!(text.contains(&phrase), "{text}\nshould say `{phrase}`");
    }
}

/// `outpost new plugin` through the built binary. Passes once `cli/mod.rs` dispatches
/// `Command::New` to `new::run`.
#[test]
fn outpost_new_plugin_through_the_binary() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("from-the-cli");
    let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["new", "plugin", "--lang", "python"])
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("plugins.load.paths"), "{stdout}");
    assert!(root.join("plugin.py").is_file());

    // Again into the same directory: refused, with the reason, and exit status 1.
    let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["new", "plugin", "--lang", "node", "--id", "other"])
        .arg(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
}
