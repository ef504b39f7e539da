//! Safety gates: checks on a plugin's files before anything of it runs.
//!
//! A candidate is blocked when its root, its manifest, its `package.json`, a pack entry,
//! or its launch entry or command
//!
//! - resolves outside the plugin root (after symlinks and `..`);
//! - is world-writable (any origin: Outpost never repairs permissions);
//! - is owned by neither the current user nor root (not for bundled plugins);
//! - is a file with a hard link outside the plugin root (not for bundled plugins): such
//!   a link can put into the root a file someone else can change. Links that all stay
//!   inside the root are fine: cargo's `target/release/<bin>` is a hard link to its
//!   twin in `target/release/deps/`, both inside the plugin's own tree.
//!
//! # Caveats
//!
//! - The checks look at the files as they are when the control plane runs; a file
//!   swapped afterwards is not seen. A path command is launched by the real path that
//!   was checked; a bare command found on `outpost.binPath` or `PATH` is launched by
//!   the path where it was found, symlinks unresolved (an interpreter's shim stays a
//!   shim), and only its world-writable bit is checked (docs/operators.md §4.2).
//! - Only the plugin root's own directory is checked, not its parents, as in OpenClaw.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::diagnostic::{Code, Diagnostic};
use super::discovery::Origin;

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    EscapesRoot {
        what: &'static str,
        path: PathBuf,
        real: Option<PathBuf>,
        root: PathBuf,
    },
    WorldWritable {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    SuspiciousOwner {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    Hardlinked {
        what: &'static str,
        path: PathBuf,
        links: u64,
        /// How many of the links are not inside the plugin root.
        outside: u64,
    },
    Uninspectable {
        what: &'static str,
        path: PathBuf,
        error: String,
    },
}

impl Block {
    pub(crate) fn code(&self) -> Code {
        match self {
            Self::EscapesRoot { .. } => Code::EscapesRoot,
            Self::WorldWritable { .. } => Code::WorldWritable,
            Self::SuspiciousOwner { .. } => Code::SuspiciousOwner,
            Self::Hardlinked { .. } => Code::Hardlinked,
            Self::Uninspectable { .. } => Code::Uninspectable,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::EscapesRoot { path, .. }
            | Self::WorldWritable { path, .. }
            | Self::SuspiciousOwner { path, .. }
            | Self::Hardlinked { path, .. }
            | Self::Uninspectable { path, .. } => path,
        }
    }

    pub(crate) fn diagnostic(&self, plugin: &str) -> Diagnostic {
        Diagnostic::error(self.code(), format!("blocked: {self}"))
            .plugin(plugin)
            .file(self.path())
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EscapesRoot {
                what,
                path,
                real,
                root,
            } => {
                write!(f, "the {what} {} ", path.display())?;
                if let Some(real) = real {
                    write!(f, "resolves to {}, ", real.display())?;
                }
                write!(
                    f,
                    "outside the plugin root {}; keep every plugin file inside its root",
                    root.display()
                )
            }
            Self::WorldWritable { what, path, mode } => write!(
                f,
                "the {what} {} is world-writable (mode {mode:03o}); run `chmod o-w` on it",
                path.display()
            ),
            Self::SuspiciousOwner {
                what,
                path,
                owner,
                expected,
            } => write!(
                f,
                "the {what} {} is owned by uid {owner}, neither the current user (uid {expected}) nor root; chown it or install the plugin as this user",
                path.display()
            ),
            Self::Hardlinked {
                what,
                path,
                links,
                outside,
            } => write!(
                f,
                "the {what} {} has {links} hard links, {outside} of them outside the plugin root; replace it with a plain copy",
                path.display()
            ),
            Self::Uninspectable { what, path, error } => {
                write!(f, "cannot inspect the {what} {}: {error}", path.display())
            }
        }
    }
}

/// What the gates need to know about the candidate and the user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gate {
    pub(crate) origin: Origin,
    /// The uid trusted as owner besides root.
    pub(crate) uid: u32,
}

/// The result of checking a file inside a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileCheck {
    /// The file passed; its real path.
    Ok(PathBuf),
    /// It does not exist (and does not escape the root lexically).
    Missing(PathBuf),
    /// It exists but is not a regular file.
    NotAFile(PathBuf),
    Blocked(Block),
}

impl Gate {
    /// Checks a plugin root; returns its real path.
    pub(crate) fn root(self, root: &Path) -> Result<PathBuf, Block> {
        let real = std::fs::canonicalize(root).map_err(|error| Block::Uninspectable {
            what: "plugin root",
            path: root.to_path_buf(),
            error: error.to_string(),
        })?;
        let metadata = std::fs::metadata(&real).map_err(|error| Block::Uninspectable {
            what: "plugin root",
            path: real.clone(),
            error: error.to_string(),
        })?;
        self.permissions("plugin root", &real, &metadata)?;
        Ok(real)
    }

    /// Checks `relative` (as written in a manifest or `package.json`) inside the real
    /// root `root`.
    pub(crate) fn file(self, what: &'static str, root: &Path, relative: &Path) -> FileCheck {
        if escapes_lexically(relative) {
            return FileCheck::Blocked(Block::EscapesRoot {
                what,
                path: root.join(relative),
                real: None,
                root: root.to_path_buf(),
            });
        }
        let path = normalize(&root.join(relative));
        let real = match std::fs::canonicalize(&path) {
            Ok(real) => real,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink can still point outside: say so rather than "missing".
                if let Ok(target) = std::fs::read_link(&path) {
                    let target = path.parent().unwrap_or(root).join(target);
                    if !normalize(&target).starts_with(root) {
                        return FileCheck::Blocked(Block::EscapesRoot {
                            what,
                            path,
                            real: Some(target),
                            root: root.to_path_buf(),
                        });
                    }
                }
                return FileCheck::Missing(path);
            }
            Err(error) => {
                return FileCheck::Blocked(Block::Uninspectable {
                    what,
                    path,
                    error: error.to_string(),
                });
            }
        };
        if !real.starts_with(root) {
            return FileCheck::Blocked(Block::EscapesRoot {
                what,
                path,
                real: Some(real),
                root: root.to_path_buf(),
            });
        }
        let metadata = match std::fs::metadata(&real) {
            Ok(metadata) => metadata,
            Err(error) => {
                return FileCheck::Blocked(Block::Uninspectable {
                    what,
                    path: real,
                    error: error.to_string(),
                });
            }
        };
        if !metadata.is_file() {
            return FileCheck::NotAFile(real);
        }
        if let Err(block) = self.permissions(what, &real, &metadata) {
            return FileCheck::Blocked(block);
        }
        if self.origin != Origin::Bundled && metadata.nlink() > 1 {
            let inside = links_inside(root, &metadata);
            if inside < metadata.nlink() {
                return FileCheck::Blocked(Block::Hardlinked {
                    what,
                    path: real,
                    links: metadata.nlink(),
                    outside: metadata.nlink() - inside,
                });
            }
        }
        FileCheck::Ok(real)
    }

    fn permissions(
        self,
        what: &'static str,
        path: &Path,
        metadata: &std::fs::Metadata,
    ) -> Result<(), Block> {
        let mode = metadata.mode() & 0o7777;
        if mode & 0o002 != 0 {
            return Err(Block::WorldWritable {
                what,
                path: path.to_path_buf(),
                mode,
            });
        }
        let owner = metadata.uid();
        if self.origin != Origin::Bundled && owner != self.uid && owner != 0 {
            return Err(Block::SuspiciousOwner {
                what,
                path: path.to_path_buf(),
                owner,
                expected: self.uid,
            });
        }
        Ok(())
    }
}

/// Checks a program found on `outpost.binPath` or `PATH`: only world-writability (the
/// operator chose the directory, so its owner is theirs to trust).
pub(crate) fn searched_program(path: &Path) -> Result<(), Block> {
    let metadata = std::fs::metadata(path).map_err(|error| Block::Uninspectable {
        what: "command",
        path: path.to_path_buf(),
        error: error.to_string(),
    })?;
    let mode = metadata.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(Block::WorldWritable {
            what: "command",
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// An absolute path, or one that climbs above its start with `..`.
fn escapes_lexically(relative: &Path) -> bool {
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return true,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            Component::Normal(_) => depth += 1,
        }
    }
    false
}

/// Removes `.` and resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// Most entries [`links_inside`] looks at before it gives up (and counts what it has).
const MAX_SCANNED_ENTRIES: usize = 200_000;

/// How many links to the file of `metadata` are under `root`, without following
/// symlinks. A tree too large to scan counts only what was seen, which blocks.
fn links_inside(root: &Path, metadata: &std::fs::Metadata) -> u64 {
    let (dev, ino) = (metadata.dev(), metadata.ino());
    let mut found = 0;
    let mut scanned = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            scanned += 1;
            if scanned > MAX_SCANNED_ENTRIES {
                return found;
            }
            let Ok(entry_metadata) = entry.metadata() else {
                continue;
            };
            if entry_metadata.is_dir() {
                dirs.push(entry.path());
            } else if entry_metadata.dev() == dev && entry_metadata.ino() == ino {
                found += 1;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn gate(origin: Origin, uid: u32) -> Gate {
        Gate { origin, uid }
    }

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn lexical_escapes() {
        for (path, escapes) in [
            ("a/b", false),
            ("./a/../b", false),
            ("../a", true),
            ("a/../../b", true),
            ("/etc/passwd", true),
        ] {
            assert_eq!(escapes_lexically(Path::new(path)), escapes, "{path}");
        }
    }

    #[test]
    fn files_inside_the_root_pass_and_escapes_are_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("ok.py"), "").unwrap();
        std::fs::write(dir.path().join("outside.py"), "").unwrap();
        std::os::unix::fs::symlink("../outside.py", root.join("link.py")).unwrap();
        std::os::unix::fs::symlink("../nowhere.py", root.join("dangling.py")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let gate = gate(Origin::Config, me());
        let root = gate.root(&root).unwrap();
        assert!(matches!(
            gate.file("entry", &root, Path::new("ok.py")),
            FileCheck::Ok(_)
        ));
        for escaping in ["link.py", "dangling.py", "../outside.py", "/etc/hostname"] {
            let check = gate.file("entry", &root, Path::new(escaping));
            assert!(
                matches!(check, FileCheck::Blocked(Block::EscapesRoot { .. })),
                "{escaping}: {check:?}"
            );
        }
        assert!(matches!(
            gate.file("entry", &root, Path::new("gone.py")),
            FileCheck::Missing(_)
        ));
        assert!(matches!(
            gate.file("entry", &root, Path::new("sub")),
            FileCheck::NotAFile(_)
        ));
    }

    #[test]
    fn world_writable_roots_and_files_are_blocked_for_every_origin() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("m.json"), "").unwrap();
        std::fs::set_permissions(root.join("m.json"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        for origin in [Origin::Config, Origin::Bundled] {
            let gate = gate(origin, me());
            let real = gate.root(&root).unwrap();
            let check = gate.file("manifest", &real, Path::new("m.json"));
            assert!(
                matches!(
                    check,
                    FileCheck::Blocked(Block::WorldWritable { mode: 0o666, .. })
                ),
                "{check:?}"
            );
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let block = gate(Origin::Bundled, me()).root(&root).unwrap_err();
        assert!(matches!(block, Block::WorldWritable { .. }), "{block:?}");
        assert!(block.to_string().contains("chmod o-w"), "{block}");
    }

    #[test]
    fn foreign_owners_are_blocked_except_for_bundled_plugins_and_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // Root-owned files are always trusted: as root, give the directory away; as
        // anyone else, trust another uid than the owner's.
        let trusted = if me() == 0 {
            nix::unistd::chown(&root, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
            0
        } else {
            me() + 1
        };
        let block = gate(Origin::Global, trusted).root(&root).unwrap_err();
        assert!(matches!(block, Block::SuspiciousOwner { .. }), "{block:?}");
        assert!(gate(Origin::Bundled, trusted).root(&root).is_ok());
        if me() != 0 {
            assert!(gate(Origin::Global, me()).root(&root).is_ok());
        }
    }

    #[test]
    fn hardlinks_are_blocked_except_for_bundled_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("original"), "").unwrap();
        std::fs::hard_link(dir.path().join("original"), root.join("m.json")).unwrap();
        let real = std::fs::canonicalize(&root).unwrap();
        let check = gate(Origin::Workspace, me()).file("manifest", &real, Path::new("m.json"));
        assert!(
            matches!(
                check,
                FileCheck::Blocked(Block::Hardlinked {
                    links: 2,
                    outside: 1,
                    ..
                })
            ),
            "{check:?}"
        );
        let check = gate(Origin::Bundled, me()).file("manifest", &real, Path::new("m.json"));
        assert!(matches!(check, FileCheck::Ok(_)), "{check:?}");
    }

    #[test]
    fn hardlinks_that_stay_inside_the_root_are_fine() {
        // As cargo leaves a binary: target/release/x and target/release/deps/x-hash.
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("target/release/deps")).unwrap();
        std::fs::write(root.join("target/release/deps/x-0123"), "").unwrap();
        std::fs::hard_link(
            root.join("target/release/deps/x-0123"),
            root.join("target/release/x"),
        )
        .unwrap();
        let check =
            gate(Origin::Workspace, me()).file("command", &root, Path::new("target/release/x"));
        assert!(matches!(check, FileCheck::Ok(_)), "{check:?}");
    }
}
