//! `outpost plugins install|disable|enable|update|uninstall` beside a running
//! `outpost serve`: each changes the config file or the global extensions directory, and
//! `outpost reload` applies it.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

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
    let stdout = succeeds(&server.outpost(&["plugins", "info", "extra", "--json"]));
    assert!(stdout.contains("\"version\": \"2.0.0\""), "{stdout}");

    let stdout = succeeds(&server.outpost(&["plugins", "uninstall", "extra"]));
    assert!(stdout.contains("removed `extra`"), "{stdout}");
    assert!(!server.dir.path().join("ext/extra").exists());
    succeeds(&server.outpost(&["reload"]));
    server.wait_ready(1);
}
