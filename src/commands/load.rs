//! `kiln load`.

use std::process::ExitCode;

use super::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Arguments (not implemented yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub(crate) fn run(_globals: &Globals, _args: Args) -> anyhow::Result<ExitCode> {
    super::not_implemented("load")
}
