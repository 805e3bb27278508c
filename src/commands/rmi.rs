//! `kiln rmi`: untag and remove images; blobs and layers nothing else
//! references go with them.

use std::io::Write;
use std::process::ExitCode;

use cache::Removed;

use super::Globals;
use super::images::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Images (reference, ID or ID prefix).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Remove an image referenced by several tags when given by ID.
    #[arg(short, long)]
    force: bool,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &args.images {
        match store.remove_image(name, args.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        Removed::Untagged(r) => writeln!(out, "Untagged: {}", r.familiar())?,
                        Removed::Deleted(id) => writeln!(out, "Deleted: {id}")?,
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {name}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
