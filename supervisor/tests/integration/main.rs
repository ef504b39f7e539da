//! The integration tests of `outpost-supervisor`: one binary, one module per subject:
//! the control plane, the data plane, the example plugins and templates (`scaffold`),
//! and the `outpost serve` and `outpost call` commands.

mod control;
mod data_plane;
mod scaffold;
mod serve;

use std::path::{Path, PathBuf};

/// `supervisor/tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
