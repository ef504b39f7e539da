//! The integration tests of `outpost-supervisor`: one binary, one module per plane.

mod control;
mod data_plane;
mod serve;

use std::path::{Path, PathBuf};

/// `supervisor/tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
