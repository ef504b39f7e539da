//! outpost-sdk's integration tests: plugins built with the SDK, driven over in-memory
//! pipes (`memory`) and as real child processes (`process`), and the build-time checks
//! (`build`).

mod build;
mod memory;
mod process;
mod wire;
