//! Setting up a run: the target, the options, the plan (what to start, with which id
//! and config), and the record of results as checks finish.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::checks::{CHECKS, CheckId, FAMILIES, closest_id};
use crate::launch::{Launch, ResolveError, plugin_env, resolve_program};
use crate::manifest::{ConfigError, Manifest, ManifestError, build_config};
use crate::report::{CheckResult, PluginSummary, Report, Status, status_for};
use crate::suite::Runner;
use crate::traffic::Shared;

/// What to test.
#[derive(Clone, Debug)]
pub enum Target {
    /// A plugin root with an `openclaw.plugin.json` that has an `outpost` launch block.
    PluginDir(PathBuf),
    /// A program and its arguments, started in the current directory.
    Command(Vec<String>),
}

/// How to run the suite; [`Options::default`] documents the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The plugin id: required to check `plugin.id` for [`Target::Command`]; for a
    /// plugin directory the manifest's id is used and this must match it if given.
    pub plugin_id: Option<String>,
    /// The plugin config (a JSON object); the manifest's schema defaults are filled in.
    pub config: Option<Value>,
    /// Directories searched before `PATH` for a bare command name.
    pub bin_path: Vec<PathBuf>,
    /// How long any one step may take. Default 5 s.
    pub step_timeout: Duration,
    /// How long `initialize` may take. Default 10 s (the host's default).
    pub handshake_timeout: Duration,
    /// Check ids or family names to run; empty runs every check.
    pub only: Vec<String>,
    /// Write every line exchanged, with timestamps, to this file.
    pub transcript: Option<PathBuf>,
    /// The `limits.maxMessageBytes` announced to the plugin. Default 1 MiB: smaller than
    /// the host's 16 MiB so the near-limit checks stay fast.
    pub max_message_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plugin_id: None,
            config: None,
            bin_path: Vec::new(),
            step_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            only: Vec::new(),
            transcript: None,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// Why the suite could not start testing (as opposed to a plugin failing checks).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plugin directory's manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The plugin's config could not be built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plugin's program could not be found.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// `run --` without a command.
    #[error("no command given: use `run -- <command> [args...]` or `run --plugin-dir DIR`")]
    NoCommand,
    /// `--plugin-id` contradicts the manifest.
    #[error(
        "--plugin-id `{given}` differs from the manifest's id `{manifest}`; drop --plugin-id when using --plugin-dir"
    )]
    IdMismatch {
        /// The option.
        given: String,
        /// The manifest's id.
        manifest: String,
    },
    /// The plugin could not be started at all.
    #[error("cannot start the plugin `{command}`")]
    Spawn {
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--only` names no check or family.
    #[error(
        "--only: unknown check or family `{id}`{hint}; `outpost-conformance list` prints every id"
    )]
    UnknownCheck {
        /// As given.
        id: String,
        /// ` (did you mean ...?)` or empty.
        hint: String,
    },
    /// The transcript file could not be created.
    #[error("cannot create the transcript file {path}")]
    Transcript {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where the plugin id came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdSource {
    Manifest,
    Option,
    /// Not known before the handshake: taken from the plugin's answer.
    Plugin,
}

/// The id sent in `initialize` when the plugin's id is not known yet.
pub(crate) const PLACEHOLDER_ID: &str = "conformance-plugin";

/// Everything resolved before the first spawn.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) launch: Launch,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) plugin_id: String,
    pub(crate) id_source: IdSource,
    pub(crate) config: Map<String, Value>,
    pub(crate) dir: Option<PathBuf>,
}

impl Plan {
    pub(crate) fn new(target: &Target, options: &Options) -> Result<Self, RunError> {
        let bin_path: Vec<PathBuf> = options
            .bin_path
            .iter()
            .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
            .collect();
        match target {
            Target::PluginDir(dir) => {
                let root = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                let manifest = Manifest::read(&root)?;
                if let Some(given) = &options.plugin_id
                    && *given != manifest.id
                {
                    return Err(RunError::IdMismatch {
                        given: given.clone(),
                        manifest: manifest.id.clone(),
                    });
                }
                let config = build_config(&manifest.config_schema, options.config.as_ref())?;
                let program = resolve_program(&manifest.command, &root, &bin_path)?;
                let launch = Launch {
                    program,
                    args: manifest.args.clone(),
                    cwd: root.clone(),
                    env: plugin_env(&manifest.env_passthrough, &manifest.env_set),
                };
                Ok(Self {
                    launch,
                    plugin_id: manifest.id.clone(),
                    id_source: IdSource::Manifest,
                    manifest: Some(manifest),
                    config,
                    dir: Some(root),
                })
            }
            Target::Command(words) => {
                let (command, args) = words.split_first().ok_or(RunError::NoCommand)?;
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                let program = resolve_program(command, &cwd, &bin_path)?;
                let config = match &options.config {
                    None => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(other) => {
                        return Err(ConfigError::NotAnObject(format!("got {other}")).into());
                    }
                };
                let (plugin_id, id_source) = match &options.plugin_id {
                    Some(id) => (id.clone(), IdSource::Option),
                    None => (PLACEHOLDER_ID.to_owned(), IdSource::Plugin),
                };
                Ok(Self {
                    launch: Launch {
                        program,
                        args: args.to_vec(),
                        cwd,
                        env: plugin_env(&[], &BTreeMap::new()),
                    },
                    manifest: None,
                    plugin_id,
                    id_source,
                    config,
                    dir: None,
                })
            }
        }
    }
}

/// Turns `--only` words into the set of checks to run; `None` runs everything.
pub(crate) fn selection(only: &[String]) -> Result<Option<BTreeSet<CheckId>>, RunError> {
    if only.is_empty() {
        return Ok(None);
    }
    let mut selected = BTreeSet::new();
    for word in only {
        let word = word.trim();
        if FAMILIES.contains(&word) {
            selected.extend(CHECKS.iter().filter(|c| c.family() == word).map(|c| c.key));
        } else if let Some(check) = CHECKS.iter().find(|c| c.id == word) {
            selected.insert(check.key);
        } else {
            return Err(RunError::UnknownCheck {
                id: word.to_owned(),
                hint: closest_id(word)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default(),
            });
        }
    }
    Ok(Some(selected))
}

/// The results so far, and the progress callback told of each as it is recorded.
pub(crate) struct Results<'p> {
    selected: Option<BTreeSet<CheckId>>,
    recorded: BTreeMap<CheckId, CheckResult>,
    progress: &'p mut dyn FnMut(&CheckResult),
}

impl std::fmt::Debug for Results<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results")
            .field("recorded", &self.recorded.len())
            .finish_non_exhaustive()
    }
}

impl<'p> Results<'p> {
    pub(crate) fn new(
        selected: Option<BTreeSet<CheckId>>,
        progress: &'p mut dyn FnMut(&CheckResult),
    ) -> Self {
        Self {
            selected,
            recorded: BTreeMap::new(),
            progress,
        }
    }

    /// Whether `id` was asked for and has no result yet.
    pub(crate) fn wants(&self, id: CheckId) -> bool {
        self.selected.as_ref().is_none_or(|s| s.contains(&id)) && !self.recorded.contains_key(&id)
    }

    /// Whether any of `ids` is still wanted.
    pub(crate) fn wants_any(&self, ids: &[CheckId]) -> bool {
        ids.iter().any(|id| self.wants(*id))
    }

    /// Records a verdict; the first verdict for a check wins.
    pub(crate) fn verdict(
        &mut self,
        id: CheckId,
        passed: bool,
        details: impl Into<String>,
        started: Option<Instant>,
    ) {
        let check = id.check();
        self.put(
            id,
            status_for(check.level, passed),
            details.into(),
            started.map(|s| s.elapsed()).unwrap_or_default(),
        );
    }

    pub(crate) fn pass(&mut self, id: CheckId, details: impl Into<String>, started: Instant) {
        self.verdict(id, true, details, Some(started));
    }

    pub(crate) fn fail(&mut self, id: CheckId, details: impl Into<String>, started: Instant) {
        self.verdict(id, false, details, Some(started));
    }

    pub(crate) fn skip(&mut self, id: CheckId, reason: impl Into<String>) {
        self.put(id, Status::Skip, reason.into(), Duration::ZERO);
    }

    /// Skips every one of `ids` still wanted.
    pub(crate) fn skip_all(&mut self, ids: &[CheckId], reason: &str) {
        for id in ids {
            self.skip(*id, reason);
        }
    }

    fn put(&mut self, id: CheckId, status: Status, details: String, duration: Duration) {
        if !self.wants(id) {
            return;
        }
        let result = CheckResult {
            check: id.check(),
            status,
            details,
            duration,
            baseline: None,
        };
        (self.progress)(&result);
        self.recorded.insert(id, result);
    }

    /// Every selected check, in catalogue order; any left without a verdict is skipped.
    pub(crate) fn finish(mut self, reason: &str) -> Vec<CheckResult> {
        let all: Vec<CheckId> = CHECKS.iter().map(|c| c.key).collect();
        self.skip_all(&all, reason);
        self.recorded.into_values().collect()
    }
}

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
    let mut summary = PluginSummary {
        dir: plan.dir.as_deref().map(|d| d.display().to_string()),
        command: plan.launch.command_line(),
        ..PluginSummary::default()
    };
    let results = Results::new(selected, progress);
    let mut runner = Runner::new(&plan, options, shared.clone(), results);
    runner.run().await?;
    let (results, learned) = runner.finish();
    shared.flush_transcript();
    summary.id = learned.plugin_id;
    summary.id_source = Some(
        match learned.id_source {
            IdSource::Manifest => "manifest",
            IdSource::Option => "option",
            IdSource::Plugin => "plugin",
        }
        .to_owned(),
    );
    summary.name = learned.name;
    summary.version = learned.version;
    summary.fixture = learned.fixture;
    Ok(Report {
        plugin: summary,
        results,
        duration: started.elapsed(),
        stderr_tail: shared.stderr_tail(),
    })
}

/// What the runner learned about the plugin, for the report.
#[derive(Clone, Debug)]
pub(crate) struct Learned {
    pub(crate) plugin_id: Option<String>,
    pub(crate) id_source: IdSource,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) fixture: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_ids_and_families() {
        assert_eq!(selection(&[]).unwrap(), None);
        let selected = selection(&["shutdown".into(), "calls.ping".into()])
            .unwrap()
            .unwrap();
        assert!(selected.contains(&CheckId::ShutdownSigterm));
        assert!(selected.contains(&CheckId::CallsPing));
        assert!(!selected.contains(&CheckId::CallsTools));
        let error = selection(&["calls.pnig".into()]).unwrap_err().to_string();
        assert!(error.contains("did you mean `calls.ping`"), "{error}");
    }

    #[test]
    fn results_keep_the_first_verdict_and_respect_the_selection() {
        let mut seen = Vec::new();
        let mut progress = |r: &CheckResult| seen.push((r.check.id, r.status));
        let mut results = Results::new(
            Some([CheckId::CallsPing, CheckId::ShutdownSigterm].into()),
            &mut progress,
        );
        let now = Instant::now();
        results.pass(CheckId::CallsPing, "ok", now);
        results.fail(CheckId::CallsPing, "late", now);
        results.fail(CheckId::CallsTools, "not selected", now);
        results.fail(CheckId::ShutdownSigterm, "slow", now);
        let done = results.finish("not reached");
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].details, "ok");
        assert_eq!(done[1].status, Status::Warn, "a failed SHOULD is a warning");
        drop(done);
        assert_eq!(
            seen,
            [
                ("calls.ping", Status::Pass),
                ("shutdown.sigterm", Status::Warn)
            ]
        );
    }
}
