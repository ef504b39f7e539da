//! `outpost plugins doctor`: whether the interpreters the enabled plugins are started
//! with (`python3`, `node`, as `outpost.command` names them) are new enough for what
//! Outpost's templates and examples are written in: Python 3.11, Node.js 20.
//!
//! A command that cannot be found at all is already an error of the inventory
//! (`command-unavailable`); this asks the one that was found for its version
//! (`--version`, no plugin code runs) and warns when it is older, or does not answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_supervisor::control::{Code, Diagnostic, Inventory, Severity, Status};

/// How long an interpreter may take to print its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// An interpreter Outpost knows the minimum version of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interpreter {
    Python,
    Node,
}

impl Interpreter {
    /// The interpreter a program is, by its file name (`python3`, `python3.12`, `node`).
    fn of(program: &Path) -> Option<Self> {
        let name = program.file_name()?.to_str()?;
        if name == "python" || name.starts_with("python3") {
            Some(Self::Python)
        } else if name == "node" || name == "nodejs" {
            Some(Self::Node)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Python => "Python",
            Self::Node => "Node.js",
        }
    }

    /// The oldest version the templates and the examples run on.
    fn minimum(self) -> (u64, u64) {
        match self {
            Self::Python => (3, 11),
            Self::Node => (20, 0),
        }
    }

    /// `Python 3.12.1` or `v20.11.0` -> (major, minor).
    fn parse(self, output: &str) -> Option<(u64, u64)> {
        let text = output.trim();
        let number = match self {
            Self::Python => text.strip_prefix("Python ")?,
            Self::Node => text.strip_prefix('v')?,
        };
        let mut parts = number.split(['.', ' ', '+', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
}

/// A warning for each enabled plugin whose interpreter is older than Outpost's
/// templates need or does not say its version.
pub(crate) fn check(inventory: &Inventory) -> Vec<Diagnostic> {
    let mut answers: BTreeMap<PathBuf, Result<String, String>> = BTreeMap::new();
    let mut found = Vec::new();
    for record in &inventory.plugins {
        if record.status != Status::Enabled || record.shadowed_by.is_some() {
            continue;
        }
        let Some(launch) = &record.launch else {
            continue;
        };
        // A program inside the plugin's root is the plugin's code, whatever its name:
        // the control plane never runs that. Only interpreters found on binPath or PATH
        // are asked.
        if launch.program.starts_with(&launch.root) || launch.program.starts_with(&record.root) {
            continue;
        }
        let Some(interpreter) = Interpreter::of(&launch.program) else {
            continue;
        };
        let answer = answers
            .entry(launch.program.clone())
            .or_insert_with(|| version(&launch.program));
        let program = launch.program.display();
        let (major, minor) = interpreter.minimum();
        let problem = match answer {
            Err(why) => format!(
                "`{program} --version` did not say which {} it is ({why}); the plugin may not start: check the interpreter, or point `outpost.command` at another",
                interpreter.name()
            ),
            Ok(text) => match interpreter.parse(text) {
                Some(found) if found >= (major, minor) => continue,
                Some((found_major, found_minor)) => format!(
                    "{program} is {} {found_major}.{found_minor}, older than {major}.{minor}, which the plugins `outpost new plugin` writes and the bundled examples need; install a newer {} or put one first on outpost.binPath (a plugin written for older versions can ignore this)",
                    interpreter.name(),
                    interpreter.name()
                ),
                None => format!(
                    "`{program} --version` answered {:?}, not a {} version; check that it is the interpreter the plugin needs",
                    text.trim(),
                    interpreter.name()
                ),
            },
        };
        found.push(Diagnostic {
            severity: Severity::Warning,
            code: Code::CommandUnavailable,
            plugin: Some(record.id.clone()),
            file: Some(record.manifest_path.clone()),
            path: Some("outpost.command".to_owned()),
            key: Some("command".to_owned()),
            message: problem,
        });
    }
    found
}

/// What `program --version` prints (stdout, else stderr: Python 2 used stderr).
fn version(program: &Path) -> Result<String, String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| error.to_string())?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", VERSION_TIMEOUT.as_secs()));
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    if !output.status.success() {
        return Err(format!("it exited with {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim().is_empty() {
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    } else {
        Ok(stdout.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names_are_read() {
        let cases = [
            (
                "/usr/bin/python3",
                Some(Interpreter::Python),
                "Python 3.12.1\n",
                Some((3, 12)),
            ),
            (
                "python3.9",
                Some(Interpreter::Python),
                "Python 3.9.18",
                Some((3, 9)),
            ),
            (
                "node",
                Some(Interpreter::Node),
                "v20.11.0\n",
                Some((20, 11)),
            ),
            (
                "/opt/nodejs",
                Some(Interpreter::Node),
                "v18.19.1",
                Some((18, 19)),
            ),
            ("bash", None, "", None),
            ("python3", Some(Interpreter::Python), "garbage", None),
        ];
        for (program, interpreter, output, version) in cases {
            assert_eq!(
                Interpreter::of(Path::new(program)),
                interpreter,
                "{program}"
            );
            if let Some(interpreter) = interpreter {
                assert_eq!(interpreter.parse(output), version, "{output}");
            }
        }
    }
}
