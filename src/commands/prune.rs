//! `kiln prune`: remove dangling images and whatever nothing references.

use std::io::Write;
use std::process::ExitCode;

use cache::PruneOptions;

use super::Globals;
use super::images::{human_size, open_store};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Also remove the whole build cache (index, cache mounts, logs).
    #[arg(short, long)]
    all: bool,
    /// Accepted for docker compatibility: kiln never asks.
    #[arg(short, long)]
    force: bool,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let r = store.prune(PruneOptions { all: args.all })?;
    let mut out = std::io::stdout().lock();
    if !r.images.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for id in &r.images {
            writeln!(out, "deleted: {id}")?;
        }
        writeln!(out)?;
    }
    if r.cache_entries > 0 {
        writeln!(out, "Deleted build cache entries: {}", r.cache_entries)?;
    }
    if r.layers > 0 || r.blobs > 0 {
        writeln!(out, "Deleted {} layers and {} blobs", r.layers, r.blobs)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(r.bytes))?;
    Ok(ExitCode::SUCCESS)
}
