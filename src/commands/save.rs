//! `kiln save`: images to one tar that is both a docker-archive and an
//! OCI image layout.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cache::ImageRef;
use cache::archive::{SaveItem, save};

use super::Globals;
use super::images::{open_store, refuse_terminal, temp_beside};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Images (reference, ID or ID prefix).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for name in &args.images {
        let image = store.image(name)?;
        // A tag names what to save it as; an ID saves it untagged.
        let tag = ImageRef::parse(name)
            .ok()
            .filter(|r| r.tag().is_some() && image.tags.contains(r));
        match items.iter_mut().find(|i| i.image.id == image.id) {
            Some(item) => item.tags.extend(tag.filter(|t| !item.tags.contains(t))),
            None => items.push(SaveItem {
                tags: tag.into_iter().collect(),
                image,
            }),
        }
    }
    match &args.output {
        None => {
            refuse_terminal("an image archive")?;
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            save(&store, &items, &mut out)?;
            out.flush()?;
        }
        Some(path) => write_file(path, |w| Ok(save(&store, &items, w)?))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `path` through a temporary file renamed over it when complete,
/// so a failed or interrupted command never leaves a partial file there.
pub(crate) fn write_file(
    path: &std::path::Path,
    f: impl FnOnce(&mut BufWriter<std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        f(&mut w)?;
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("write {}", path.display()))?;
        file.sync_all()
            .with_context(|| format!("fsync {}", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
