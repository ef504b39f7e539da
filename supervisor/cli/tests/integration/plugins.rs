//! `outpost plugins list|inspect|validate|doctor` on the control plane's fixture cases
//! (`supervisor/tests/fixtures/control/cases/`): the documented JSON shapes, the human
//! output and the exit codes.

use std::process::Command;

use serde_json::Value;

use crate::cases::{Prepared, prepare};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn outpost(args: &[&str], prepared: &Prepared) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .current_dir(&prepared.root)
        .env("HOME", prepared.root.join("home"))
        .env("PATH", prepared.options.path.clone().unwrap_or_default())
        .env_remove("OUTPOST_BUNDLED_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("outpost runs");
    Output {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}\n{}", output.stdout, output.stderr))
}

#[test]
fn cli_list_json_has_the_documented_fields() {
    let prepared = prepare("discovery-precedence").unwrap();
    let output = outpost(&["plugins", "list", "--json"], &prepared);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let rows = json_of(&output);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        for key in [
            "id",
            "origin",
            "source",
            "status",
            "reason",
            "name",
            "version",
            "runnable",
            "notRunnableReason",
            "root",
            "kind",
            "shadowedBy",
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {row}");
        }
        let status = row["status"].as_str().unwrap();
        assert!(
            [
                "enabled", "disabled", "blocked", "invalid", "missing", "error"
            ]
            .contains(&status),
            "{status}"
        );
    }
    assert_eq!(rows[0]["id"], "acme");
    assert_eq!(rows[0]["origin"], "config");
    assert_eq!(rows[0]["runnable"], true);
}

#[test]
fn cli_list_human_output_is_an_aligned_table_without_colour_off_a_terminal() {
    let prepared = prepare("discovery-precedence").unwrap();
    let mut prepared_env = prepared;
    prepared_env.options.path = prepared_env.options.path.take();
    let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["plugins", "list"])
        .current_dir(&prepared_env.root)
        .env(
            "PATH",
            prepared_env.options.path.clone().unwrap_or_default(),
        )
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains('\u{1b}'),
        "colour off a terminal: {stdout:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ID  "), "{stdout}");
    let status_column = lines[0].find("STATUS").unwrap();
    for line in &lines[1..7] {
        let status = &line[status_column..];
        assert!(
            status.starts_with("enabled") || status.starts_with("disabled"),
            "misaligned: {line:?}"
        );
    }
    assert!(
        stdout.contains("4 warnings: run `outpost plugins doctor`"),
        "{stdout}"
    );
}

#[test]
fn cli_inspect_shows_one_plugin_or_says_what_exists() {
    let prepared = prepare("config-states").unwrap();
    let output = outpost(&["plugins", "inspect", "secret", "--json"], &prepared);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report = json_of(&output);
    assert_eq!(report["id"], "secret");
    assert_eq!(report["config"]["apiKey"], "[redacted]");
    for key in [
        "kind",
        "channels",
        "providers",
        "contracts",
        "skills",
        "configSchema",
        "launch",
        "enablement",
        "diagnostics",
    ] {
        assert!(report.get(key).is_some(), "{key} missing");
    }
    let output = outpost(&["plugins", "inspect", "secret"], &prepared);
    assert_eq!(output.code, 0);
    assert!(output.stdout.contains("Enablement"), "{}", output.stdout);
    assert!(!output.stdout.contains("sk-live-123"), "{}", output.stdout);

    let output = outpost(&["plugins", "inspect", "ghost", "--json"], &prepared);
    assert_eq!(output.code, 1);
    assert_eq!(json_of(&output)["status"], "missing");

    let output = outpost(&["plugins", "inspect", "nobody-at-all"], &prepared);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("no plugin `nobody-at-all`"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("discovered: disabled-bad"),
        "{}",
        output.stderr
    );
}

#[test]
fn cli_validate_exits_1_with_each_problem() {
    let prepared = prepare("config-states").unwrap();
    let output = outpost(&["plugins", "validate", "--json"], &prepared);
    assert_eq!(output.code, 1);
    let report = json_of(&output);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 3);
    let problem = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|problem| problem["key"] == "extra")
        .expect("the unknown key is reported");
    assert_eq!(problem["path"], "plugins.entries.invalid.config.extra");
    assert_eq!(problem["severity"], "error");
    assert_eq!(problem["code"], "config-invalid");

    let output = outpost(&["plugins", "validate"], &prepared);
    assert_eq!(output.code, 1);
    assert!(
        output
            .stdout
            .contains("plugins.entries.invalid.config.extra: unknown key `extra`"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("config is invalid: 3 errors, 6 warnings"),
        "{}",
        output.stdout
    );

    let prepared = prepare("manifest-json5").unwrap();
    let output = outpost(
        &["plugins", "validate", "--config", "outpost.json5"],
        &prepared,
    );
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains("\nconfig is valid (1 warning)"),
        "{}",
        output.stdout
    );
}

#[test]
fn cli_validate_reports_an_unparsable_config_as_json() {
    let prepared = prepare("manifest-json5").unwrap();
    std::fs::write(
        prepared.root.join("broken.json5"),
        "{ plugins: { enabled: tru } }",
    )
    .unwrap();
    let output = outpost(
        &["plugins", "validate", "--json", "--config", "broken.json5"],
        &prepared,
    );
    assert_eq!(output.code, 1);
    let report = json_of(&output);
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"][0]["code"], "config-unreadable");
    let message = report["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.ends_with("broken.json5:1:26: expected bool"),
        "{message}"
    );

    let output = outpost(&["plugins", "list", "--config", "broken.json5"], &prepared);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("broken.json5:1:26: expected bool"),
        "{}",
        output.stderr
    );
}

#[test]
fn cli_doctor_sorts_problems_into_sections() {
    let prepared = prepare("gates-escape").unwrap();
    let output = outpost(&["plugins", "doctor", "--json"], &prepared);
    assert_eq!(output.code, 1);
    let report = json_of(&output);
    assert_eq!(report["ok"], false);
    assert_eq!(report["blocked"].as_array().unwrap().len(), 5);
    assert!(report["errors"].as_array().unwrap().is_empty());
    assert_eq!(report["counts"]["blocked"], 5);
    for section in ["errors", "blocked", "shadowing", "warnings", "advisories"] {
        assert!(report[section].is_array(), "{section}");
    }

    let prepared = prepare("discovery-precedence").unwrap();
    let output = outpost(&["plugins", "doctor"], &prepared);
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(output.stdout.contains("Shadowing (3)"), "{}", output.stdout);
    assert!(
        output.stdout.contains("nothing needs action"),
        "{}",
        output.stdout
    );
}

#[test]
fn cli_hostile_roots_neither_crash_nor_hang_nor_forge_lines() {
    // Before: SIGABRT on the deep manifest, a hang on the FIFO `package.json`, and the
    // newline id printed a line of its own.
    let prepared = prepare("hostile-input").unwrap();
    for (args, code) in [
        (&["plugins", "list"][..], 0),
        (&["plugins", "validate"], 1),
        (&["plugins", "doctor"], 1),
    ] {
        let output = outpost(args, &prepared);
        assert_eq!(
            output.code, code,
            "{args:?}: {}{}",
            output.stdout, output.stderr
        );
        let text = format!("{}{}", output.stdout, output.stderr);
        assert!(text.contains("acme"), "{args:?}: {text}");
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with("2026-12-05T00:00:00Z"),
                "{args:?}: a forged line: {text}"
            );
        }
        assert!(
            !text.contains('\u{202e}'),
            "{args:?}: a raw bidi override: {text}"
        );
    }
}
