//! The control plane against fixture trees, through the library and through the `outpost`
//! binary.
//!
//! Each directory of `tests/fixtures/control/cases/` is one case: an `outpost.json5`,
//! the plugin roots it discovers, and an `expect.json5` saying what must come out. A case
//! is copied into a temporary directory (git keeps neither world-writable modes nor
//! hardlinks nor owners, so `setup` makes them there), loaded, and compared:
//!
//! - `plugins`: the rows of `outpost plugins list --json`, all of them, in order; each
//!   expected field must match (strings by substring, arrays and numbers exactly);
//! - `diagnostics`: each must match some diagnostic; `counts` gives the exact number
//!   of errors and warnings;
//! - `inspect`: JSON pointers into `outpost plugins inspect <id> --json`;
//! - `valid` and `doctorOk`: the outcome of `validate` and `doctor`.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use outpost_protocol::ManifestField;
use outpost_supervisor::control::{
    self, DoctorReport, InspectReport, KNOWN_FIELDS, ListRow, Manifest, Severity, Status,
    ValidateReport,
};
use serde_json::{Value, json};

use crate::cases::{cases_dir, prepare};
use crate::fixtures;

macro_rules! cases {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                if let Err(error) = run_case($dir) {
                    panic!("case {}: {error:#}", $dir);
                }
            }
        )*

        const CASES: &[&str] = &[$($dir),*];
    };
}

cases! {
    discovery_precedence => "discovery-precedence",
    discovery_load_paths => "discovery-load-paths",
    discovery_scan_rules => "discovery-scan-rules",
    gates_escape => "gates-escape",
    gates_world_writable => "gates-world-writable",
    gates_hardlink => "gates-hardlink",
    gates_owner => "gates-owner",
    manifest_errors => "manifest-errors",
    manifest_json5 => "manifest-json5",
    manifest_name => "manifest-name",
    launch => "launch",
    launch_policy_errors => "launch-policy-errors",
    enablement_defaults => "enablement-defaults",
    enablement_allowlist => "enablement-allowlist",
    enablement_all_off => "enablement-all-off",
    slots => "slots",
    slots_none => "slots-none",
    slots_mismatch => "slots-mismatch",
    config_states => "config-states",
    config_file_problems => "config-file-problems",
    packs => "packs",
    hostile_input => "hostile-input",
    sandbox => "sandbox",
    channels => "channels",
    workspace_shadowing => "workspace-shadowing",
    startup_hardening => "startup-hardening",
}

#[test]
fn doctor_says_what_confines_plugins_here() {
    let host = outpost_supervisor::isolation::probe();
    // `sandbox` sets outpost.sandbox.user; `launch` sets no user.
    for (case, user_configured) in [("sandbox", true), ("launch", false)] {
        let prepared = prepare(case).unwrap();
        let inventory = control::load_with(&prepared.options).unwrap();
        let report = DoctorReport::new(&inventory);
        assert_eq!(report.isolation, host);
        let as_root = report
            .warnings
            .iter()
            .any(|d| d.message.contains("runs as root and no user is configured"));
        assert_eq!(as_root, host.running_as_root && !user_configured, "{case}");
    }
}

#[test]
fn every_case_directory_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|case| (*case).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "add the new case to `cases!`");
}

/// Whether `actual` has everything `expected` says: strings by substring, objects by
/// the expected keys, arrays element by element and of equal length, the rest exactly.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(expected), Value::String(actual)) => actual.contains(expected.as_str()),
        (Value::Object(expected), Value::Object(actual)) => {
            expected.iter().all(|(key, value)| match actual.get(key) {
                Some(found) => matches(value, found),
                None => value.is_null(),
            })
        }
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len()
                && expected.iter().zip(actual).all(|(e, a)| matches(e, a))
        }
        (expected, actual) => expected == actual,
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn run_case(case: &str) -> anyhow::Result<()> {
    let prepared = prepare(case)?;
    let expect = &prepared.expect;
    let inventory = control::load_with(&prepared.options)?;

    let rows = serde_json::to_value(ListRow::all(&inventory))?;
    let rows = rows.as_array().context("rows")?;
    let expected_rows = expect["plugins"]
        .as_array()
        .context("`plugins` is required")?;
    let ids: Vec<&str> = rows.iter().filter_map(|row| row["id"].as_str()).collect();
    ensure!(
        rows.len() == expected_rows.len(),
        "{} rows ({ids:?}), expected {}:\n{}",
        rows.len(),
        expected_rows.len(),
        pretty(&Value::Array(rows.clone()))
    );
    for (index, (expected, actual)) in expected_rows.iter().zip(rows).enumerate() {
        ensure!(
            matches(expected, actual),
            "row {index} does not match\nexpected: {}\nactual: {}",
            pretty(expected),
            pretty(actual)
        );
    }

    let diagnostics: Vec<Value> = inventory
        .all_diagnostics()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    for expected in expect["diagnostics"].as_array().into_iter().flatten() {
        ensure!(
            diagnostics.iter().any(|actual| matches(expected, actual)),
            "no diagnostic matches {}\namong:\n{}",
            pretty(expected),
            pretty(&Value::Array(diagnostics.clone()))
        );
    }
    if let Some(counts) = expect.get("counts") {
        for (severity, name) in [(Severity::Error, "error"), (Severity::Warning, "warning")] {
            let found = inventory
                .all_diagnostics()
                .filter(|diagnostic| diagnostic.severity == severity)
                .count();
            let wanted = counts[name].as_u64().context("counts")?;
            ensure!(
                found as u64 == wanted,
                "{found} {name}s, expected {wanted}:\n{}",
                pretty(&Value::Array(diagnostics.clone()))
            );
        }
    }

    for (id, checks) in expect["inspect"].as_object().into_iter().flatten() {
        let report = InspectReport::new(&inventory, id).with_context(|| format!("inspect {id}"))?;
        let report = serde_json::to_value(report)?;
        for (pointer, expected) in checks.as_object().context("inspect checks")? {
            let actual = report.pointer(pointer).unwrap_or(&Value::Null);
            ensure!(
                matches(expected, actual),
                "inspect {id} {pointer}: expected {expected}, found {actual}\n{}",
                pretty(&report)
            );
        }
    }

    if let Some(valid) = expect.get("valid") {
        let report = ValidateReport::new(&inventory);
        ensure!(
            Value::Bool(report.valid) == *valid,
            "validate: valid is {}",
            report.valid
        );
    }
    if let Some(ok) = expect.get("doctorOk") {
        let report = DoctorReport::new(&inventory);
        ensure!(Value::Bool(report.ok) == *ok, "doctor: ok is {}", report.ok);
    }
    Ok(())
}

/// Channel configs hold credentials: no report shows one, whether the manifest marks it
/// `sensitive` (with `*` for any account) or only its name says so, even when the
/// channel schema rejects it.
#[test]
fn channel_secrets_are_redacted_in_every_report() {
    let prepared = prepare("channels").unwrap();
    let inventory = control::load_with(&prepared.options).unwrap();
    let mut reports = vec![
        serde_json::to_string(&ListRow::all(&inventory)).unwrap(),
        serde_json::to_string(&DoctorReport::new(&inventory)).unwrap(),
        serde_json::to_string(&ValidateReport::new(&inventory)).unwrap(),
    ];
    for id in ["acmechat", "badchat", "offchat"] {
        reports.push(serde_json::to_string(&InspectReport::new(&inventory, id).unwrap()).unwrap());
    }
    reports.extend(inventory.all_diagnostics().map(ToString::to_string));
    for report in &reports {
        assert!(!report.contains("SECRET-"), "a secret shows: {report}");
    }
    assert!(reports.iter().any(|report| report.contains("[redacted]")));
}

// ---------------------------------------------------------------------------------
// The library surface the data plane uses.

#[test]
fn launchable_plugins_are_the_enabled_ones_with_a_launch() {
    let prepared = prepare("launch").unwrap();
    let inventory = control::load_with(&prepared.options).unwrap();
    let mut launchable: Vec<&str> = inventory
        .launchable()
        .map(|(record, launch)| {
            assert_eq!(record.status, Status::Enabled);
            assert!(launch.program.is_absolute(), "{}", launch.program.display());
            assert_eq!(launch.root, std::fs::canonicalize(&record.root).unwrap());
            record.id.as_str()
        })
        .collect();
    launchable.sort_unstable();
    assert_eq!(launchable, ["compiled", "interp", "path-cmd", "policy"]);
    let interp = inventory.get("interp").unwrap();
    assert!(interp.allow_prompt_injection);
    assert!(interp.config.is_empty());
    let manifest = interp.manifest.as_ref().unwrap();
    assert_eq!(manifest.id, "interp");
    assert!(!manifest.declares(ManifestField::Contracts("tools"), "anything"));
    assert!(inventory.has_errors());
    assert_eq!(prepared.root.join("outpost.json5"), inventory.config.path);
}

#[test]
fn shadowed_copies_are_reachable_but_get_returns_the_winner() {
    let prepared = prepare("discovery-precedence").unwrap();
    let inventory = control::load_with(&prepared.options).unwrap();
    let winner = inventory.get("acme").unwrap();
    assert!(winner.shadowed_by.is_none());
    assert_eq!(winner.origin, control::Origin::Config);
    assert_eq!(inventory.copies("acme").count(), 4);
    assert_eq!(
        inventory
            .launchable()
            .filter(|(record, _)| record.id == "acme")
            .count(),
        1
    );
}

// ---------------------------------------------------------------------------------
// Config files that cannot be used at all.

#[test]
fn config_syntax_errors_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outpost.json5");
    std::fs::write(
        &path,
        "{\n  plugins: {\n    enabled: true\n    allow: [],\n  },\n}\n",
    )
    .unwrap();
    let error = control::load(&path).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:4:5: ", path.display())),
        "{message}"
    );
    let missing = control::load(&dir.path().join("nope.json5")).unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    std::fs::write(&path, "[1, 2]").unwrap();
    let error = control::load(&path).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected an object at the top level, found an array"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------
// Manifests.

#[test]
fn a_manifest_with_every_field_the_real_loader_knows_parses() {
    let path = fixtures().join("control/manifests/every-field.plugin.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: Value = serde_json::from_str(&text).unwrap();
    let present: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in KNOWN_FIELDS {
        assert!(present.contains(field), "the fixture lacks `{field}`");
    }
    let manifest = Manifest::parse(&text).unwrap();
    assert!(
        manifest.ignored_fields.is_empty(),
        "{:?}",
        manifest.ignored_fields
    );
    assert_eq!(manifest.id, "every-field");
    assert_eq!(manifest.name.as_deref(), Some("Every Field"));
    assert_eq!(manifest.version.as_deref(), Some("1.2.3"));
    assert_eq!(
        manifest.kind,
        [
            control::PluginKind::Memory,
            control::PluginKind::ContextEngine
        ]
    );
    assert_eq!(manifest.channels, ["every-chat"]);
    assert_eq!(manifest.providers, ["every"]);
    assert_eq!(manifest.cli_backends, ["every-cli"]);
    assert_eq!(manifest.skills, ["skills/every"]);
    assert_eq!(manifest.categories, ["models", "voice"]);
    assert!(manifest.enabled_by_default);
    assert_eq!(manifest.requires_plugins, ["memory-core"]);
    assert_eq!(manifest.legacy_plugin_ids, ["every-old"]);
    assert_eq!(manifest.contracts.len(), control::CONTRACT_KEYS.len());
    for (field, id) in [
        (ManifestField::TopLevel("providers"), "every"),
        (ManifestField::TopLevel("channels"), "every-chat"),
        (ManifestField::TopLevel("cliBackends"), "every-cli"),
        (ManifestField::Contracts("tools"), "every_tool"),
        (ManifestField::Contracts("speechProviders"), "every"),
        (ManifestField::Contracts("webSearchProviders"), "every"),
    ] {
        assert!(manifest.declares(field, id), "{field} {id}");
    }
    assert_eq!(
        manifest.outpost,
        Some(json!({
            "command": "python3",
            "args": ["plugin.py"],
            "entry": "plugin.py",
            "env": {"passthrough": ["EVERY_API_KEY"], "set": {"EVERY_MODE": "test"}},
            "timeouts": {"handshakeMs": 20000},
            "restart": {"maxCrashes": 3},
            "limits": {"memoryMib": 512}
        }))
    );
}

/// `supervisor/tests/fetch-openclaw-manifests.sh DIR` fetches them; this test reads
/// `OUTPOST_OPENCLAW_MANIFESTS=DIR`.
#[test]
fn real_openclaw_manifests_parse() {
    // Straight to stderr, past the test harness's capture: a skip must show.
    let say = |line: String| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let Some(dir) = std::env::var_os("OUTPOST_OPENCLAW_MANIFESTS").filter(|d| !d.is_empty()) else {
        say("SKIPPED 1 test, real_openclaw_manifests_parse: OUTPOST_OPENCLAW_MANIFESTS is not set; \
             `sh supervisor/tests/fetch-openclaw-manifests.sh DIR` fetches OpenClaw's manifests \
             from the npm registry, then set OUTPOST_OPENCLAW_MANIFESTS=DIR (.ci/run does)"
            .to_owned());
        return;
    };
    let dir = PathBuf::from(dir);
    let mut roots = Vec::new();
    collect_manifest_roots(&dir, &mut roots);
    assert!(
        !roots.is_empty(),
        "no openclaw.plugin.json under {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for root in &roots {
        let text = std::fs::read_to_string(root.join("openclaw.plugin.json")).unwrap();
        match Manifest::parse(&text) {
            Ok(manifest) if !manifest.ignored_fields.is_empty() => failures.push(format!(
                "{}: fields Outpost does not know: {:?}",
                root.display(),
                manifest.ignored_fields
            )),
            Ok(_) => {}
            Err(error) => failures.push(format!("{}: {error}", root.display())),
        }
    }
    // Through the whole pipeline too: gates, packs, schemas compiled offline.
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("outpost.json5");
    let paths: Vec<String> = roots
        .iter()
        .map(|root| root.display().to_string())
        .collect();
    std::fs::write(
        &config,
        serde_json::to_string(&json!({
            "plugins": {"load": {"paths": paths}},
            "outpost": {"workspace": ".", "globalDir": "none", "bundledDir": "none"}
        }))
        .unwrap(),
    )
    .unwrap();
    let inventory = control::load(&config).unwrap();
    for record in &inventory.plugins {
        if matches!(record.status, Status::Error | Status::Blocked) {
            failures.push(format!(
                "{}: {} {}",
                record.root.display(),
                record.status,
                record.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    say(format!(
        "real_openclaw_manifests_parse: {} real manifests parsed from {}",
        roots.len(),
        dir.display()
    ));
}

fn collect_manifest_roots(dir: &Path, roots: &mut Vec<PathBuf>) {
    if dir.join("openclaw.plugin.json").is_file() {
        roots.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    children.sort();
    for child in children {
        collect_manifest_roots(&child, roots);
    }
}
