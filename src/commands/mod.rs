//! One module per `kiln` command. Each turns its raw clap arguments into
//! calls on the library crates and prints the result.

pub(crate) mod build;
pub(crate) mod check;
pub(crate) mod debug;
pub(crate) mod export;
pub(crate) mod history;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod load;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod prune;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod rmi;
pub(crate) mod run;
pub(crate) mod save;
pub(crate) mod system;
pub(crate) mod tag;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// What every command may need from the global flags.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    /// The state directory.
    pub(crate) root: PathBuf,
}

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = cli.root.unwrap_or_else(crate::root::default_root);
    // Layer directories become overlay lowerdirs: the root must be absolute.
    let root = std::path::absolute(&root).unwrap_or(root);
    let globals = Globals { root };
    match cli.command {
        Command::Build(args) => build::run(&globals, *args),
        Command::Check(args) => check::run(&globals, args),
        Command::Debug(cmd) => debug::run(&globals, cmd),
        Command::Images(args) => images::run(&globals, args),
        Command::Inspect(args) => inspect::run(&globals, args),
        Command::History(args) => history::run(&globals, args),
        Command::Tag(args) => tag::run(&globals, args),
        Command::Rmi(args) => rmi::run(&globals, args),
        Command::Save(args) => save::run(&globals, args),
        Command::Load(args) => load::run(&globals, args),
        Command::Export(args) => export::run(&globals, args),
        Command::Import(args) => import::run(&globals, args),
        Command::Pull(args) => pull::run(&globals, args),
        Command::Push(args) => push::run(&globals, args),
        Command::Login(args) => login::run(&globals, args),
        Command::Logout(args) => logout::run(&globals, args),
        Command::Run(args) => run::run(&globals, *args),
        Command::Prune(args) => prune::run(&globals, args),
        Command::System(cmd) => system::run(&globals, cmd),
    }
}
