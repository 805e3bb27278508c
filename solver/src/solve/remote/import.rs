//! Reading a `--cache-from` source: its records and where their layers
//! are. One manifest (two for a multi-platform image) and one config are
//! read; layers are not.

use std::collections::HashMap;

use cache::registry::{self, Client};
use cache::{Descriptor, Digest, METADATA_LIMIT, Store, media};

use super::Origin;
use super::format::{
    self, AnnotatedDescriptor, CACHE_CONFIG_MEDIA_TYPE, CacheConfig, Entry, INLINE_CACHE_KEY,
    Manifest, RemoteBlob,
};
use super::layout;
use super::spec::CacheSource;

/// A source's records.
pub(crate) struct Loaded {
    pub(crate) entries: Vec<Entry>,
    /// diffID → blob, for layers to fetch.
    pub(crate) blobs: HashMap<Digest, Descriptor>,
    pub(crate) origin: Origin,
    pub(crate) inline: bool,
}

/// Reads `src`; the error is a message (the caller names the source).
pub(crate) fn load(
    store: &Store,
    client: Option<&Client>,
    src: &CacheSource,
) -> Result<Loaded, String> {
    match src {
        CacheSource::Image(name) => {
            let img = store.image(name).map_err(|e| e.to_string())?;
            let config = store.image_config(&img).map_err(|e| e.to_string())?;
            let entries = inline_entries(&config, &img.layers)?;
            Ok(Loaded {
                entries,
                blobs: HashMap::new(),
                origin: Origin::Store,
                inline: true,
            })
        }
        CacheSource::Registry(r) => {
            let client = client.ok_or("no registry client")?;
            let repo = client.repository(r);
            let reference = match (r.digest(), r.tag()) {
                (Some(d), _) => d.to_string(),
                (None, Some(t)) => t.to_string(),
                (None, None) => "latest".into(),
            };
            let top = repo.get_manifest(&reference).map_err(|e| e.to_string())?;
            let fetch = |d: &Digest| -> Result<Vec<u8>, String> {
                if store.has_blob(d) {
                    return store
                        .read_blob(d, METADATA_LIMIT)
                        .map_err(|e| e.to_string());
                }
                repo.fetch_blob_bytes(d, METADATA_LIMIT)
                    .map_err(|e| e.to_string())
            };
            let manifest = |d: &Digest| -> Result<Vec<u8>, String> {
                repo.get_manifest(d.as_str())
                    .map(|m| m.bytes)
                    .map_err(|e| e.to_string())
            };
            let (entries, blobs, inline) = from_top(&top.bytes, &r.familiar(), &fetch, &manifest)?;
            Ok(Loaded {
                entries,
                blobs,
                origin: Origin::Registry(r.clone()),
                inline,
            })
        }
        CacheSource::Local { dir, tag } => {
            let entry = layout::find(dir, tag)?;
            let read = |d: &Digest| layout::read_blob(dir, d, METADATA_LIMIT);
            let top = read(&entry.digest)?;
            let what = format!("{}:{tag}", dir.display());
            let (entries, blobs, inline) = from_top(&top, &what, &read, &read)?;
            Ok(Loaded {
                entries,
                blobs,
                origin: Origin::Layout(dir.clone()),
                inline,
            })
        }
    }
}

type Found = (Vec<Entry>, HashMap<Digest, Descriptor>, bool);

/// Records from a top-level manifest or index.
fn from_top(
    bytes: &[u8],
    what: &str,
    blob: &dyn Fn(&Digest) -> Result<Vec<u8>, String>,
    manifest: &dyn Fn(&Digest) -> Result<Vec<u8>, String>,
) -> Result<Found, String> {
    let top = Manifest::parse(bytes, what)?;
    if top.config.is_none() && !top.manifests.is_empty() {
        // BuildKit's default form: an index listing the layer blobs and
        // the cache config.
        if let Some(cfg) = top
            .manifests
            .iter()
            .find(|m| m.media_type == CACHE_CONFIG_MEDIA_TYPE)
        {
            let others: Vec<&AnnotatedDescriptor> = top
                .manifests
                .iter()
                .filter(|m| m.media_type != CACHE_CONFIG_MEDIA_TYPE)
                .collect();
            return from_cache_config(&blob(&cfg.digest)?, &others, what);
        }
        // An image index: the host's image.
        let entries = registry::parse_index(bytes, what).map_err(|e| e.to_string())?;
        let e = registry::select_platform(&entries, &registry::Platform::host(), what)
            .map_err(|e| e.to_string())?;
        let m = manifest(&e.descriptor.digest)?;
        return from_manifest(&Manifest::parse(&m, what)?, what, blob);
    }
    from_manifest(&top, what, blob)
}

/// Records from an image manifest (inline cache) or a cache manifest.
fn from_manifest(
    m: &Manifest,
    what: &str,
    blob: &dyn Fn(&Digest) -> Result<Vec<u8>, String>,
) -> Result<Found, String> {
    let config = m
        .config
        .as_ref()
        .ok_or_else(|| format!("{what}: not an image or cache manifest ({})", m.media_type))?;
    let layers: Vec<&AnnotatedDescriptor> = m.layers.iter().collect();
    if config.media_type == CACHE_CONFIG_MEDIA_TYPE {
        return from_cache_config(&blob(&config.digest)?, &layers, what);
    }
    if config.media_type != media::OCI_CONFIG && config.media_type != media::DOCKER_CONFIG {
        return Err(format!(
            "{what}: neither a build cache nor an image (its config is {})",
            config.media_type
        ));
    }
    let bytes = blob(&config.digest)?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{what}: image config: {e}"))?;
    let diff_ids = diff_ids(&v).ok_or_else(|| format!("{what}: image config has no rootfs"))?;
    if diff_ids.len() != layers.len() {
        return Err(format!(
            "{what}: the manifest lists {} layers, its config {}",
            layers.len(),
            diff_ids.len()
        ));
    }
    let entries = inline_entries(&bytes, &diff_ids)?;
    let blobs = diff_ids
        .iter()
        .zip(&layers)
        .map(|(d, l)| (d.clone(), l.descriptor()))
        .collect();
    Ok((entries, blobs, true))
}

fn from_cache_config(
    bytes: &[u8],
    layers: &[&AnnotatedDescriptor],
    what: &str,
) -> Result<Found, String> {
    let cfg: CacheConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("{what}: invalid cache config: {e}"))?;
    let described: HashMap<Digest, RemoteBlob> = layers
        .iter()
        .filter_map(|l| {
            Some((
                l.digest.clone(),
                RemoteBlob {
                    desc: l.descriptor(),
                    diff_id: l.diff_id()?,
                },
            ))
        })
        .collect();
    let (entries, blobs) = format::parse_config(&cfg, &described);
    Ok((entries, blobs, false))
}

fn diff_ids(config: &serde_json::Value) -> Option<Vec<Digest>> {
    config["rootfs"]["diff_ids"]
        .as_array()?
        .iter()
        .map(|d| d.as_str().and_then(|s| Digest::parse(s).ok()))
        .collect()
}

/// The inline cache of an image config (none: no entries).
fn inline_entries(config: &[u8], layers: &[Digest]) -> Result<Vec<Entry>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("image config: {e}"))?;
    match v.get(INLINE_CACHE_KEY).and_then(|c| c.as_str()) {
        Some(s) => format::parse_inline(s, layers),
        None => Ok(Vec::new()),
    }
}
