//! `--cache-to`: this build's cache records and their layers, written to
//! a registry or an OCI layout directory as a cache manifest (an OCI
//! image manifest whose config is the cache config, media type
//! `application/vnd.buildkit.cacheconfig.v0`, and whose layers are the
//! layer blobs, each annotated with its diffID).
//!
//! `mode=min` exports the records of the final image's chain, `mode=max`
//! every step's. Layers are pushed as `kiln push` pushes them (gzip,
//! compressed once into the store; `HEAD` first; mounted from the base
//! image's repository when it is in the same registry); a layer that was
//! imported and never fetched is referenced where the registry already
//! has it, else fetched first. The manifest goes last.

use std::collections::HashMap;
use std::sync::Mutex;

use cache::registry::{self, Client, PushOptions};
use cache::{Descriptor, Digest, ImageRef, Store, media};

use super::super::error::{Error, Result};
use super::super::export::ExportedImage;
use super::super::{Solution, Solver};
use super::format::{self, CACHE_CONFIG_MEDIA_TYPE, Entry};
use super::layout;
use super::spec::{CacheTarget, ExportMode};
use super::{Origin, short};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Records exported.
    pub records: usize,
    /// Layer blobs the manifest lists.
    pub layers: usize,
    /// The cache manifest's digest.
    pub digest: Digest,
}

/// The records an export of `mode` holds.
pub(crate) fn select(entries: Vec<Entry>, image_layers: &[Digest], mode: ExportMode) -> Vec<Entry> {
    match mode {
        ExportMode::Max => entries,
        ExportMode::Min => entries
            .into_iter()
            .filter(|e| {
                e.layers.len() <= image_layers.len()
                    && image_layers[..e.layers.len()] == e.layers[..]
            })
            .collect(),
    }
}

/// Exports the cache of a solved build to `target` (`client` for
/// registries); `note` hears progress lines. `Ok(None)` for
/// `type=inline`, which the image itself carries.
pub fn export_cache(
    solver: &Solver,
    sol: &Solution,
    image: &ExportedImage,
    target: &CacheTarget,
    client: Option<&Client>,
    note: &(dyn Fn(&str) + Sync),
) -> Result<Option<ExportReport>> {
    let entries = select(
        sol.cache_entries(solver.opts.epoch),
        &image.layers,
        target.mode(),
    );
    let what = format!("exporting {}", target.label());
    let err = |message: String| Error::RemoteCache {
        what: what.clone(),
        message,
    };
    let mut order: Vec<Digest> = Vec::new();
    for e in &entries {
        for d in &e.layers {
            if !order.contains(d) {
                order.push(d.clone());
            }
        }
    }
    match target {
        CacheTarget::Inline => Ok(None),
        CacheTarget::Registry { reference, .. } => {
            let client = client.ok_or_else(|| err("no registry client".into()))?;
            let tag = reference.tag().unwrap_or("latest");
            let mount_from = base_repositories(solver, reference);
            let repo = client.repository_for_push(reference, &mount_from);
            let blobs =
                push_layers(solver, client, &repo, &order, &mount_from, note).map_err(|e| {
                    Error::RemoteCache {
                        what: what.clone(),
                        message: e.to_string(),
                    }
                })?;
            let (cfg_bytes, manifest) = manifests(&entries, &order, &blobs).map_err(&err)?;
            let (config_desc, _) = repo
                .push_blob_bytes(&cfg_bytes, CACHE_CONFIG_MEDIA_TYPE)
                .map_err(|e| err(e.to_string()))?;
            let manifest = manifest(&config_desc);
            let digest = repo
                .put_manifest(tag, &manifest, media::OCI_MANIFEST)
                .map_err(|e| err(e.to_string()))?;
            note(&format!(
                "pushed cache manifest {}@{digest} ({} records, {} layers)",
                reference.familiar_name(),
                entries.len(),
                order.len()
            ));
            Ok(Some(ExportReport {
                records: entries.len(),
                layers: order.len(),
                digest,
            }))
        }
        CacheTarget::Local { dir, tag, .. } => {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
            let mut blobs: HashMap<Digest, Descriptor> = HashMap::new();
            for d in &order {
                let desc = write_layer(solver, dir, d, note).map_err(&err)?;
                blobs.insert(d.clone(), desc);
            }
            let (cfg_bytes, manifest) = manifests(&entries, &order, &blobs).map_err(&err)?;
            let config_desc = Descriptor {
                media_type: CACHE_CONFIG_MEDIA_TYPE.into(),
                digest: Digest::of(&cfg_bytes),
                size: cfg_bytes.len() as u64,
            };
            layout::write_blob(dir, &config_desc.digest, &cfg_bytes[..]).map_err(&err)?;
            let manifest = manifest(&config_desc);
            let m = Descriptor {
                media_type: media::OCI_MANIFEST.into(),
                digest: Digest::of(&manifest),
                size: manifest.len() as u64,
            };
            layout::write_blob(dir, &m.digest, &manifest[..]).map_err(&err)?;
            layout::tag(dir, &m, tag).map_err(&err)?;
            note(&format!(
                "wrote cache manifest {} to {} ({} records, {} layers)",
                m.digest,
                dir.display(),
                entries.len(),
                order.len()
            ));
            Ok(Some(ExportReport {
                records: entries.len(),
                layers: order.len(),
                digest: m.digest,
            }))
        }
    }
}

type ManifestFn = Box<dyn Fn(&Descriptor) -> Vec<u8>>;

/// The cache config bytes, and a function making the manifest once the
/// config's descriptor is known.
fn manifests(
    entries: &[Entry],
    order: &[Digest],
    blobs: &HashMap<Digest, Descriptor>,
) -> std::result::Result<(Vec<u8>, ManifestFn), String> {
    let cfg = format::build_config(entries, blobs)?;
    let bytes = serde_json::to_vec(&cfg).map_err(|e| e.to_string())?;
    let mut layers: Vec<(Descriptor, Digest)> = Vec::new();
    for d in order {
        let b = blobs[d].clone();
        if !layers.iter().any(|(x, _)| x.digest == b.digest) {
            layers.push((b, d.clone()));
        }
    }
    Ok((
        bytes,
        Box::new(move |c: &Descriptor| format::build_manifest(c, &layers)),
    ))
}

/// Repositories of the target's registry that this build's base images
/// came from: blobs can be mounted from them.
fn base_repositories(solver: &Solver, target: &ImageRef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for b in solver.images.resolved() {
        if b.digest.is_none() {
            continue;
        }
        if let Ok(r) = ImageRef::parse(&b.reference)
            && r.registry() == target.registry()
            && r.repository() != target.repository()
            && !out.iter().any(|o| o == r.repository())
        {
            out.push(r.repository().to_string());
        }
    }
    out
}

/// Pushes (or finds in the registry) every layer; a few at once.
fn push_layers(
    solver: &Solver,
    client: &Client,
    repo: &registry::Repository<'_>,
    order: &[Digest],
    mount_from: &[String],
    note: &(dyn Fn(&str) + Sync),
) -> Result<HashMap<Digest, Descriptor>> {
    let out: Mutex<HashMap<Digest, Descriptor>> = Mutex::new(HashMap::new());
    let queue: Mutex<Vec<&Digest>> = Mutex::new(order.iter().rev().collect());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let workers = client.options().parallel.clamp(1, order.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                        return;
                    }
                    let Some(d) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return;
                    };
                    match push_one(solver, repo, d, mount_from, note) {
                        Ok(desc) => {
                            out.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(d.clone(), desc);
                        }
                        Err(e) => {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(out.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn push_one(
    solver: &Solver,
    repo: &registry::Repository<'_>,
    d: &Digest,
    mount_from: &[String],
    note: &(dyn Fn(&str) + Sync),
) -> Result<Descriptor> {
    let store: &Store = &solver.store;
    let reg_err = |e: registry::Error| Error::Registry {
        reference: format!("layer {d} to {}", repo.full_name()),
        source: Box::new(e),
    };
    let mut layer = store.layer(d)?;
    if layer.is_none()
        && let Some(rc) = &solver.remote
    {
        // Imported, never fetched: the registry may have it already.
        if let Some((desc, Origin::Registry(_))) = rc.remote_blob(d)
            && repo.blob_exists(&desc.digest).map_err(reg_err)?.is_some()
        {
            return Ok(desc.clone());
        }
        rc.ensure(store, std::slice::from_ref(d), note)?;
        layer = store.layer(d)?;
    }
    let layer = layer.ok_or_else(|| Error::Store(cache::Error::LayerNotFound(d.to_string())))?;
    let desc = registry::push_layer(
        store,
        repo,
        &layer,
        None,
        mount_from,
        &PushOptions::default(),
    )
    .map_err(reg_err)?;
    note(&format!("layer {} as {}", short(d), short(&desc.digest)));
    Ok(desc)
}

/// Writes one layer's blob into a layout: a compressed blob the store
/// has, else the uncompressed tar.
fn write_layer(
    solver: &Solver,
    dir: &std::path::Path,
    d: &Digest,
    note: &(dyn Fn(&str) + Sync),
) -> std::result::Result<Descriptor, String> {
    let store: &Store = &solver.store;
    let mut layer = store.layer(d).map_err(|e| e.to_string())?;
    if layer.is_none()
        && let Some(rc) = &solver.remote
    {
        if let Some((desc, Origin::Layout(src))) = rc.remote_blob(d)
            && src == dir
            && layout::blob_path(dir, &desc.digest).exists()
        {
            return Ok(desc.clone());
        }
        rc.ensure(store, std::slice::from_ref(d), note)
            .map_err(|e| e.to_string())?;
        layer = store.layer(d).map_err(|e| e.to_string())?;
    }
    let layer = layer.ok_or_else(|| format!("layer {d} is not in the store"))?;
    let plain = |t: &str| t == media::OCI_LAYER || t == media::DOCKER_LAYER;
    if let Some(b) = layer
        .blobs
        .iter()
        .find(|b| !plain(&b.media_type) && store.has_blob(&b.digest))
    {
        let f = store.open_blob(&b.digest).map_err(|e| e.to_string())?;
        layout::write_blob(
            dir,
            &b.digest,
            std::io::BufReader::with_capacity(1 << 17, f),
        )?;
        let mut desc = b.clone();
        if desc.media_type == media::DOCKER_LAYER_GZIP {
            desc.media_type = media::OCI_LAYER_GZIP.into();
        }
        return Ok(desc);
    }
    let tar = store.layer_tar(d).map_err(|e| e.to_string())?;
    layout::write_blob(dir, d, tar)?;
    Ok(Descriptor {
        media_type: media::OCI_LAYER.into(),
        digest: d.clone(),
        size: layer.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_keeps_the_image_chain_only() {
        let d = |n: u8| Digest::of(&[n]);
        let e = |k: &str, l: &[u8]| Entry {
            key: k.into(),
            layers: l.iter().map(|n| d(*n)).collect(),
            created: String::new(),
        };
        let all = vec![
            e("a", &[1]),
            e("b", &[1, 2]),
            e("c", &[7, 8]),
            e("d", &[1, 2, 3]),
        ];
        let image = [d(1), d(2), d(3)];
        let keys = |v: Vec<Entry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(
            keys(select(all.clone(), &image, ExportMode::Min)),
            ["a", "b", "d"]
        );
        assert_eq!(
            keys(select(all, &image, ExportMode::Max)),
            ["a", "b", "c", "d"]
        );
    }
}
