//! `outpost plugins ...`: placeholder until the control plane lands.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum PluginsCommand {
    /// One row per discovered plugin.
    List,
}

pub(crate) fn run(_command: PluginsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
