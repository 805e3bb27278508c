//! Images and tags: put, look up, list, tag, untag, remove.
//!
//! An image is a config blob (its digest is the image ID, as with docker),
//! a manifest blob and the diffIDs of its layers. Tags map a full
//! normalised reference to an image ID; a tag moved to a new image leaves
//! the old one *dangling* (`<none>`), as docker does. Removing an image
//! removes, in the same critical section, every blob and layer nothing
//! else references (see [`crate::gc`]).

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::gc::Candidates;
use crate::layers::get_layer;
use crate::meta::{Reader, Table, WriteTx};
use crate::records::{Descriptor, Image, ImageRecord, Layer, decode, encode, media, now_unix};
use crate::reference::ImageRef;
use crate::store::{LeaseKind, Store};

/// Configs and manifests larger than this are refused.
pub const METADATA_LIMIT: u64 = 16 << 20;

/// An image to store.
#[derive(Debug, Clone, Default)]
pub struct NewImage<'a> {
    /// The config, exactly as it is to be stored (its sha256 is the ID).
    pub config: &'a [u8],
    /// diffIDs of its layers (all known to the store), bottom first; must
    /// equal the config's `rootfs.diff_ids`.
    pub layers: &'a [Digest],
    /// The manifest, if it must be kept as is (pulled or loaded images);
    /// otherwise an OCI manifest is written.
    pub manifest: Option<&'a [u8]>,
    /// Tags to point at the image (moved from other images).
    pub tags: &'a [ImageRef],
    /// `name@digest` references to remember (pulled images).
    pub repo_digests: &'a [String],
}

/// What [`Store::remove_image`] did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag was removed.
    Untagged(ImageRef),
    /// An image was deleted.
    Deleted(Digest),
}

impl Store {
    /// Stores an image (config + manifest blobs and the record) and points
    /// `tags` at it, all or nothing.
    pub fn put_image(&self, img: &NewImage<'_>) -> Result<Image> {
        let id = Digest::of(img.config);
        let config = ImageConfig::parse(img.config, &id)?;
        let diff_ids = config.diff_ids(&id)?;
        if diff_ids != img.layers {
            return Err(Error::InvalidImage {
                what: format!("config {id}"),
                reason: format!(
                    "rootfs.diff_ids ({}) do not match the image's layers ({})",
                    join(&diff_ids),
                    join(img.layers)
                ),
            });
        }
        let layers: Vec<Layer> = self.meta.read(|r| {
            img.layers
                .iter()
                .map(|d| get_layer(r, d)?.ok_or_else(|| Error::LayerNotFound(d.to_string())))
                .collect()
        })?;
        let config_desc = Descriptor {
            media_type: media::OCI_CONFIG.to_string(),
            digest: id.clone(),
            size: img.config.len() as u64,
        };
        let (manifest_bytes, manifest_media) = match img.manifest {
            Some(m) => {
                let media = check_manifest(m, &id, &layers)?;
                (m.to_vec(), media)
            }
            None => (
                oci_manifest(&config_desc, &layers),
                media::OCI_MANIFEST.to_string(),
            ),
        };
        self.put_blob_bytes(img.config)?;
        let manifest_digest = self.put_blob_bytes(&manifest_bytes)?;
        let manifest = Descriptor {
            media_type: manifest_media,
            digest: manifest_digest,
            size: manifest_bytes.len() as u64,
        };
        let record = ImageRecord {
            manifest,
            config: config_desc,
            layers: img.layers.to_vec(),
            repo_digests: img.repo_digests.to_vec(),
            created: config.created().map(str::to_string),
            added: now_unix(),
            size: layers.iter().map(|l| l.size).sum(),
        };
        let mut blobs: Vec<&Digest> = vec![&record.manifest.digest, &id];
        for l in &layers {
            // A lazy layer's tar is written when needed; its recipe's
            // layers are kept with it.
            blobs.extend(
                l.blobs
                    .iter()
                    .map(|b| &b.digest)
                    .filter(|d| !l.is_lazy_blob(d)),
            );
        }
        self.meta.write(|w| {
            // Under the lock, so no collector can remove them meanwhile.
            for b in &blobs {
                if !self.has_blob(b) {
                    return Err(Error::BlobNotFound(b.to_string()));
                }
            }
            for d in img.layers {
                if get_layer(w, d)?.is_none() {
                    return Err(Error::LayerNotFound(d.to_string()));
                }
            }
            let mut rec = record.clone();
            if let Some(old) = w.get(Table::Images, id.as_str())? {
                let old: ImageRecord = decode(id.as_str(), &old)?;
                for rd in old.repo_digests {
                    if !rec.repo_digests.contains(&rd) {
                        rec.repo_digests.push(rd);
                    }
                }
            }
            w.put(Table::Images, id.as_str(), &encode(&rec))?;
            for t in img.tags {
                w.put(Table::Tags, &tag_key(t)?, id.as_bytes())?;
            }
            let mut done: Vec<(LeaseKind, &Digest)> =
                blobs.iter().map(|b| (LeaseKind::Blob, *b)).collect();
            done.extend(img.layers.iter().map(|d| (LeaseKind::Layer, d)));
            self.unlease_in(w, &done)
        })?;
        self.image(id.as_str())
    }

    /// Finds an image by reference (`busybox`, `busybox:1`,
    /// `name@sha256:…`), full ID (`sha256:…` or 64 hex) or unique ID
    /// prefix.
    pub fn image(&self, s: &str) -> Result<Image> {
        self.meta.read(|r| resolve(r, s))
    }

    /// All images, newest first, each with its tags.
    pub fn images(&self) -> Result<Vec<Image>> {
        self.meta.read(|r| {
            let tags = tags_by_image(r)?;
            let mut out = Vec::new();
            for (k, v) in r.scan(Table::Images, "")? {
                let id = Digest::parse(&k)?;
                let rec: ImageRecord = decode(&k, &v)?;
                let t = tags.get(&id).cloned().unwrap_or_default();
                out.push(Image::from_record(id, rec, t));
            }
            out.sort_by(|a, b| {
                b.created
                    .cmp(&a.created)
                    .then(b.added.cmp(&a.added))
                    .then(a.id.cmp(&b.id))
            });
            Ok(out)
        })
    }

    /// The config bytes of an image.
    pub fn image_config(&self, img: &Image) -> Result<Vec<u8>> {
        self.read_blob(&img.config.digest, METADATA_LIMIT)
    }

    /// The manifest bytes of an image.
    pub fn image_manifest(&self, img: &Image) -> Result<Vec<u8>> {
        self.read_blob(&img.manifest.digest, METADATA_LIMIT)
    }

    /// Points `target` at the image `source` refers to.
    pub fn tag(&self, source: &str, target: &ImageRef) -> Result<Image> {
        let key = tag_key(target)?;
        let id = self.meta.write(|w| {
            let img = resolve(w, source)?;
            w.put(Table::Tags, &key, img.id.as_bytes())?;
            touch(w, &img.id)?;
            Ok(img.id)
        })?;
        self.image(id.as_str())
    }

    /// Removes a tag and returns the image it pointed at. The image stays,
    /// dangling if this was its last tag (use [`Store::remove_image`] to
    /// delete it as `rmi` does).
    pub fn untag(&self, tag: &ImageRef) -> Result<Digest> {
        let key = tag_key(tag)?;
        self.meta.write(|w| {
            let v = w
                .get(Table::Tags, &key)?
                .ok_or_else(|| Error::ImageNotFound(tag.familiar()))?;
            w.delete(Table::Tags, &key)?;
            std::str::from_utf8(&v)
                .ok()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| Error::CorruptRecord {
                    key: format!("tags/{key}"),
                    message: "not an image ID".into(),
                })
        })
    }

    /// Removes an image reference: a tag is untagged (and the image
    /// deleted when it was its last tag); an ID deletes the image with all
    /// its tags, which needs `force` when it has several. Unreferenced
    /// blobs and layers go with it.
    pub fn remove_image(&self, s: &str, force: bool) -> Result<Vec<Removed>> {
        let trash = self.meta.write(|w| {
            let img = resolve(w, s)?;
            let mut events = Vec::new();
            let by_tag = ImageRef::parse(s)
                .ok()
                .filter(|r| r.tag().is_some() && img.tags.contains(r));
            let remaining: Vec<ImageRef> = match &by_tag {
                Some(r) => {
                    w.delete(Table::Tags, &r.to_string())?;
                    events.push(Removed::Untagged(r.clone()));
                    img.tags.iter().filter(|t| *t != r).cloned().collect()
                }
                None => {
                    if img.tags.len() > 1 && !force {
                        return Err(Error::Conflict(format!(
                            "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            img.id.short()
                        )));
                    }
                    for t in &img.tags {
                        w.delete(Table::Tags, &t.to_string())?;
                        events.push(Removed::Untagged(t.clone()));
                    }
                    Vec::new()
                }
            };
            if !remaining.is_empty() {
                return Ok((events, Vec::new()));
            }
            w.delete(Table::Images, img.id.as_str())?;
            events.push(Removed::Deleted(img.id.clone()));
            let mut cand = Candidates::default();
            cand.blobs.insert(img.manifest.digest.clone());
            cand.blobs.insert(img.config.digest.clone());
            cand.layers.extend(img.layers.iter().cloned());
            let trash = self.sweep(w, Some(cand))?;
            Ok((events, trash.dirs))
        });
        let (events, dirs) = trash?;
        crate::gc::empty_trash(dirs);
        Ok(events)
    }
}

/// The key of a tag in the tags table; refuses digest references.
fn tag_key(r: &ImageRef) -> Result<String> {
    if r.tag().is_none() {
        return Err(Error::InvalidReference {
            reference: r.to_string(),
            reason: "a tag is needed here, not a digest".into(),
        });
    }
    Ok(r.to_string())
}

fn join(ds: &[Digest]) -> String {
    ds.iter()
        .map(Digest::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Updates the image's `added` time (docker's LastTagTime).
fn touch(w: &WriteTx<'_>, id: &Digest) -> Result<()> {
    if let Some(v) = w.get(Table::Images, id.as_str())? {
        let mut rec: ImageRecord = decode(id.as_str(), &v)?;
        rec.added = now_unix();
        w.put(Table::Images, id.as_str(), &encode(&rec))?;
    }
    Ok(())
}

/// Every image's tags, sorted.
pub(crate) fn tags_by_image(r: &impl Reader) -> Result<BTreeMap<Digest, Vec<ImageRef>>> {
    let mut m: BTreeMap<Digest, Vec<ImageRef>> = BTreeMap::new();
    for (k, v) in r.scan(Table::Tags, "")? {
        let id = std::str::from_utf8(&v)
            .ok()
            .and_then(|s| Digest::parse(s).ok())
            .ok_or_else(|| Error::CorruptRecord {
                key: format!("tags/{k}"),
                message: "not an image ID".into(),
            })?;
        let r = ImageRef::parse(&k)?;
        m.entry(id).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.to_string());
    }
    Ok(m)
}

fn load_image(r: &impl Reader, id: &Digest) -> Result<Option<Image>> {
    let Some(v) = r.get(Table::Images, id.as_str())? else {
        return Ok(None);
    };
    let rec: ImageRecord = decode(id.as_str(), &v)?;
    let prefix_tags = tags_by_image(r)?.remove(id).unwrap_or_default();
    Ok(Some(Image::from_record(id.clone(), rec, prefix_tags)))
}

/// Resolves a reference, an ID or an ID prefix.
pub(crate) fn resolve(r: &impl Reader, s: &str) -> Result<Image> {
    let not_found = || Error::ImageNotFound(s.to_string());
    // Full ID.
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if crate::digest::is_hex64(hex) {
        let id = Digest::from_hex(hex)?;
        return load_image(r, &id)?.ok_or_else(not_found);
    }
    // A reference.
    let parsed = ImageRef::parse(s);
    if let Ok(rf) = &parsed {
        if rf.tag().is_some() {
            if let Some(v) = r.get(Table::Tags, &rf.to_string())? {
                let id = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| Digest::parse(s).ok())
                    .ok_or_else(not_found)?;
                return load_image(r, &id)?.ok_or_else(not_found);
            }
        } else if let Some(d) = rf.digest() {
            let want = format!("{}@{d}", rf.name());
            for (k, v) in r.scan(Table::Images, "")? {
                let rec: ImageRecord = decode(&k, &v)?;
                if rec.repo_digests.contains(&want) || &rec.manifest.digest == d {
                    let id = Digest::parse(&k)?;
                    return load_image(r, &id)?.ok_or_else(not_found);
                }
            }
            return Err(not_found());
        }
    }
    // A unique ID prefix.
    let is_prefix = !hex.is_empty()
        && hex.len() < 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_prefix {
        let mut hits = HashSet::new();
        for (k, _) in r.scan(Table::Images, &format!("sha256:{hex}"))? {
            hits.insert(k);
        }
        match hits.len() {
            0 => {}
            1 => {
                let id = Digest::parse(hits.iter().next().expect("one"))?;
                return load_image(r, &id)?.ok_or_else(not_found);
            }
            n => {
                return Err(Error::AmbiguousImageId {
                    prefix: s.to_string(),
                    count: n,
                });
            }
        }
    }
    match parsed {
        Err(e) if !is_prefix => Err(e),
        _ => Err(not_found()),
    }
}

/// Checks a given manifest against the image; returns its media type.
fn check_manifest(m: &[u8], id: &Digest, layers: &[Layer]) -> Result<String> {
    let md = Digest::of(m);
    let bad = |reason: String| Error::InvalidImage {
        what: format!("manifest {md}"),
        reason,
    };
    let parsed = crate::oci::parse_manifest(m, &format!("manifest {md}"))?;
    let media_type = parsed.media_type.clone();
    if &parsed.config.digest != id {
        return Err(bad(format!(
            "its config is {}, not {id}",
            parsed.config.digest
        )));
    }
    if parsed.layers.len() != layers.len() {
        return Err(bad(format!(
            "it lists {} layers, the config {}",
            parsed.layers.len(),
            layers.len()
        )));
    }
    for (i, (d, l)) in parsed.layers.iter().zip(layers).enumerate() {
        if !l.blobs.iter().any(|b| b.digest == d.digest) {
            return Err(bad(format!(
                "layer {i} is blob {}, which is not known to hold layer {}",
                d.digest, l.diff_id
            )));
        }
    }
    Ok(media_type)
}

/// An OCI manifest for `config` and the preferred blob of each layer.
pub(crate) fn oci_manifest(config: &Descriptor, layers: &[Layer]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| {
            let b = l.blob();
            json!({"mediaType": oci_layer_type(&b.media_type), "digest": b.digest, "size": b.size})
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": layers,
    }))
    .expect("manifest serialises")
}

/// The OCI layer media type equivalent to a docker one.
fn oci_layer_type(t: &str) -> &str {
    match t {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP,
        media::DOCKER_LAYER => media::OCI_LAYER,
        other => other,
    }
}

trait AsBytes {
    fn as_bytes(&self) -> &[u8];
}

impl AsBytes for Digest {
    fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{image, ls, store};

    #[test]
    fn resolve_by_reference_id_and_prefix() {
        let (_t, s) = store();
        let img = image(
            &s,
            &[testkit::busybox_layer()],
            &["busybox:latest"],
            "2023-01-01T00:00:00Z",
        );
        for q in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox",
            img.id.as_str(),
            img.id.hex(),
            img.id.short(),
            &img.id.hex()[..4],
        ] {
            assert_eq!(s.image(q).unwrap().id, img.id, "{q}");
        }
        let by_digest = format!("busybox@{}", img.manifest.digest);
        assert_eq!(s.image(&by_digest).unwrap().id, img.id);
        assert!(matches!(s.image("alpine"), Err(Error::ImageNotFound(_))));
        assert!(matches!(
            s.image("Bad:Ref"),
            Err(Error::InvalidReference { .. })
        ));
        assert_eq!(img.tags[0].familiar(), "busybox:latest");
        assert_eq!(img.size, testkit::busybox_layer().len() as u64);
    }

    #[test]
    fn tags_move_and_leave_dangling_images() {
        let (_t, s) = store();
        let a = image(
            &s,
            &[testkit::busybox_layer()],
            &["app:1"],
            "2023-01-01T00:00:00Z",
        );
        let layer2 = testkit::rawtar::raw_tar(&[testkit::rawtar::RawEntry::file("x", b"x")]);
        let b = image(
            &s,
            &[testkit::busybox_layer(), layer2],
            &["app:1"],
            "2024-01-01T00:00:00Z",
        );
        let list = s.images().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, b.id, "newest first");
        assert!(list[1].tags.is_empty(), "a is dangling now");
        s.tag(a.id.short(), &ImageRef::parse("app:old").unwrap())
            .unwrap();
        assert_eq!(s.image("app:old").unwrap().id, a.id);
    }

    #[test]
    fn remove_untags_then_deletes_and_collects() {
        let (_t, s) = store();
        let img = image(
            &s,
            &[testkit::busybox_layer()],
            &["a:1", "b:1"],
            "2023-01-01T00:00:00Z",
        );
        let e = s.remove_image(img.id.short(), false).unwrap_err();
        assert!(e.to_string().contains("must be forced"), "{e}");
        let r = s.remove_image("a:1", false).unwrap();
        assert_eq!(r, vec![Removed::Untagged(ImageRef::parse("a:1").unwrap())]);
        assert!(s.has_blob(&img.config.digest));
        let dir = s.unpacked_dir(&img.layers[0]).unwrap();
        let r = s.remove_image("b:1", false).unwrap();
        assert_eq!(r.last(), Some(&Removed::Deleted(img.id.clone())));
        assert!(!s.has_blob(&img.config.digest));
        // This process still leases the layer it unpacked above (it may be
        // a lowerdir of a running build) until its store is closed; then a
        // prune collects it.
        assert!(dir.exists());
        drop(s);
        let s = Store::open(_t.path().join("root")).unwrap();
        s.prune(Default::default()).unwrap();
        assert!(
            ls(&s.layout.blobs()).is_empty(),
            "{:?}",
            ls(&s.layout.blobs())
        );
        assert!(ls(&s.layout.layers()).is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn shared_layers_survive_removal_of_one_image() {
        let (_t, s) = store();
        let a = image(
            &s,
            &[testkit::busybox_layer()],
            &["a:1"],
            "2023-01-01T00:00:00Z",
        );
        drop(s);
        let s = Store::open(_t.path().join("root")).unwrap();
        let extra = testkit::rawtar::raw_tar(&[testkit::rawtar::RawEntry::file("x", b"x")]);
        let b = image(
            &s,
            &[testkit::busybox_layer(), extra],
            &["b:1"],
            "2023-01-01T00:00:00Z",
        );
        drop(s);
        let s = Store::open(_t.path().join("root")).unwrap();
        s.remove_image("a:1", false).unwrap();
        assert!(!s.has_blob(&a.config.digest));
        let l = s.layer(&b.layers[0]).unwrap().unwrap();
        assert!(s.has_blob(&l.blob().digest), "shared layer blob kept");
        assert!(s.has_blob(&b.manifest.digest));
    }

    #[test]
    fn put_image_checks_consistency() {
        let (_t, s) = store();
        let l = s
            .ingest_layer(&testkit::busybox_layer()[..], Default::default())
            .unwrap();
        let other = Digest::of(b"x");
        let cfg = crate::testutil::config_for(std::slice::from_ref(&other), "2023-01-01T00:00:00Z");
        let e = s
            .put_image(&NewImage {
                config: &cfg,
                layers: std::slice::from_ref(&l.diff_id),
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("do not match"), "{e}");
        let e = s
            .put_image(&NewImage {
                config: &cfg,
                layers: &[other],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(e, Error::LayerNotFound(_)), "{e}");
        let cfg =
            crate::testutil::config_for(std::slice::from_ref(&l.diff_id), "2023-01-01T00:00:00Z");
        let bad_manifest = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
        let e = s
            .put_image(&NewImage {
                config: &cfg,
                layers: std::slice::from_ref(&l.diff_id),
                manifest: Some(bad_manifest),
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("its config is"), "{e}");
    }
}
