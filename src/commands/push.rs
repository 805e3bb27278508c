//! `kiln push`: upload an image from the store to a registry.

use std::process::ExitCode;

use anyhow::Context as _;
use cache::ImageRef;
use cache::registry::{self, LayerCompression, ManifestFormat, PushOptions};

use super::Globals;
use crate::transfer::{self, RegistryArgs, Renderer};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The local image (NAME[:TAG], ID or ID prefix).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Where to push it (REGISTRY/NAME[:TAG]); default: IMAGE itself.
    #[arg(value_name = "REF")]
    target: Option<String>,
    /// Layer compression: auto (keep pulled blobs, gzip local layers),
    /// gzip, zstd or uncompressed.
    #[arg(long, value_name = "C", default_value = "auto")]
    compression: String,
    /// Compression level (gzip 1-9, default 6; zstd 1-19, default 3).
    #[arg(long, value_name = "N")]
    compression_level: Option<u32>,
    /// Manifest format: oci or docker (schema 2); default: keep a pulled
    /// image's manifest when possible, else oci.
    #[arg(long, value_name = "F")]
    format: Option<String>,
    /// Print only the manifest digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let target_str = args.target.as_deref().unwrap_or(&args.image);
    let target =
        ImageRef::parse(target_str).with_context(|| format!("push target {target_str:?}"))?;
    let format = match args.format.as_deref() {
        None => None,
        Some("oci") => Some(ManifestFormat::Oci),
        Some("docker") => Some(ManifestFormat::Docker),
        Some(f) => anyhow::bail!("invalid --format {f:?}: expected oci or docker"),
    };
    let opts = PushOptions {
        compression: LayerCompression::parse(&args.compression)?,
        format,
        level: args.compression_level,
    };
    let store = super::images::open_store(globals)?;
    let image = store.image(&args.image)?;
    let ui = Renderer::new(false, args.quiet);
    let client = transfer::client(&args.registry, ui.clone())?;
    ui.line(&format!(
        "The push refers to repository [{}]",
        target.name()
    ));
    let pushed = registry::push_image(&store, &client, &image, &target, &opts);
    ui.finish();
    let pushed = pushed.with_context(|| format!("push {}", target.familiar()))?;
    ui.line(&format!(
        "{}: digest: {} size: {}",
        target.tag().unwrap_or("latest"),
        pushed.digest,
        pushed.size
    ));
    println!("{}", pushed.digest);
    Ok(ExitCode::SUCCESS)
}
