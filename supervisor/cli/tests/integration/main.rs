//! The integration tests of the `outpost` command: one binary, one module per subject:
//! `outpost plugins ...` on the control plane's fixture cases, the example plugins and
//! templates (`scaffold`), and `outpost serve` and `outpost call`.

mod api;
#[path = "../../../tests/support/cases.rs"]
#[expect(dead_code, reason = "the expectations are the library tests' business")]
mod cases;
mod conventions;
mod plugins;
mod scaffold;
mod serve;

use std::path::{Path, PathBuf};

/// `supervisor/tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}
