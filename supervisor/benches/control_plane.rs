//! The control plane over 1,000 generated plugins: discovery, gates, manifests, the
//! launch plan, enablement, and each plugin's config validated against its own schema.
//! The target is under 200 ms on a 2-core machine (docs/performance.md).
//!
//! `cargo bench -p outpost-supervisor --bench control_plane` (criterion), or
//! `cargo bench -p outpost-supervisor --bench control_plane -- --json`: 20 loads timed
//! directly, the median, min and max as one JSON document (see `support/report.rs`),
//! so that a script can compare runs.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use outpost_supervisor::control::{self, LoadOptions, Status};
use serde_json::json;

const PLUGINS: usize = 1_000;
/// Loads timed for `--json`.
const JSON_RUNS: usize = 20;

#[path = "support/report.rs"]
mod report;

/// Writes `PLUGINS` plugin roots under `dir/global`, each with a distinct config schema
/// (so nothing can be cached across plugins), an `outpost` block run by a `python3` on
/// `dir/bin`, and a config entry that exercises defaults, enums, patterns and nesting.
fn generate(dir: &Path) -> LoadOptions {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("python3"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(bin.join("python3"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut entries = String::new();
    for index in 0..PLUGINS {
        let id = format!("plugin-{index:04}");
        let root = dir.join("global").join(&id);
        std::fs::create_dir_all(&root).unwrap();
        let manifest = json!({
            "id": id,
            "name": format!("Plugin {index}"),
            "version": "1.0.0",
            "providers": [format!("provider-{index}")],
            "contracts": {"tools": [format!("tool_{index}_a"), format!("tool_{index}_b")]},
            "configSchema": {
                "type": "object",
                "additionalProperties": false,
                "required": [format!("key{index}")],
                "properties": {
                    format!("key{index}"): {"type": "string", "pattern": "^[a-z0-9-]+$"},
                    "region": {"type": "string", "enum": ["eu", "us", "ap"], "default": "eu"},
                    "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
                    "endpoint": {"type": "object", "properties": {
                        "url": {"type": "string"},
                        "timeoutMs": {"type": "integer", "default": index}
                    }},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8}
                }
            },
            "uiHints": {"region": {"label": "Region"}},
            "outpost": {
                "command": "python3",
                "args": ["plugin.py"],
                "entry": "plugin.py",
                "timeouts": {"handshakeMs": 20_000}
            }
        });
        std::fs::write(root.join("openclaw.plugin.json"), manifest.to_string()).unwrap();
        std::fs::write(root.join("plugin.py"), "print('never run')\n").unwrap();
        writeln!(
            entries,
            "    \"{id}\": {{ config: {{ key{index}: \"value-{index}\", region: \"us\", endpoint: {{ url: \"https://example.com/{index}\" }}, tags: [\"a\", \"b\"] }} }},"
        )
        .unwrap();
    }
    let config = format!(
        "{{\n  plugins: {{ entries: {{\n{entries}  }} }},\n  outpost: {{ workspace: \".\", globalDir: \"global\", bundledDir: \"bundled\" }},\n}}\n"
    );
    std::fs::write(dir.join("outpost.json5"), config).unwrap();
    let mut options = LoadOptions::new(dir.join("outpost.json5"));
    options.path = Some(bin.into_os_string());
    options.home = None;
    options.bundled_dir = None;
    options
}

/// Checks that every generated plugin loads enabled, valid and runnable.
fn check(options: &LoadOptions) {
    let inventory = control::load_with(options).unwrap();
    assert_eq!(inventory.plugins.len(), PLUGINS);
    assert!(
        inventory
            .plugins
            .iter()
            .all(|record| record.status == Status::Enabled && record.launch.is_some()),
        "every generated plugin is enabled, valid and runnable"
    );
    assert!(!inventory.has_errors());
}

fn control_plane(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let options = generate(dir.path());
    check(&options);
    let mut group = c.benchmark_group("control plane");
    group.sample_size(20);
    group.bench_function("load 1000 plugins (discover, gate, validate)", |b| {
        b.iter(|| control::load_with(&options).unwrap());
    });
    group.finish();
}

criterion_group!(benches, control_plane);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|arg| arg == "--json") {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    }
    // `cargo test --benches` runs benches with no `--bench`: build, do not measure.
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let options = generate(dir.path());
    check(&options);
    let mut times: Vec<Duration> = (0..JSON_RUNS)
        .map(|_| {
            let begin = Instant::now();
            control::load_with(&options).unwrap();
            begin.elapsed()
        })
        .collect();
    times.sort();
    let mut report = report::Report::new("control_plane", &args);
    let median = times[JSON_RUNS / 2];
    report.add(
        "load",
        "load 1000 plugins (discover, gate, validate)",
        &format!(
            "load {PLUGINS} plugins (discover, gate, validate): median {:.2} ms ({JSON_RUNS} runs)",
            median.as_secs_f64() * 1e3
        ),
        serde_json::json!({
            "plugins": PLUGINS,
            "runs": JSON_RUNS,
            "medianMs": report::millis(median),
            "minMs": report::millis(times[0]),
            "maxMs": report::millis(times[JSON_RUNS - 1]),
            "targetMs": 200,
        }),
    );
    report.finish();
}
