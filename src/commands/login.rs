//! `kiln login`: check credentials against a registry and save them in
//! docker's `config.json` (or its credential helper).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use cache::registry::{Credential, NoProgress};

use super::Globals;
use crate::transfer::{self, RegistryArgs};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The registry: host[:port] (a URL works too); default docker.io.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
    /// User name.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin: arguments are visible to other users).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `https://host:5000/v2/` → `host:5000`; Hub aliases → `docker.io`.
pub(crate) fn normalize_server(s: &str) -> anyhow::Result<String> {
    let t = s.trim();
    let t = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .unwrap_or(t);
    let host = t.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        anyhow::bail!("invalid registry {s:?}: expected host[:port]");
    }
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            cache::DEFAULT_REGISTRY.to_string()
        }
        h => h.to_ascii_lowercase(),
    })
}

fn prompt(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads a password from the terminal without echoing it.
fn prompt_hidden(label: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let old = tcgetattr(&stdin)?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let line = prompt(label);
    tcsetattr(&stdin, OptionalActions::Now, &old)?;
    eprintln!();
    line
}

pub(crate) fn run(_globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let server = normalize_server(args.server.as_deref().unwrap_or(cache::DEFAULT_REGISTRY))?;
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive && !args.password_stdin => prompt("Username: ")?,
        None => anyhow::bail!("login to {server}: a user name is needed (-u USER)"),
    };
    if username.is_empty() {
        anyhow::bail!("login to {server}: the user name is empty");
    }
    let password = if args.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut p)
            .context("read the password from stdin")?;
        p.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if interactive {
        prompt_hidden("Password: ")?
    } else {
        anyhow::bail!("login to {server}: a password is needed (-p or --password-stdin)");
    };
    if password.is_empty() {
        anyhow::bail!("login to {server}: the password is empty");
    }
    let cred = Credential::Basic { username, password };
    let client = transfer::client(&args.registry, Arc::new(NoProgress))?;
    client
        .login(&server, &cred)
        .with_context(|| format!("login to {server} failed"))?;
    let at = client
        .credentials()
        .store(&server, &cred)
        .with_context(|| format!("save the credentials for {server}"))?;
    eprintln!("Credentials saved in {at}");
    eprintln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(
            normalize_server("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            normalize_server("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            normalize_server("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert!(normalize_server("http://").is_err());
    }
}
