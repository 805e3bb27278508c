//! `kiln system`: store-wide management.

use std::process::ExitCode;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show disk usage of the store.
    Df {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

pub(crate) fn run(_globals: &Globals, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Df { .. } => super::not_implemented("system df"),
    }
}
