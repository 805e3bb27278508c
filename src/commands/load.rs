//! `kiln load`: images from a docker-archive or OCI-layout tar.

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cache::archive::load;

use super::Globals;
use super::images::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Read from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let loaded = match &args.input {
        Some(path) => {
            let f =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            load(&store, BufReader::with_capacity(1 << 20, f))
                .with_context(|| format!("load {}", path.display()))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or pipe an archive"
                );
            }
            load(
                &store,
                BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
            )
            .context("load from stdin")?
        }
    };
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        for l in &loaded {
            if l.tags.is_empty() {
                writeln!(out, "Loaded image ID: {}", l.id)?;
            }
            for t in &l.tags {
                writeln!(out, "Loaded image: {}", t.familiar())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
