//! The command line, as clap sees it: raw arguments only. Each command's
//! module in [`crate::commands`] owns its own `Args` struct and turns it
//! into validated options for the library crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

/// kiln: a daemonless, BuildKit-compatible Dockerfile build system.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// State directory (default: /var/lib/kiln for root, $XDG_DATA_HOME/kiln otherwise).
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// Verbose internal logging on stderr (or set KILN_LOG=debug).
    #[arg(long, global = true, hide = true)]
    pub(crate) debug: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<commands::build::Args>),
    /// Parse and validate a Dockerfile without building; print warnings.
    Check(commands::check::Args),
    /// Developer tools: dump the parse tree or the build graph.
    #[command(subcommand)]
    Debug(commands::debug::Command),
    /// List images.
    Images(commands::images::Args),
    /// Show low-level information about an image as JSON.
    Inspect(commands::inspect::Args),
    /// Show the history of an image.
    History(commands::history::Args),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(commands::tag::Args),
    /// Remove one or more images.
    Rmi(commands::rmi::Args),
    /// Save images to a tar archive (docker-archive + OCI layout).
    Save(commands::save::Args),
    /// Load images from a tar archive.
    Load(commands::load::Args),
    /// Export an image's flattened filesystem as a tar archive.
    Export(commands::export::Args),
    /// Import a root filesystem tarball as a one-layer image.
    Import(commands::import::Args),
    /// Pull an image from a registry.
    Pull(commands::pull::Args),
    /// Push an image to a registry.
    Push(commands::push::Args),
    /// Log in to a registry.
    Login(commands::login::Args),
    /// Log out from a registry.
    Logout(commands::logout::Args),
    /// Run a command in a new container from an image.
    Run(Box<commands::run::Args>),
    /// Remove unused data from the store.
    Prune(commands::prune::Args),
    /// Manage the store.
    #[command(subcommand)]
    System(commands::system::Command),
}
