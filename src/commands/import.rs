//! `kiln import`: a root filesystem tar (file or stdin; plain, gzip or
//! zstd) made into a one-layer image.

use std::io::{BufReader, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cache::ImageRef;
use cache::rootfs::{ImportOptions, import};

use super::Globals;
use super::images::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    /// Set the history comment.
    #[arg(short, long)]
    message: Option<String>,
    /// The tar file, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    source: String,
    /// Name the image.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    if args.source.contains("://") {
        bail!(
            "importing from a URL is not supported: download {} first",
            args.source
        );
    }
    let tag = args.reference.as_deref().map(ImageRef::parse).transpose()?;
    let store = open_store(g)?;
    let opts = ImportOptions {
        tag: tag.as_ref(),
        changes: &args.change,
        message: args.message.as_deref(),
        source: &args.source,
        created: None,
    };
    let img = if args.source == "-" {
        if std::io::stdin().is_terminal() {
            bail!("import from stdin, but stdin is a terminal: pipe a tar or give a FILE");
        }
        import(
            &store,
            BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
            &opts,
        )
        .context("import from stdin")?
    } else {
        let f =
            std::fs::File::open(&args.source).with_context(|| format!("open {}", args.source))?;
        import(&store, BufReader::with_capacity(1 << 20, f), &opts)
            .with_context(|| format!("import {}", args.source))?
    };
    writeln!(std::io::stdout().lock(), "{}", img.id)?;
    Ok(ExitCode::SUCCESS)
}
