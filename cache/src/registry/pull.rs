//! Resolving a reference to one image manifest and config, and pulling
//! an image into the store.
//!
//! Layers the store already holds (same blob) are skipped; the others
//! stream into [`Store::ingest_layer`] several at a time, which verifies
//! the blob digest, the size and the diffID and refuses hostile tars
//! before anything is renamed into place. The image record comes last
//! ([`Store::put_image`]), so a failed pull leaves no image, and what it
//! downloaded is only leased: the next `Store::open` collects it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::client::Client;
use super::error::{Error, Result};
use super::manifest::{parse_index, select_platform};
use super::platform::Platform;
use super::progress::{BlobOutcome, Event};
use super::repository::{FetchedManifest, Repository};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::images::{METADATA_LIMIT, NewImage};
use crate::layers::LayerHints;
use crate::records::{Descriptor, Image, media};
use crate::reference::ImageRef;
use crate::store::Store;

/// What a reference resolves to for one platform.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference resolved.
    pub reference: ImageRef,
    /// What the reference points to in the registry (the index's digest
    /// for multi-platform images): pin `name@digest` with it.
    pub digest: Digest,
    /// The index, if the reference points to one.
    pub index: Option<FetchedManifest>,
    /// The image manifest for the platform.
    pub manifest: FetchedManifest,
    /// The config bytes (verified); their digest is the image ID.
    pub config: Vec<u8>,
    /// The image ID (config digest).
    pub image_id: Digest,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// The layers' diffIDs (from the config), bottom first.
    pub diff_ids: Vec<Digest>,
}

impl ResolvedImage {
    /// `name@digest`, as recorded in the image's repo digests.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.reference.name(), self.digest)
    }
}

/// The result of [`pull_image`].
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image as stored.
    pub image: Image,
    /// What was resolved.
    pub resolved: ResolvedImage,
    /// Layers downloaded (the others were in the store already).
    pub downloaded: usize,
    /// Whether the store already had this image under this reference.
    pub up_to_date: bool,
}

/// Layer media types kiln can store.
fn supported_layer(t: &str) -> bool {
    matches!(
        t,
        media::OCI_LAYER
            | media::OCI_LAYER_GZIP
            | media::OCI_LAYER_ZSTD
            | media::DOCKER_LAYER
            | media::DOCKER_LAYER_GZIP
    )
}

/// Resolves `r` for `platform` (default: this machine's; an explicit one
/// must match even a single-platform image): fetches the index if any,
/// the manifest and the config (from `store` when it has it).
pub fn resolve(
    client: &Client,
    store: Option<&Store>,
    r: &ImageRef,
    platform: Option<&Platform>,
) -> Result<ResolvedImage> {
    let repo = client.repository(r);
    resolve_in(&repo, store, r, platform)
}

fn resolve_in(
    repo: &Repository<'_>,
    store: Option<&Store>,
    r: &ImageRef,
    platform: Option<&Platform>,
) -> Result<ResolvedImage> {
    let want = platform.cloned().unwrap_or_else(Platform::host);
    let reference = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = repo.get_manifest(&reference)?;
    let digest = top.digest.clone();
    let shown = r.familiar();
    let (index, manifest) = if top.is_index() {
        let entries = parse_index(&top.bytes, &format!("index {shown}"))?;
        let entry = select_platform(&entries, &want, &shown)?;
        let m = repo.get_manifest(entry.descriptor.digest.as_str())?;
        if m.is_index() {
            return Err(Error::invalid(
                format!("index {shown}"),
                "nested indexes are not supported",
            ));
        }
        (Some(top), m)
    } else {
        (None, top)
    };
    let what = format!("manifest {} of {shown}", manifest.digest);
    let parsed = crate::oci::parse_manifest(&manifest.bytes, &what)?;
    let config_type = parsed.config.media_type.as_str();
    if config_type != media::OCI_CONFIG && config_type != media::DOCKER_CONFIG {
        return Err(Error::invalid(
            shown,
            format!("not a container image (its config is {config_type})"),
        ));
    }
    for l in &parsed.layers {
        if !supported_layer(&l.media_type) {
            return Err(Error::invalid(
                what,
                format!(
                    "layer {} has the unsupported media type {}",
                    l.digest, l.media_type
                ),
            ));
        }
    }
    let id = parsed.config.digest.clone();
    let config = match store.filter(|s| s.has_blob(&id)) {
        Some(s) => s.read_blob(&id, METADATA_LIMIT)?,
        None => repo.fetch_blob_bytes(&id, METADATA_LIMIT)?,
    };
    let cfg = ImageConfig::parse(&config, &id)?;
    let diff_ids = cfg.diff_ids(&id)?;
    if diff_ids.len() != parsed.layers.len() {
        return Err(Error::invalid(
            what,
            format!(
                "it lists {} layers, its config {}",
                parsed.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    if index.is_none()
        && let Some(p) = platform
    {
        let os = cfg.str("os").unwrap_or("");
        let arch = cfg.str("architecture").unwrap_or("");
        if !p.matches(os, arch, cfg.str("variant")) {
            let mut actual = format!("{os}/{arch}");
            if let Some(v) = cfg.str("variant") {
                actual.push_str(&format!("/{v}"));
            }
            return Err(Error::NoPlatform {
                reference: shown,
                platform: p.to_string(),
                available: actual,
            });
        }
    }
    Ok(ResolvedImage {
        reference: r.clone(),
        digest,
        index,
        manifest,
        config,
        image_id: id,
        layers: parsed.layers,
        diff_ids,
    })
}

/// Pulls `r` into the store: resolves it, downloads the layers it lacks
/// (several at once), stores the image and tags it with `r` (a tag
/// reference) and records `name@digest`.
pub fn pull_image(
    store: &Store,
    client: &Client,
    r: &ImageRef,
    platform: Option<&Platform>,
) -> Result<Pulled> {
    let repo = client.repository(r);
    let resolved = resolve_in(&repo, Some(store), r, platform)?;
    let before = store.image(&r.to_string()).ok();
    let mut todo = VecDeque::new();
    for (desc, diff_id) in resolved.layers.iter().zip(&resolved.diff_ids) {
        let have = store.has_blob(&desc.digest)
            && store
                .layer(diff_id)?
                .is_some_and(|l| l.blobs.iter().any(|b| b.digest == desc.digest));
        if have {
            client.progress().event(Event::Done {
                digest: &desc.digest,
                outcome: BlobOutcome::AlreadyExists,
            });
        } else if !todo
            .iter()
            .any(|(d, _): &(&Descriptor, &Digest)| d.digest == desc.digest)
        {
            todo.push_back((desc, diff_id));
        }
    }
    let downloaded = todo.len();
    download_layers(store, &repo, todo)?;
    let tags: Vec<ImageRef> = r.tag().map(|_| r.clone()).into_iter().collect();
    let image = store.put_image(&NewImage {
        config: &resolved.config,
        layers: &resolved.diff_ids,
        manifest: Some(&resolved.manifest.bytes),
        tags: &tags,
        repo_digests: &[resolved.pinned()],
    })?;
    let up_to_date = downloaded == 0 && before.is_some_and(|b| b.id == image.id);
    Ok(Pulled {
        image,
        resolved,
        downloaded,
        up_to_date,
    })
}

/// Downloads layers with up to `parallel` threads; the first error stops
/// the others and is returned.
fn download_layers(
    store: &Store,
    repo: &Repository<'_>,
    todo: VecDeque<(&Descriptor, &Digest)>,
) -> Result<()> {
    if todo.is_empty() {
        return Ok(());
    }
    let workers = repo.client.options().parallel.clamp(1, todo.len());
    let queue = Mutex::new(todo);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some((desc, diff_id)) = queue.lock().expect("lock").pop_front() else {
                        return;
                    };
                    if let Err(e) = download_layer(store, repo, desc, diff_id) {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Downloads one layer blob into the store (digest, size, diffID and tar
/// safety verified) unless the store has that blob for that layer. For
/// callers that fetch layers one by one (build-cache import).
pub fn pull_layer(
    store: &Store,
    repo: &Repository<'_>,
    desc: &Descriptor,
    diff_id: &Digest,
) -> Result<()> {
    if store.has_blob(&desc.digest)
        && store
            .layer(diff_id)?
            .is_some_and(|l| l.blobs.iter().any(|b| b.digest == desc.digest))
    {
        return Ok(());
    }
    download_layer(store, repo, desc, diff_id)
}

fn download_layer(
    store: &Store,
    repo: &Repository<'_>,
    desc: &Descriptor,
    diff_id: &Digest,
) -> Result<()> {
    let progress = repo.client.progress();
    progress.event(Event::Start {
        digest: &desc.digest,
        size: desc.size,
        action: "download",
    });
    let reader = repo
        .fetch_blob(&desc.digest, Some(desc.size))?
        .with_progress();
    store
        .ingest_layer(
            reader,
            LayerHints {
                blob_digest: Some(&desc.digest),
                diff_id: Some(diff_id),
                media_type: Some(&desc.media_type),
            },
        )
        .map_err(|error| Error::Blob {
            what: format!("layer {} of {}", desc.digest, repo.full_name()),
            error,
        })?;
    progress.event(Event::Done {
        digest: &desc.digest,
        outcome: BlobOutcome::Downloaded,
    });
    Ok(())
}
