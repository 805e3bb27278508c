//! `kiln system`: store-wide management.

use std::process::ExitCode;

use cache::UsageRow;

use super::Globals;
use super::images::{Table, human_size, open_store};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show disk usage of the store.
    Df,
}

pub(crate) fn run(g: &Globals, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Df => df(g),
    }
}

fn df(g: &Globals) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let du = store.disk_usage()?;
    let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    let mut row = |name: &str, r: &UsageRow| {
        let pct = (r.reclaimable * 100).checked_div(r.size).unwrap_or(0);
        t.row(vec![
            name.into(),
            r.total.to_string(),
            r.active.to_string(),
            human_size(r.size),
            format!("{} ({pct}%)", human_size(r.reclaimable)),
        ]);
    };
    row("Images", &du.images);
    row("Build Cache", &du.build_cache);
    row("Unpacked layers", &du.unpacked);
    row("Unreferenced", &du.unreferenced);
    t.print(&mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
