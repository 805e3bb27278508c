//! `kiln logout`: forget the credentials saved for a registry.

use std::process::ExitCode;

use cache::registry::Credentials;

use super::Globals;
use super::login::normalize_server;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The registry: host[:port]; default docker.io.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

pub(crate) fn run(_globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let server = normalize_server(args.server.as_deref().unwrap_or(cache::DEFAULT_REGISTRY))?;
    let creds = Credentials::new(None);
    if creds.erase(&server)? {
        eprintln!("Removing login credentials for {server}");
    } else {
        eprintln!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}
