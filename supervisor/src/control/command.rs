//! The manifest's `outpost` block and how its command is found.
//!
//! ```json5
//! "outpost": {
//!   "command": "python3",         // a bare name: outpost.binPath, then PATH
//!                                 // or a path with `/`, inside the plugin root
//!   "args": ["plugin.py"],        // as they are; never a shell
//!   "entry": "plugin.py",         // the file the launch really runs (gated)
//!   "env": { "passthrough": ["ACME_API_KEY"], "set": { "ACME_MODE": "dev" } },
//!   "timeouts": {}, "health": {}, "restart": {}, "stop": {}, "limits": {}
//! }
//! ```
//!
//! The block is checked strictly: an unknown key or a value of the wrong type is an
//! error that names it (OpenClaw ignores the block, so nothing else would catch a typo).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::config::{
    EnvGrant, POLICY_KEYS, check_policy_layer, parse_env_grant, policy_keys, unknown_key_message,
};
use super::diagnostic::{index_path, join_path};
use super::gates::{self, Block, FileCheck, Gate};
use super::text::type_name;

/// The manifest's `outpost` block, checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OutpostBlock {
    /// A bare program name (searched) or a path inside the plugin root.
    pub command: String,
    /// Arguments, passed as they are.
    pub args: Vec<String>,
    /// The file the launch really runs, relative to the root.
    pub entry: Option<String>,
    /// Environment the manifest asks for.
    pub env: EnvGrant,
    /// The supervision policy keys, a layer between `outpost.defaults` and the operator's
    /// `outpost.plugins.<id>`.
    pub policy: Value,
    /// `filesystem`: the paths the plugin asks to reach beyond its root, as written.
    /// Requests only: the operator grants them (docs/isolation.md).
    pub filesystem: FsRequest,
}

/// The manifest's `outpost.filesystem`: paths as written (absolute, `~/`, or relative to
/// the plugin root).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FsRequest {
    /// Paths to read.
    pub read: Vec<String>,
    /// Paths to write.
    pub write: Vec<String>,
}

impl OutpostBlock {
    /// Whether `command` is a path inside the plugin root rather than a name to search.
    pub fn command_is_path(&self) -> bool {
        self.command.contains('/')
    }
}

/// Checks a manifest's `outpost` value. Problems are `(path, message)` with paths such
/// as `outpost.args[1]`.
pub(crate) fn parse_block(value: &Value) -> Result<OutpostBlock, Vec<(String, String)>> {
    const BASE: &str = "outpost";
    let mut problems = Vec::new();
    let Value::Object(object) = value else {
        return Err(vec![(
            BASE.to_owned(),
            format!("expected an object, found {}", type_name(value)),
        )]);
    };
    let mut known = vec!["command", "args", "entry", "env", "filesystem"];
    known.extend(POLICY_KEYS);
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            problems.push((join_path(BASE, key), unknown_key_message(key, BASE, &known)));
        }
    }
    let command = match object.get("command") {
        None => {
            problems.push((
                join_path(BASE, "command"),
                "`command` is required: a program name such as `python3`, or a path inside the plugin root such as `./bin/plugin`".to_owned(),
            ));
            String::new()
        }
        Some(Value::String(command)) => {
            if command.trim().is_empty() || command.contains('\0') {
                problems.push((
                    join_path(BASE, "command"),
                    "`command` cannot be blank or contain NUL".to_owned(),
                ));
            } else if !command.contains('/') && command.contains(char::is_whitespace) {
                problems.push((
                    join_path(BASE, "command"),
                    format!(
                        "`{command}` is one program name with spaces in it; no shell splits it: put the arguments in `args`"
                    ),
                ));
            }
            command.clone()
        }
        Some(other) => {
            problems.push((
                join_path(BASE, "command"),
                format!("expected a string, found {}", type_name(other)),
            ));
            String::new()
        }
    };
    let mut args = Vec::new();
    match object.get("args") {
        None => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(arg) if !arg.contains('\0') => args.push(arg.to_owned()),
                    _ => problems.push((
                        index_path(&join_path(BASE, "args"), index),
                        format!("expected a string without NUL, found {item}"),
                    )),
                }
            }
        }
        Some(other) => problems.push((
            join_path(BASE, "args"),
            format!("expected an array of strings, found {}", type_name(other)),
        )),
    }
    let entry = match object.get("entry") {
        None => None,
        Some(Value::String(entry)) if !entry.trim().is_empty() && !entry.contains('\0') => {
            Some(entry.clone())
        }
        Some(other) => {
            problems.push((
                join_path(BASE, "entry"),
                format!("expected a non-blank path inside the plugin root, found {other}"),
            ));
            None
        }
    };
    let env = match object.get("env") {
        None => EnvGrant::default(),
        Some(env) => {
            let (grant, env_problems) = parse_env_grant(env, &join_path(BASE, "env"));
            problems.extend(env_problems);
            grant
        }
    };
    let filesystem = parse_fs_request(object.get("filesystem"), &mut problems);
    let policy = policy_keys(object);
    problems.extend(check_policy_layer(&policy, BASE));
    if problems.is_empty() {
        Ok(OutpostBlock {
            command,
            args,
            entry,
            env,
            policy,
            filesystem,
        })
    } else {
        Err(problems)
    }
}

fn parse_fs_request(value: Option<&Value>, problems: &mut Vec<(String, String)>) -> FsRequest {
    const BASE: &str = "outpost.filesystem";
    let mut request = FsRequest::default();
    let Some(value) = value else {
        return request;
    };
    let Value::Object(object) = value else {
        problems.push((
            BASE.to_owned(),
            format!(
                "expected an object such as {{\"read\": [\"~/.cache/models\"]}}, found {}",
                type_name(value)
            ),
        ));
        return request;
    };
    for key in object.keys() {
        if !["read", "write"].contains(&key.as_str()) {
            problems.push((
                join_path(BASE, key),
                unknown_key_message(key, BASE, &["read", "write"]),
            ));
        }
    }
    for (key, into) in [("read", &mut request.read), ("write", &mut request.write)] {
        let path = join_path(BASE, key);
        match object.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(text) if !text.trim().is_empty() && !text.contains('\0') => {
                            into.push(text.to_owned());
                        }
                        _ => problems.push((
                            index_path(&path, index),
                            format!("expected a non-blank path, found {item}"),
                        )),
                    }
                }
            }
            Some(other) => problems.push((
                path,
                format!("expected an array of paths, found {}", type_name(other)),
            )),
        }
    }
    request
}

/// Where the program and the entry of a launch are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) program: PathBuf,
    pub(crate) entry: Option<PathBuf>,
}

/// Why a command cannot be launched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unlaunchable {
    /// A gate refused the command or the entry.
    Blocked(Block),
    /// Not found or not executable on this machine.
    Unavailable(String),
}

/// Paths and search directories the command is resolved against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Search<'a> {
    pub(crate) bin_path: &'a [PathBuf],
    pub(crate) path_env: Option<&'a OsStr>,
}

/// Finds the program and gates the files the launch runs. `root` is the real root.
pub(crate) fn resolve(
    block: &OutpostBlock,
    root: &Path,
    gate: Gate,
    search: Search<'_>,
) -> Result<Resolved, Unlaunchable> {
    let program = if block.command_is_path() {
        let program = in_root(gate, "command", root, &block.command)?;
        let mode = std::fs::metadata(&program).map_or(0, |metadata| metadata.permissions().mode());
        if mode & 0o111 == 0 {
            return Err(Unlaunchable::Unavailable(format!(
                "the command {} is not executable; run `chmod +x` on it",
                program.display()
            )));
        }
        program
    } else {
        find_program(&block.command, search)?
    };
    let entry = match &block.entry {
        Some(entry) => Some(in_root(gate, "entry", root, entry)?),
        None if block.command_is_path() => Some(program.clone()),
        None => None,
    };
    Ok(Resolved { program, entry })
}

fn in_root(
    gate: Gate,
    what: &'static str,
    root: &Path,
    relative: &str,
) -> Result<PathBuf, Unlaunchable> {
    match gate.file(what, root, Path::new(relative)) {
        FileCheck::Ok(real) => Ok(real),
        FileCheck::Missing(path) => Err(Unlaunchable::Unavailable(format!(
            "the {what} {} does not exist (is the plugin built?)",
            path.display()
        ))),
        FileCheck::NotAFile(path) => Err(Unlaunchable::Unavailable(format!(
            "the {what} {} is not a regular file",
            path.display()
        ))),
        FileCheck::Blocked(block) => Err(Unlaunchable::Blocked(block)),
    }
}

/// Searches `outpost.binPath`, then `PATH`, for an executable regular file. Relative
/// `PATH` entries are skipped: what runs must not depend on the current directory.
fn find_program(name: &str, search: Search<'_>) -> Result<PathBuf, Unlaunchable> {
    let path_dirs: Vec<PathBuf> = search
        .path_env
        .map(|path| std::env::split_paths(path).collect())
        .unwrap_or_default();
    for dir in search.bin_path.iter().chain(&path_dirs) {
        if !dir.is_absolute() {
            continue;
        }
        let candidate = dir.join(name);
        let Ok(metadata) = std::fs::metadata(&candidate) else {
            continue;
        };
        if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
            gates::searched_program(&candidate).map_err(Unlaunchable::Blocked)?;
            return Ok(candidate);
        }
    }
    let bin_path = if search.bin_path.is_empty() {
        "outpost.binPath is empty".to_owned()
    } else {
        let dirs: Vec<String> = search
            .bin_path
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        format!("outpost.binPath is {}", dirs.join(":"))
    };
    Err(Unlaunchable::Unavailable(format!(
        "the command `{name}` was found neither on outpost.binPath nor on PATH ({bin_path}); install it, build it, or add its directory to outpost.binPath"
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::control::discovery::Origin;

    fn problems(value: &Value) -> Vec<String> {
        parse_block(value)
            .unwrap_err()
            .into_iter()
            .map(|(path, message)| format!("{path}: {message}"))
            .collect()
    }

    #[test]
    fn a_full_block_parses() {
        let block = parse_block(&json!({
            "command": "python3",
            "args": ["plugin.py", "--fast"],
            "entry": "plugin.py",
            "env": {"passthrough": ["ACME_API_KEY"], "set": {"ACME_MODE": "dev"}},
            "timeouts": {"handshakeMs": 20000},
            "limits": {"memoryMib": 512}
        }))
        .unwrap();
        assert_eq!(block.command, "python3");
        assert_eq!(block.args, ["plugin.py", "--fast"]);
        assert!(!block.command_is_path());
        assert_eq!(
            block.policy,
            json!({"timeouts": {"handshakeMs": 20000}, "limits": {"memoryMib": 512}})
        );
    }

    #[test]
    fn every_problem_names_its_key() {
        let found = problems(&json!({
            "comand": "x",
            "args": "plugin.py",
            "entry": 3,
            "env": {"passthru": []},
            "restart": {"maxCrash": 1}
        }));
        let expected = [
            "outpost.comand: unknown key `comand` in `outpost`; did you mean `command`?",
            "outpost.command: `command` is required",
            "outpost.args: expected an array of strings, found a string",
            "outpost.entry: expected a non-blank path",
            "outpost.env.passthru: unknown key `passthru`",
            "outpost.restart.maxCrash: unknown key `maxCrash` in `outpost.restart`; did you mean `maxCrashes`?",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (found, expected) in found.iter().zip(expected) {
            assert!(
                found.starts_with(expected),
                "{found} does not start with {expected}"
            );
        }
        assert!(
            problems(&json!({"command": "python3 plugin.py"}))[0]
                .contains("put the arguments in `args`")
        );
        assert!(problems(&json!([]))[0].contains("expected an object"));
    }

    #[test]
    fn bare_commands_are_searched_on_bin_path_before_path() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, path_dir) = (dir.path().join("bin"), dir.path().join("path"));
        for sub in [&bin, &path_dir] {
            std::fs::create_dir(sub).unwrap();
            std::fs::write(sub.join("tool"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(sub.join("tool"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::write(path_dir.join("plain"), "").unwrap();
        let path_env = std::env::join_paths(["relative", path_dir.to_str().unwrap()]).unwrap();
        let bin_path = [bin.clone()];
        let search = Search {
            bin_path: &bin_path,
            path_env: Some(&path_env),
        };
        assert_eq!(find_program("tool", search).unwrap(), bin.join("tool"));
        let search = Search {
            bin_path: &[],
            path_env: Some(&path_env),
        };
        assert_eq!(find_program("tool", search).unwrap(), path_dir.join("tool"));
        let error = find_program("plain", search).unwrap_err();
        assert!(
            matches!(error, Unlaunchable::Unavailable(_)),
            "not executable: {error:?}"
        );
        std::fs::set_permissions(
            path_dir.join("tool"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let error = find_program("tool", search).unwrap_err();
        assert!(
            matches!(error, Unlaunchable::Blocked(Block::WorldWritable { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn path_commands_must_be_executable_and_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::write(root.join("bin/data"), "").unwrap();
        std::fs::set_permissions(root.join("bin/run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let gate = Gate {
            origin: Origin::Config,
            uid: nix::unistd::getuid().as_raw(),
        };
        let search = Search {
            bin_path: &[],
            path_env: None,
        };
        let block = |command: &str| parse_block(&json!({ "command": command })).unwrap();
        let resolved = resolve(&block("./bin/run"), &root, gate, search).unwrap();
        assert_eq!(resolved.program, root.join("bin/run"));
        assert_eq!(
            resolved.entry.as_deref(),
            Some(root.join("bin/run").as_path())
        );
        for (command, expected) in [
            ("./bin/data", "not executable"),
            ("./bin/missing", "does not exist"),
        ] {
            match resolve(&block(command), &root, gate, search) {
                Err(Unlaunchable::Unavailable(message)) => {
                    assert!(message.contains(expected), "{command}: {message}");
                }
                other => panic!("{command}: {other:?}"),
            }
        }
        let escape = resolve(&block("../../bin/sh"), &root, gate, search);
        assert!(
            matches!(
                escape,
                Err(Unlaunchable::Blocked(Block::EscapesRoot { .. }))
            ),
            "{escape:?}"
        );
    }
}
