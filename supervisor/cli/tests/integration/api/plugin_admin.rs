//! `outpost plugins install|disable|enable|update|uninstall` beside a running
//! `outpost serve`: each changes the config file or the global extensions directory, and
//! `outpost reload` applies it. And the other side of OpenClaw's config a plugin sees:
//! its channels' config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use super::harness::{Plugin, Server};

/// A plugin directory holding the fixture plugin as `id` (without tools, so it takes
/// nothing from the plugin already running), at `version`.
fn fixture_plugin(dir: &Path, id: &str, version: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        crate::fixtures().join("plugins/fixture.py"),
        dir.join("fixture.py"),
    )
    .unwrap();
    let manifest = json!({
        "id": id,
        "version": version,
        "configSchema": {"type": "object"},
        "outpost": {
            "command": "python3",
            "args": ["fixture.py"],
            "entry": "fixture.py",
            "env": {"set": {"FIXTURE_NO_TOOLS": "1"}},
        },
    });
    std::fs::write(dir.join("openclaw.plugin.json"), manifest.to_string()).unwrap();
    dir.to_path_buf()
}

fn succeeds(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_reload_applies_what_the_day_2_commands_change() {
    let mut server = Server::prepare("globalDir: 'ext',");
    server.write_config(&[Plugin::new("base")]);
    server.launch(1);
    let source = fixture_plugin(&server.dir.path().join("src/extra"), "extra", "1.0.0");
    let source = source.to_str().unwrap();

    let stdout = succeeds(&server.outpost(&["plugins", "install", source]));
    assert!(stdout.contains("installed `extra` 1.0.0"), "{stdout}");
    assert!(
        server
            .dir
            .path()
            .join("ext/extra/.outpost-install.json")
            .is_file()
    );
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(2);

    let before = std::fs::read_to_string(&server.config).unwrap();
    let stdout = succeeds(&server.outpost(&["plugins", "disable", "extra"]));
    assert!(
        stdout.contains("disabled: plugins.entries.extra.enabled is false"),
        "{stdout}"
    );
    let after = std::fs::read_to_string(&server.config).unwrap();
    assert!(after.starts_with(&before[..before.find("entries: {").unwrap()]));
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(1);

    succeeds(&server.outpost(&["plugins", "enable", "extra"]));
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(2);

    fixture_plugin(&server.dir.path().join("src/extra"), "extra", "2.0.0");
    let stdout = succeeds(&server.outpost(&["plugins", "update", "extra"]));
    assert!(stdout.contains("1.0.0 -> 2.0.0"), "{stdout}");
    // inspect asks the running serve, which knows the new copy after a reload.
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(2);
    let stdout = succeeds(&server.outpost(&["plugins", "info", "extra", "--json"]));
    assert!(stdout.contains("\"version\": \"2.0.0\""), "{stdout}");

    let stdout = succeeds(&server.outpost(&["plugins", "uninstall", "extra"]));
    assert!(stdout.contains("removed `extra`"), "{stdout}");
    assert!(!server.dir.path().join("ext/extra").exists());
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(1);
}

#[test]
fn a_channel_plugin_reads_its_channel_config_from_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture_plugin(&dir.path().join("acmechat"), "acmechat", "1.0.0");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("openclaw.plugin.json")).unwrap())
            .unwrap();
    manifest["channels"] = json!(["acmechat"]);
    manifest["contracts"] = json!({"tools": ["ask"]});
    manifest["outpost"]["env"] = json!({});
    std::fs::write(root.join("openclaw.plugin.json"), manifest.to_string()).unwrap();
    let config = dir.path().join("outpost.json5");
    std::fs::write(
        &config,
        "{ plugins: { load: { paths: ['acmechat'] } },
           channels: { acmechat: { accounts: { default: { botToken: 'T-1' } } }, other: {} },
           outpost: { globalDir: 'none', bundledDir: 'none' } }",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args([
            "call",
            "tool",
            "ask",
            "--standalone",
            "--args",
            r#"{"method": "host/getConfig"}"#,
            "--config",
        ])
        .arg(&config)
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = succeeds(&output);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    let answer: Value =
        serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        answer["result"]["channels"],
        json!({"acmechat": {"accounts": {"default": {"botToken": "T-1"}}}}),
        "{answer}"
    );
    // The undeclared channel is an error of the config, not of this plugin.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("channels.other"), "{stderr}");
}
