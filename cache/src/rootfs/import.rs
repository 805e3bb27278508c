//! `kiln import`: a root filesystem tar (plain, gzip or zstd) becomes a
//! one-layer image, as `docker import` makes it.
//!
//! The tar is stored as the layer blob as it comes (checked as a layer
//! while it streams), the config is written with the `--change`s applied
//! and a history entry `Imported from SOURCE`. bzip2 and xz tars, which
//! `docker import` also takes but no image format can describe, are
//! stored decompressed.

use std::io::Read;

use serde_json::{Map, Value, json};

use crate::archive::host_arch;
use crate::compression::peek;
use crate::error::{Error, Result};
use crate::images::NewImage;
use crate::records::Image;
use crate::reference::ImageRef;
use crate::rootfs::apply_change;
use crate::store::Store;

/// How to make the image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions<'a> {
    /// The tag to give it.
    pub tag: Option<&'a ImageRef>,
    /// `--change` instructions.
    pub changes: &'a [String],
    /// `--message`: the history comment (default `Imported from SOURCE`).
    pub message: Option<&'a str>,
    /// Where the tar came from, for the history (`-` for stdin).
    pub source: &'a str,
    /// The `created` time (RFC 3339); default now.
    pub created: Option<&'a str>,
}

/// Unwraps bzip2 and xz; anything else passes through unchanged.
fn decompress_legacy<'a>(r: impl Read + 'a, label: &str) -> Result<Box<dyn Read + 'a>> {
    let (head, r) = peek(r, 6).map_err(|e| Error::stream(format!("read {label}"), e))?;
    Ok(if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(r))
    } else {
        Box::new(r)
    })
}

/// Imports the rootfs tar read from `r`.
pub fn import(store: &Store, r: impl Read, opts: &ImportOptions<'_>) -> Result<Image> {
    // Check the changes before reading a possibly large stream.
    let mut cfg = Map::new();
    for c in opts.changes {
        apply_change(&mut cfg, c)?;
    }
    let label = format!("import of {}", opts.source);
    let blob = store.write_layer_blob(decompress_legacy(r, &label)?, &label)?;
    let blob_digest = blob.pending.digest.clone();
    let layer = store.commit_layer_blob(blob, None)?;
    let created = opts
        .created
        .map(str::to_string)
        .unwrap_or_else(|| jiff::Timestamp::now().to_string());
    let comment = opts
        .message
        .map(str::to_string)
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let config = json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": Value::Object(cfg),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": created, "created_by": "", "comment": comment}],
    });
    let config = serde_json::to_vec(&config).expect("config serialises");
    let tags: Vec<ImageRef> = opts.tag.into_iter().cloned().collect();
    let result = store.put_image(&NewImage {
        config: &config,
        layers: std::slice::from_ref(&layer.diff_id),
        manifest: None,
        tags: &tags,
        repo_digests: &[],
    });
    if result.is_err() {
        let _ = store.discard(&[blob_digest], std::slice::from_ref(&layer.diff_id));
    }
    result
}
