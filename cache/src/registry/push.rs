//! Pushing an image from the store: the config, the layers (several at
//! once), then the manifest, so a registry never sees a manifest whose
//! blobs are missing.
//!
//! Locally built layers are stored uncompressed (blob digest = diffID).
//! By default a push sends a gzip blob: the first push of a layer
//! compresses its tar *into the store* (streamed, hashed on the way, no
//! extra pass and no whole layer in memory) and records the result as a
//! second blob of the same layer, so the next push of it — to any
//! registry — only `HEAD`s it. Layers that already have a compressed
//! blob (pulled ones) are pushed as they are, keeping the digests the
//! registry knows. The config is pushed unchanged: the image ID stays.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::client::Client;
use super::error::{Error, Result};
use super::manifest::{ManifestFormat, build_manifest};
use super::pgzip;
use super::progress::{BlobOutcome, Event, Progress};
use super::repository::Repository;
use crate::digest::Digest;
use crate::records::{Descriptor, Image, Layer, media};
use crate::reference::ImageRef;
use crate::store::Store;

/// How layers are compressed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    /// A pulled image's layers as they were pulled; otherwise a layer's
    /// compressed blob if it has one, else gzip.
    #[default]
    Auto,
    /// gzip every layer (reusing existing gzip blobs).
    Gzip,
    /// zstd every layer (reusing existing zstd blobs); needs Docker 23+
    /// or containerd 1.5+ to pull.
    Zstd,
    /// Uncompressed tars.
    Uncompressed,
}

impl LayerCompression {
    /// Parses `auto`, `gzip`, `zstd`, `uncompressed` (or `none`).
    pub fn parse(s: &str) -> Result<LayerCompression> {
        Ok(match s {
            "auto" => LayerCompression::Auto,
            "gzip" => LayerCompression::Gzip,
            "zstd" => LayerCompression::Zstd,
            "uncompressed" | "none" => LayerCompression::Uncompressed,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "invalid compression {s:?}: expected auto, gzip, zstd or uncompressed"
                )));
            }
        })
    }
}

/// Options of [`push_image`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Layer compression.
    pub compression: LayerCompression,
    /// Manifest format; `None`: keep a pulled image's manifest when it
    /// still describes the blobs pushed, else OCI.
    pub format: Option<ManifestFormat>,
    /// gzip level 1-9 (default 6, as docker); zstd level 1-19 (default 3).
    pub level: Option<u32>,
}

/// The result of [`push_image`].
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest (`name@digest` pulls exactly this image).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The manifest bytes pushed.
    pub manifest: Vec<u8>,
}

/// Pushes `image` to `target` (a tag reference).
pub fn push_image(
    store: &Store,
    client: &Client,
    image: &Image,
    target: &ImageRef,
    opts: &PushOptions,
) -> Result<Pushed> {
    let Some(tag) = target.tag() else {
        return Err(Error::InvalidArgument(format!(
            "cannot push to {}: a push needs a tag, not a digest",
            target.familiar()
        )));
    };
    let config = store.image_config(image)?;
    // Repositories of the same registry this image was pulled from may
    // hold its blobs: mount from them instead of uploading.
    let mut mount_from: Vec<String> = Vec::new();
    for rd in &image.repo_digests {
        if let Ok(r) = ImageRef::parse(rd)
            && r.registry() == target.registry()
            && r.repository() != target.repository()
            && !mount_from.iter().any(|m| m == r.repository())
        {
            mount_from.push(r.repository().to_string());
        }
    }
    let repo = client.repository_for_push(target, &mount_from);
    let layers: Vec<Layer> = image
        .layers
        .iter()
        .map(|d| {
            store
                .layer(d)?
                .ok_or_else(|| crate::error::Error::LayerNotFound(d.to_string()))
        })
        .collect::<std::result::Result<_, _>>()?;
    // A pulled image's own blobs, to push as they are in `auto` mode.
    let own: Vec<Option<Descriptor>> = if image.repo_digests.is_empty() {
        vec![None; layers.len()]
    } else {
        let m = store.image_manifest(image)?;
        let parsed =
            crate::oci::parse_manifest(&m, &format!("manifest {}", image.manifest.digest))?;
        parsed.layers.into_iter().map(Some).collect()
    };
    // The config first: it is small, and its requests authenticate once
    // before the layers go in parallel (no token request per thread).
    let format = opts.format;
    let config_type = match format {
        Some(ManifestFormat::Docker) => media::DOCKER_CONFIG,
        _ => media::OCI_CONFIG,
    };
    let (config_desc, outcome) = repo.push_blob_bytes(&config, config_type)?;
    client.progress().event(Event::Done {
        digest: &config_desc.digest,
        outcome,
    });
    let blobs = push_layers(store, &repo, &layers, &own, &mount_from, opts)?;
    let manifest = reuse_manifest(store, image, &blobs, format)?
        .unwrap_or_else(|| build_manifest(format.unwrap_or_default(), &config_desc, &blobs));
    let media_type = crate::oci::parse_manifest(&manifest, "manifest")?.media_type;
    let digest = repo.put_manifest(tag, &manifest, &media_type)?;
    Ok(Pushed {
        digest,
        size: manifest.len() as u64,
        manifest,
    })
}

/// The stored manifest, if it describes exactly `blobs` in the requested
/// format (a pulled image pushed elsewhere keeps its digest).
fn reuse_manifest(
    store: &Store,
    image: &Image,
    blobs: &[Descriptor],
    format: Option<ManifestFormat>,
) -> Result<Option<Vec<u8>>> {
    let bytes = store.image_manifest(image)?;
    let parsed =
        crate::oci::parse_manifest(&bytes, &format!("manifest {}", image.manifest.digest))?;
    let same_blobs = parsed.layers.len() == blobs.len()
        && parsed
            .layers
            .iter()
            .zip(blobs)
            .all(|(a, b)| a.digest == b.digest);
    let same_format = match format {
        None => true,
        Some(ManifestFormat::Oci) => parsed.media_type == media::OCI_MANIFEST,
        Some(ManifestFormat::Docker) => parsed.media_type == media::DOCKER_MANIFEST,
    };
    Ok((same_blobs && same_format).then_some(bytes))
}

/// Prepares and uploads every layer, `parallel` at a time; returns the
/// blob descriptors in layer order.
fn push_layers(
    store: &Store,
    repo: &Repository<'_>,
    layers: &[Layer],
    own: &[Option<Descriptor>],
    mount_from: &[String],
    opts: &PushOptions,
) -> Result<Vec<Descriptor>> {
    let mut results: Vec<Option<Descriptor>> = vec![None; layers.len()];
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..layers.len()).collect());
    let out = Mutex::new(&mut results);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = repo.client.options().parallel.clamp(1, layers.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(i) = queue.lock().expect("lock").pop_front() else {
                        return;
                    };
                    match push_layer(
                        store,
                        repo,
                        &layers[i],
                        own.get(i).and_then(Option::as_ref),
                        mount_from,
                        opts,
                    ) {
                        Ok(d) => out.lock().expect("lock")[i] = Some(d),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().expect("lock").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("lock") {
        return Err(e);
    }
    Ok(results
        .into_iter()
        .map(|d| d.expect("every layer done"))
        .collect())
}

/// Uploads one layer of the store to `repo` (compressing it into the
/// store first if `opts` asks and no such blob exists); returns the
/// descriptor to put in a manifest. `own`: the blob a pulled image's
/// manifest names for it (kept in `auto` mode). For callers that push
/// layers one by one (build-cache export).
pub fn push_layer(
    store: &Store,
    repo: &Repository<'_>,
    layer: &Layer,
    own: Option<&Descriptor>,
    mount_from: &[String],
    opts: &PushOptions,
) -> Result<Descriptor> {
    let desc = layer_blob(store, repo.client, layer, own, opts)?;
    let file = store.open_layer_blob(&layer.diff_id, &desc.digest)?;
    let outcome = repo.push_blob_file(&file, &desc, mount_from)?;
    repo.client.progress().event(Event::Done {
        digest: &desc.digest,
        outcome,
    });
    Ok(desc)
}

fn is_gzip(t: &str) -> bool {
    t == media::OCI_LAYER_GZIP || t == media::DOCKER_LAYER_GZIP
}

fn is_plain(t: &str) -> bool {
    t == media::OCI_LAYER || t == media::DOCKER_LAYER
}

/// The blob to push for `layer`, made (and recorded) if needed. `own`
/// is the blob a pulled image's manifest names for it.
fn layer_blob(
    store: &Store,
    client: &Client,
    layer: &Layer,
    own: Option<&Descriptor>,
    opts: &PushOptions,
) -> Result<Descriptor> {
    if opts.compression == LayerCompression::Auto
        && let Some(d) = own.filter(|d| store.has_blob(&d.digest))
    {
        return Ok(d.clone());
    }
    // A lazy layer's plain blob counts as present: it is written when
    // opened.
    let usable = |b: &Descriptor| store.has_blob(&b.digest) || layer.is_lazy_blob(&b.digest);
    let present = |f: &dyn Fn(&str) -> bool| {
        layer
            .blobs
            .iter()
            .find(|b| f(&b.media_type) && usable(b))
            .cloned()
    };
    let existing = match opts.compression {
        LayerCompression::Auto => present(&|t| !is_plain(t)),
        LayerCompression::Gzip => present(&is_gzip),
        LayerCompression::Zstd => present(&|t| t == media::OCI_LAYER_ZSTD),
        LayerCompression::Uncompressed => present(&is_plain),
    };
    if let Some(d) = existing {
        return Ok(d);
    }
    let progress = client.progress();
    let media_type = match opts.compression {
        LayerCompression::Auto | LayerCompression::Gzip => media::OCI_LAYER_GZIP,
        LayerCompression::Zstd => media::OCI_LAYER_ZSTD,
        LayerCompression::Uncompressed => media::OCI_LAYER,
    };
    let id = &layer.diff_id;
    progress.event(Event::Start {
        digest: id,
        size: layer.size,
        action: "compress",
    });
    let counted = |inner: Box<dyn Read>| Counted::new(inner, id, client);
    // The plain blob, if the layer has one, is a file another thread can
    // read: it feeds the parallel gzip. Otherwise the tar is decompressed
    // here and compressed on this thread.
    let plain = layer
        .blobs
        .iter()
        .find(|b| is_plain(&b.media_type) && usable(b));
    let level = opts.level;
    let (digest, size) = match (opts.compression, plain) {
        (LayerCompression::Uncompressed, _) => {
            store.ingest_blob(counted(store.layer_tar(id)?), Some(id))?
        }
        (LayerCompression::Zstd, _) => {
            let enc = zstd::stream::read::Encoder::new(
                counted(store.layer_tar(id)?),
                level.unwrap_or(3) as i32,
            )
            .map_err(|e| crate::error::Error::stream(format!("zstd layer {id}"), e))?;
            store.ingest_blob(enc, None)?
        }
        (_, Some(b)) => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let file = Counted::new(store.open_layer_blob(id, &b.digest)?, id, client);
            let level = level.unwrap_or(6).clamp(1, 9);
            store.ingest_blob(pgzip::gzip_reader(file, level, threads), None)?
        }
        (_, None) => {
            let level = flate2::Compression::new(level.unwrap_or(6).clamp(1, 9));
            let enc = flate2::read::GzEncoder::new(counted(store.layer_tar(id)?), level);
            store.ingest_blob(enc, None)?
        }
    };
    let desc = Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
    };
    store.register_layer(id, desc.clone(), layer.size)?;
    progress.event(Event::Done {
        digest: id,
        outcome: BlobOutcome::Compressed,
    });
    Ok(desc)
}

/// Counts (and reports) the uncompressed bytes read through it.
struct Counted<R> {
    inner: R,
    n: u64,
    digest: Digest,
    progress: Arc<dyn Progress>,
}

impl<R> Counted<R> {
    fn new(inner: R, digest: &Digest, client: &Client) -> Counted<R> {
        Counted {
            inner,
            n: 0,
            digest: digest.clone(),
            progress: client.progress_arc(),
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        self.progress.event(Event::Progress {
            digest: &self.digest,
            done: self.n,
        });
        Ok(k)
    }
}
