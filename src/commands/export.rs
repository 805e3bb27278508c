//! `kiln export`: an image's flattened root filesystem as a tar.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use cache::rootfs::export;

use super::Globals;
use super::images::{open_store, refuse_terminal};
use super::save::write_file;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The image (reference, ID or ID prefix).
    #[arg(value_name = "IMAGE")]
    image: String,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let img = store.image(&args.image)?;
    match &args.output {
        None => {
            refuse_terminal("a filesystem tar")?;
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            export(&store, &img, &mut out)?;
            out.flush()?;
        }
        Some(path) => write_file(path, |w| Ok(export(&store, &img, w)?))?,
    }
    Ok(ExitCode::SUCCESS)
}
