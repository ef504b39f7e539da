//! Fixture cases of the control plane (`supervisor/tests/fixtures/control/cases/`),
//! copied into a temporary directory and prepared. Shared by the library's and the
//! binary's integration tests (each includes this file with `#[path]`).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use outpost_supervisor::control::LoadOptions;
use serde_json::Value;

/// `supervisor/tests/fixtures/control/cases`.
pub(crate) fn cases_dir() -> PathBuf {
    crate::fixtures().join("control/cases")
}

/// A case copied into a temporary directory.
pub(crate) struct Prepared {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) options: LoadOptions,
    pub(crate) expect: Value,
}

pub(crate) fn prepare(case: &str) -> anyhow::Result<Prepared> {
    let source = cases_dir().join(case);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join(case);
    copy_tree(&source, &root)?;
    let expect_text = std::fs::read_to_string(root.join("expect.json5"))?;
    let expect: Value = json5::from_str(&expect_text).context("expect.json5")?;
    let mut options = LoadOptions::new(root.join("outpost.json5"));
    options.home = Some(root.join("home"));
    options.bundled_dir = None;
    options.path = match expect.get("path") {
        Some(Value::Array(dirs)) => {
            Some(std::env::join_paths(dirs.iter().map(|dir| {
                root.join(dir.as_str().expect("path entries are strings"))
            }))?)
        }
        _ => Some(OsString::new()),
    };
    for step in expect["setup"].as_array().into_iter().flatten() {
        apply(step, &root, &mut options).with_context(|| format!("setup {step}"))?;
    }
    Ok(Prepared {
        _dir: dir,
        root,
        options,
        expect,
    })
}

fn apply(step: &Value, root: &Path, options: &mut LoadOptions) -> anyhow::Result<()> {
    // Git keeps no empty directory: make the one a generated file or FIFO goes in.
    for key in ["write", "fifo"] {
        if let Some(path) = step.get(key).and_then(Value::as_str)
            && let Some(parent) = root.join(path).parent()
        {
            std::fs::create_dir_all(parent)?;
        }
    }
    if let Some(path) = step.get("chmod").and_then(Value::as_str) {
        let mode = u32::from_str_radix(step["mode"].as_str().context("mode")?, 8)?;
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode))?;
    } else if let Some(from) = step.get("hardlink").and_then(Value::as_str) {
        let to = root.join(step["to"].as_str().context("to")?);
        std::fs::hard_link(root.join(from), to)?;
    } else if let Some(path) = step.get("pad").and_then(Value::as_str) {
        let bytes = usize::try_from(step["bytes"].as_u64().context("bytes")?)?;
        let mut text = std::fs::read_to_string(root.join(path))?;
        text.push_str(&" ".repeat(bytes));
        std::fs::write(root.join(path), text)?;
    } else if let Some(path) = step.get("foreignOwner").and_then(Value::as_str) {
        // Root-owned files are always trusted: as root, give the tree away; as anyone
        // else, trust a uid that owns nothing here.
        if nix::unistd::geteuid().is_root() {
            chown_tree(&root.join(path), 4242)?;
        } else {
            options.trusted_uid = nix::unistd::getuid().as_raw() + 1;
        }
    } else if let Some(path) = step.get("write").and_then(Value::as_str) {
        // `template` with its n-th `@@` replaced by `fill[n]` repeated `times` times:
        // files too big or too odd to keep in git.
        let times = usize::try_from(step["times"].as_u64().context("times")?)?;
        let mut text = step["template"].as_str().context("template")?.to_owned();
        for fill in step["fill"].as_array().context("fill")? {
            let fill = fill
                .as_str()
                .context("fill entries are strings")?
                .repeat(times);
            text = text.replacen("@@", &fill, 1);
        }
        std::fs::write(root.join(path), text)?;
    } else if let Some(path) = step.get("fifo").and_then(Value::as_str) {
        nix::unistd::mkfifo(&root.join(path), nix::sys::stat::Mode::S_IRWXU)?;
    } else {
        bail!("unknown setup step");
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32) -> anyhow::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(uid)), None)?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Copies a fixture tree: symlinks as symlinks, directories 0755, files 0644 or 0755
/// (whatever the checkout's umask did).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
            let executable = entry.metadata()?.permissions().mode() & 0o100 != 0;
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}
