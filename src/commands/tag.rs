//! `kiln tag`: point a new tag at an image.

use std::process::ExitCode;

use cache::ImageRef;

use super::Globals;
use super::images::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image to tag (reference, ID or ID prefix).
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// The new reference.
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let target = ImageRef::parse(&args.target)?;
    let store = open_store(g)?;
    store.tag(&args.source, &target)?;
    Ok(ExitCode::SUCCESS)
}
