//! `kiln debug`: developer views of the frontend's work.

use std::process::ExitCode;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the raw parse tree in BuildKit's test-dump format.
    Parse {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Print the build graph.
    Graph {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

pub(crate) fn run(_globals: &Globals, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Parse { .. } => super::not_implemented("debug parse"),
        Command::Graph { .. } => super::not_implemented("debug graph"),
    }
}
