//! The integration tests of `outpost-supervisor`: one binary, one module per subject:
//! the control plane and the data plane. The `outpost` command's tests are in
//! `supervisor/cli/tests`.

#[path = "../support/cases.rs"]
mod cases;
mod control;
mod data_plane;
mod isolation;

use std::path::{Path, PathBuf};

/// `supervisor/tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
