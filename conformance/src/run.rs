//! A run from start to report: the plan, the suite's sessions, the report.

use std::sync::Arc;
use std::time::Instant;

use crate::plan::{IdSource, Options, Plan, RunError, Target, selection};
use crate::report::{CheckResult, PluginSummary, Report};
use crate::suite::Runner;
use crate::traffic::Shared;
use crate::verdict::Results;

/// Runs the suite against `target`. `progress` is called as each check finishes.
pub async fn run(
    target: &Target,
    options: &Options,
    progress: &mut dyn FnMut(&CheckResult),
) -> Result<Report, RunError> {
    let started = Instant::now();
    let selected = selection(&options.only)?;
    let plan = Plan::new(target, options)?;
    let transcript = match &options.transcript {
        Some(path) => Some(
            std::fs::File::create(path).map_err(|source| RunError::Transcript {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared::new(transcript));
    let results = Results::new(selected, progress);
    let mut runner = Runner::new(&plan, options, shared.clone(), results);
    runner.run().await?;
    let (results, learned) = runner.finish();
    shared.flush_transcript();
    let plugin = PluginSummary {
        id: learned.plugin_id,
        id_source: Some(
            match learned.id_source {
                IdSource::Manifest => "manifest",
                IdSource::Option => "option",
                IdSource::Plugin => "plugin",
            }
            .to_owned(),
        ),
        dir: plan.dir.as_deref().map(|d| d.display().to_string()),
        command: plan.launch.command_line(),
        name: learned.name,
        version: learned.version,
        fixture: learned.fixture,
    };
    Ok(Report {
        plugin,
        results,
        duration: started.elapsed(),
        stderr_tail: shared.stderr_tail(),
        strict: false,
    })
}
