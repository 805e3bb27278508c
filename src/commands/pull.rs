//! `kiln pull`: download an image from a registry into the store.

use std::process::ExitCode;

use anyhow::Context as _;
use cache::ImageRef;
use cache::registry::{self, Platform};

use super::Globals;
use crate::transfer::{self, RegistryArgs, Renderer};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: NAME[:TAG] or NAME@sha256:DIGEST.
    #[arg(value_name = "REF")]
    reference: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]);
    /// default: this machine's.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Print only the pulled reference.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let r = ImageRef::parse(&args.reference)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = super::images::open_store(globals)?;
    let ui = Renderer::new(true, args.quiet);
    let client = transfer::client(&args.registry, ui.clone())?;
    match r.tag() {
        Some(t) => ui.line(&format!("{t}: Pulling from {}", r.familiar_name())),
        None => ui.line(&format!("Pulling from {}", r.familiar_name())),
    }
    let pulled = registry::pull_image(&store, &client, &r, platform.as_ref());
    ui.finish();
    let pulled = pulled.with_context(|| format!("pull {}", r.familiar()))?;
    ui.line(&format!("Digest: {}", pulled.resolved.digest));
    if pulled.up_to_date {
        ui.line(&format!("Status: Image is up to date for {}", r.familiar()));
    } else {
        ui.line(&format!(
            "Status: Downloaded newer image for {}",
            r.familiar()
        ));
    }
    println!("{r}");
    Ok(ExitCode::SUCCESS)
}
