//! What a benchmark reports: a line for people, and with `--json` one JSON document on
//! stdout instead, so that a script can compare runs figure by figure.
//!
//! The document is `{"bench": NAME, "cores": N, "args": [...], "figures": [...]}`; each
//! figure is an object with `part` (e.g. `latency`), `what` (the path or the plugin
//! set measured) and its numbers, named with their unit (`p50Us`, `callsPerSec`,
//! `medianMs`, `kib`...). A figure measured beside a baseline of the same run carries the
//! baseline's name and the ratio to it.

use serde_json::{Map, Value, json};

/// Collects the figures of one run.
pub(crate) struct Report {
    bench: &'static str,
    json: bool,
    args: Vec<String>,
    figures: Vec<Value>,
}

impl Report {
    /// `--json` in `args` selects the JSON document.
    pub(crate) fn new(bench: &'static str, args: &[String]) -> Self {
        Self {
            bench,
            json: args.iter().any(|arg| arg == "--json"),
            args: args.to_vec(),
            figures: Vec::new(),
        }
    }

    /// Prints a progress note for people (to stderr with `--json`, so stdout stays one
    /// document).
    #[allow(dead_code, reason = "not every bench has progress to report")]
    pub(crate) fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Records one figure: `text` for people, `(part, what, numbers)` for scripts.
    pub(crate) fn add(&mut self, part: &str, what: &str, text: &str, numbers: Value) {
        if !self.json {
            println!("{part:<11} {text}");
        }
        let mut figure = Map::new();
        figure.insert("part".into(), json!(part));
        figure.insert("what".into(), json!(what));
        if let Value::Object(numbers) = numbers {
            figure.extend(numbers);
        }
        self.figures.push(Value::Object(figure));
    }

    /// Prints the JSON document, with `--json`.
    pub(crate) fn finish(self) {
        if self.json {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let document = json!({
                "bench": self.bench,
                "cores": cores,
                "args": self.args,
                "figures": self.figures,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&document).expect("figures serialize")
            );
        }
    }
}

/// Microseconds with one decimal, for JSON figures.
#[allow(dead_code, reason = "not every bench reports microseconds")]
pub(crate) fn micros(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// Milliseconds with two decimals, for JSON figures.
#[allow(dead_code, reason = "not every bench reports milliseconds")]
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// A ratio with three decimals.
#[allow(dead_code, reason = "not every bench reports ratios")]
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    (a / b * 1000.0).round() / 1000.0
}
