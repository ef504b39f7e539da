//! What any command-line tool should do, on the real `outpost` binary: a closed
//! standard output ends a command quietly, `call`'s exit status tells a failed call from
//! a tool that reported an error, completions and man pages, where the config file is
//! found when `--config` is not given, ids matched without regard to case.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn outpost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outpost"));
    command
        .stdin(Stdio::null())
        .env_remove("OUTPOST_CONFIG")
        .env_remove("RUST_LOG");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory with a config that loads only the Python example (`notes`), notes no
/// longer than 10 characters, and no bundled plugins.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("bundled")).unwrap();
        std::fs::write(dir.path().join("notes.json5"), notes_config()).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("notes.json5")
    }

    /// `outpost` in this directory, with no user config dir and no bundled plugins.
    fn outpost(&self) -> Command {
        let mut command = outpost();
        command
            .current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env("XDG_CONFIG_HOME", self.path().join("xdg"))
            .env("OUTPOST_BUNDLED_DIR", self.path().join("bundled"));
        command
    }
}

fn notes_config() -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/python-example")
        .canonicalize()
        .unwrap();
    let python = serde_json::to_string(&python).unwrap();
    format!(
        r#"{{
  plugins: {{
    load: {{ paths: [{python}] }},
    entries: {{ notes: {{ enabled: true, config: {{ maxNoteLength: 10 }} }} }},
  }},
  // Nothing listens here: `call` goes standalone at once.
  outpost: {{ api: {{ listen: "127.0.0.1:9", token: "a-token-of-sixteen-bytes-or-more" }} }},
}}"#
    )
}

/// Runs `command` with a standard output whose reader has gone before it writes.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let child = command
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("outpost runs");
    // `command` holds the write end too: gone with it, so only the child has one.
    drop(command);
    child.wait_with_output().expect("outpost ends")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let setup = Setup::new();
    let config = setup.config();
    let config = config.to_str().unwrap();
    let generated = setup.path().join("generated");
    let cases: Vec<Vec<&str>> = vec![
        vec!["plugins", "list", "--config", config],
        vec!["plugins", "inspect", "notes", "--config", config],
        vec!["plugins", "doctor", "--config", config, "--json"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
        vec!["--version"],
        vec![
            "new",
            "plugin",
            "--lang",
            "python",
            generated.to_str().unwrap(),
        ],
        vec![
            "call",
            "tool",
            "note_add",
            "--standalone",
            "--args",
            r#"{"text": "milk"}"#,
            "--config",
            config,
        ],
    ];
    for args in cases {
        let mut command = setup.outpost();
        command.args(&args);
        let output = with_closed_stdout(command);
        let stderr = text(&output.stderr);
        assert!(
            output.status.code() == Some(0) && !stderr.contains("panicked"),
            "`outpost {}` on a closed stdout: {}\n{stderr}",
            args.join(" "),
            output.status
        );
    }
}

#[test]
fn call_exit_status_tells_a_failed_call_from_a_tool_error() {
    let setup = Setup::new();
    let call = |args: &[&str]| {
        setup
            .outpost()
            .args(["call", "--standalone", "--config"])
            .arg(setup.config())
            .args(args)
            .output()
            .expect("outpost runs")
    };

    let saved = call(&["tool", "note_add", "--args", r#"{"text": "milk"}"#]);
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved.stderr));

    // The tool ran and reported an error (isError: true): status 3, the result printed.
    let too_long = call(&["tool", "note_add", "--args", r#"{"text": "a long note"}"#]);
    assert_eq!(
        too_long.status.code(),
        Some(3),
        "{}",
        text(&too_long.stderr)
    );
    let result: Value = serde_json::from_slice(&too_long.stdout).expect("the result, as JSON");
    assert_eq!(result["isError"], true, "{result}");

    // The call failed (the plugin answered an error): status 1.
    let failed = call(&["tool", "note_add", "--args", r#"{"text": ""}"#]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(failed.stdout.is_empty());

    // Nothing can take it: status 1.
    let nobody = call(&["tool", "no_such_tool"]);
    assert_eq!(nobody.status.code(), Some(1), "{}", text(&nobody.stderr));

    // A wrong command line: status 2.
    let wrong = call(&["tool"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stderr));
}

#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef outpost"),
        ("fish", "complete -c outpost"),
    ] {
        let output = outpost()
            .args(["completions", shell])
            .output()
            .expect("outpost runs");
        let script = text(&output.stdout);
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        assert!(
            script.contains(marker) && script.contains("serve") && script.contains("inspect"),
            "the {shell} completions lack `{marker}` or the commands:\n{script}"
        );
    }

    let page = outpost().arg("man").output().expect("outpost runs");
    let page = text(&page.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH outpost 1"),
        "{page}"
    );
    assert!(page.contains("serve"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let output = outpost()
        .args(["man", "--dir"])
        .arg(dir.path().join("man1"))
        .output()
        .expect("outpost runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    for page in [
        "outpost.1",
        "outpost-serve.1",
        "outpost-call.1",
        "outpost-plugins-inspect.1",
    ] {
        let path = dir.path().join("man1").join(page);
        assert!(path.is_file(), "{} was not written", path.display());
    }
}

/// The plugin ids `outpost plugins list --json` prints, with the config found without
/// `--config`.
fn listed(command: &mut Command) -> Result<Vec<String>, String> {
    listed_with(command, &[])
}

fn listed_with(command: &mut Command, args: &[&Path]) -> Result<Vec<String>, String> {
    let output = command
        .args(["plugins", "list", "--json"])
        .args(args)
        .output()
        .expect("outpost runs");
    if !output.status.success() {
        return Err(text(&output.stderr));
    }
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    Ok(rows
        .iter()
        .map(|row| row["id"].as_str().unwrap_or_default().to_owned())
        .collect())
}

#[test]
fn the_config_is_found_without_config() {
    let setup = Setup::new();
    let notes = vec!["notes".to_owned()];

    // Nothing anywhere: the error names the file looked for and how to name one.
    let error = listed(&mut setup.outpost()).expect_err("no config anywhere");
    assert!(error.contains("outpost.json5"), "{error}");

    // The user's config dir.
    let user = setup.path().join("xdg/outpost");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::copy(setup.config(), user.join("outpost.json5")).unwrap();
    assert_eq!(listed(&mut setup.outpost()), Ok(notes.clone()));
    std::fs::remove_file(user.join("outpost.json5")).unwrap();

    // `~/.config` when XDG_CONFIG_HOME is not set.
    let home = setup.path().join("home/.config/outpost");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(setup.config(), home.join("outpost.json5")).unwrap();
    assert_eq!(
        listed(setup.outpost().env_remove("XDG_CONFIG_HOME")),
        Ok(notes.clone())
    );

    // `./outpost.json5` comes before the user's: an empty config lists nothing.
    std::fs::write(setup.path().join("outpost.json5"), "{}").unwrap();
    assert_eq!(
        listed(setup.outpost().env_remove("XDG_CONFIG_HOME")),
        Ok(vec![])
    );

    // OUTPOST_CONFIG comes before both, and --config before it.
    assert_eq!(
        listed(setup.outpost().env("OUTPOST_CONFIG", setup.config())),
        Ok(notes.clone())
    );
    let empty = setup.path().join("outpost.json5");
    assert_eq!(
        listed_with(
            setup.outpost().env("OUTPOST_CONFIG", setup.config()),
            &[Path::new("--config"), &empty]
        ),
        Ok(vec![])
    );
}

#[test]
fn inspect_finds_an_id_whatever_its_case() {
    let setup = Setup::new();
    let output = setup
        .outpost()
        .args(["plugins", "inspect", "NoTeS", "--json", "--config"])
        .arg(setup.config())
        .output()
        .expect("outpost runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["id"], "notes", "{report}");
}

/// `doctor` asks the interpreter a plugin's command names for its version.
#[test]
fn doctor_warns_when_an_interpreter_is_too_old() {
    use std::os::unix::fs::PermissionsExt as _;

    let setup = Setup::new();
    let doctor = |config: &Path| -> Vec<Value> {
        let output = setup
            .outpost()
            .args(["plugins", "doctor", "--json", "--config"])
            .arg(config)
            .output()
            .expect("outpost runs");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!("{error}: {}", text(&output.stderr));
        });
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|warning| warning["path"] == "outpost.command")
            .cloned()
            .collect()
    };
    // The machine's python3 is new enough (the tests need 3.11 too).
    assert_eq!(doctor(&setup.config()), Vec::<Value>::new());

    // An old one first on outpost.binPath.
    let bin = setup.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let python = bin.join("python3");
    std::fs::write(&python, "#!/bin/sh\necho 'Python 3.8.10'\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = setup.path().join("old.json5");
    let config = notes_config().replacen(
        "outpost: {",
        &format!(
            "outpost: {{ binPath: [{}],",
            serde_json::to_string(&bin).unwrap()
        ),
        1,
    );
    std::fs::write(&old, config).unwrap();
    let warnings = doctor(&old);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = warnings[0]["message"].as_str().unwrap();
    assert_eq!(warnings[0]["plugin"], "notes");
    assert!(
        message.contains("Python 3.8") && message.contains("3.11"),
        "{message}"
    );
}

/// operators.md §2.1: an invalid `outpost.defaults` gives every plugin that would run
/// status `error`; a disabled one (a bundled plugin nobody enabled) stays `disabled`.
#[test]
fn an_invalid_policy_errs_only_the_plugins_that_would_run() {
    let setup = Setup::new();
    let config = setup.path().join("typo.json5");
    std::fs::write(
        &config,
        "{ plugins: { entries: { notes: { enabled: true } } },
           outpost: { defaults: { timeouts: { callMss: 1000 } } } }",
    )
    .unwrap();
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let output = setup
        .outpost()
        .env("OUTPOST_BUNDLED_DIR", &plugins)
        .args(["plugins", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("outpost runs");
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("{error}: {}", text(&output.stderr));
    });
    let status = |id: &str| {
        let row = rows
            .iter()
            .find(|row| row["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {rows:?}"));
        (row["status"].clone(), row["reason"].clone())
    };
    let (notes, why) = status("notes");
    assert_eq!(notes, "error", "{why}");
    assert!(why.as_str().unwrap().contains("outpost.defaults"), "{why}");
    for id in ["clock", "text-tools"] {
        let (status, why) = status(id);
        assert_eq!(status, "disabled", "{id}: {why}");
    }
}

/// `outpost serve` says `ready` once for a plugin that got ready and `failed` once for
/// one that gave up, and the example plugins do not announce themselves as ready too.
#[test]
fn serve_logs_ready_and_failed_once() {
    let setup = Setup::new();
    let boom = setup.path().join("boom");
    std::fs::create_dir(&boom).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/plugins/fixture.py"),
        boom.join("fixture.py"),
    )
    .unwrap();
    std::fs::write(
        boom.join("openclaw.plugin.json"),
        r#"{"id": "boom", "configSchema": {"type": "object"},
            "outpost": {"command": "python3", "args": ["fixture.py"], "entry": "fixture.py",
                        "env": {"set": {"FIXTURE_MODE": "exit-78"}}}}"#,
    )
    .unwrap();
    let config = setup.path().join("serve.json5");
    std::fs::write(
        &config,
        notes_config()
            .replacen("paths: [", "paths: [\"./boom\", ", 1)
            .replacen(
                "entries: {",
                "allow: [\"boom\", \"notes\"], entries: { boom: { enabled: true },",
                1,
            ),
    )
    .unwrap();
    let mut serve = setup
        .outpost()
        .args(["serve", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("outpost serve runs");
    let lines = crate::serve::read_lines(serve.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + crate::serve::SETTLE;
    let mut log = Vec::new();
    let settled = |log: &[String]| {
        log.iter()
            .any(|l| l.contains("ready") && l.contains("plugin=notes"))
            && log
                .iter()
                .any(|l| l.contains("failed") && l.contains("plugin=boom"))
    };
    while !settled(&log) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(error) => {
                let _ = serve.kill();
                let _ = serve.wait();
                panic!(
                    "serve ended, or logged nothing more in time ({error}), before both plugins settled:\n{}",
                    log.join("\n")
                );
            }
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(serve.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // The rest of its log, to its end.
    while let Ok(line) = lines.recv_timeout(crate::serve::SETTLE) {
        log.push(line);
    }
    assert!(crate::serve::wait_exit(&mut serve).success());
    let count = |word: &str, plugin: &str| {
        log.iter()
            .filter(|l| l.contains(word) && l.contains(plugin))
            .count()
    };
    let text = log.join("\n");
    assert_eq!(count("ready", "notes"), 1, "{text}");
    assert_eq!(count("failed", "boom"), 1, "{text}");
}

/// A program inside a plugin's root is the plugin's code, even when it is called
/// `python3`: `doctor` never runs it (the control plane runs no plugin code).
#[test]
fn doctor_never_runs_a_program_inside_a_plugin_root() {
    use std::os::unix::fs::PermissionsExt as _;

    let setup = Setup::new();
    let root = setup.path().join("sly");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(
        root.join("openclaw.plugin.json"),
        r#"{"id": "sly", "configSchema": {"type": "object"}, "outpost": {"command": "./bin/python3"}}"#,
    )
    .unwrap();
    let marker = setup.path().join("it-ran");
    let program = root.join("bin/python3");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\ntouch '{}'\necho 'Python 3.8.0'\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = setup.path().join("sly.json5");
    std::fs::write(
        &config,
        format!(
            "{{ plugins: {{ load: {{ paths: [{}] }}, entries: {{ sly: {{ enabled: true }} }} }} }}",
            serde_json::to_string(&root).unwrap()
        ),
    )
    .unwrap();
    let output = setup
        .outpost()
        .args(["plugins", "doctor", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("outpost runs");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output.stderr)));
    assert_eq!(report["counts"]["enabled"], 1, "{report}");
    assert!(!marker.exists(), "doctor ran the plugin's own program");
}
