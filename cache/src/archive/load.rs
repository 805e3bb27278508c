//! `kiln load`: reading image archives in one streaming pass.
//!
//! Member order is arbitrary (`manifest.json` usually comes last), so every
//! file member that may be a blob is stored as one while it streams past —
//! hashed, its diffID computed if it is compressed, and checked as a layer
//! tar — and only the small metadata files are kept in memory. Once the
//! archive ends, `manifest.json` (docker-archive) or `index.json` (OCI
//! layout) says which members are configs and layers; every digest and
//! diffID is verified against them, and only then are the images recorded,
//! each in one transaction. On any error, the blobs this load added are
//! removed again.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;

use crate::archive::clean_member;
use crate::blobs::verify;
use crate::compression::Compression;
use crate::config::ImageConfig;
use crate::digest::{Digest, is_hex64};
use crate::error::{Error, Result};
use crate::images::{METADATA_LIMIT, NewImage};
use crate::oci::{self, IndexEntry, Manifest};
use crate::records::Descriptor;
use crate::reference::ImageRef;
use crate::store::Store;

/// An image that was loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its ID.
    pub id: Digest,
    /// The tags it got from the archive (may be empty).
    pub tags: Vec<ImageRef>,
}

/// A file member stored as a blob.
#[derive(Debug)]
struct Member {
    digest: Digest,
    size: u64,
    diff_id: Digest,
    usize: u64,
    compression: Compression,
    /// Why the member is not an acceptable layer tar, if it is not.
    scan: std::result::Result<(), String>,
}

/// Metadata members kept in memory.
const META_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

#[derive(Default)]
struct Archive {
    members: HashMap<String, Member>,
    links: HashMap<String, String>,
    meta: HashMap<String, Vec<u8>>,
    /// Blobs this load added to the store (to remove on failure).
    added: Vec<Digest>,
}

/// An image ready to be recorded.
struct Plan {
    config: Vec<u8>,
    layers: Vec<(Digest, Descriptor, u64)>,
    manifest: Option<Vec<u8>>,
    tags: Vec<ImageRef>,
}

/// Loads every image of a docker-archive or OCI-layout tar read from `r`.
pub fn load(store: &Store, r: impl Read) -> Result<Vec<Loaded>> {
    let mut a = Archive::default();
    let result = read_members(store, r, &mut a)
        .and_then(|()| plan(store, &a))
        .and_then(|plans| commit(store, plans));
    if result.is_err() {
        let layers: Vec<Digest> = a.members.values().map(|m| m.diff_id.clone()).collect();
        if let Err(e) = store.discard(&a.added, &layers) {
            tracing::warn!("cleaning up after a failed load: {e}");
        }
    }
    result
}

fn read_members(store: &Store, r: impl Read, a: &mut Archive) -> Result<()> {
    let mut tar = tar::Archive::new(r);
    let entries = tar
        .entries()
        .map_err(|e| Error::InvalidArchive(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Error::InvalidArchive(format!("reading the tar: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = clean_member(&raw) else {
            return Err(Error::InvalidArchive(format!(
                "member {raw:?} points outside the archive"
            )));
        };
        let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let kind = entry.header().entry_type();
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let joined = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                    format!("{dir}/{target}")
                } else {
                    target
                };
                let t = clean_member(&joined).ok_or_else(|| {
                    Error::InvalidArchive(format!("member {raw:?} links outside the archive"))
                })?;
                a.links.insert(name, t);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if META_FILES.contains(&name.as_str()) {
                    if entry.size() > METADATA_LIMIT {
                        return Err(Error::InvalidArchive(format!("{name} is too large")));
                    }
                    let mut v = Vec::new();
                    entry
                        .read_to_end(&mut v)
                        .map_err(|e| Error::InvalidArchive(format!("reading {name}: {e}")))?;
                    a.meta.insert(name, v);
                } else if name.ends_with("/VERSION") || name.ends_with("/json") {
                    // Legacy v1 metadata: not needed.
                } else {
                    let label = format!("archive member {name}");
                    let expected = entry.size();
                    let lb = store.write_layer_blob(&mut entry, &label)?;
                    if lb.pending.size != expected {
                        return Err(Error::InvalidArchive(format!(
                            "truncated: member {name} ends after {} of its {expected} bytes",
                            lb.pending.size
                        )));
                    }
                    if let Some(hex) = named_digest(&name) {
                        verify(&Digest::from_hex(hex)?, &lb.pending.digest, &label)?;
                    }
                    let existed = store.has_blob(&lb.pending.digest);
                    let member = Member {
                        digest: lb.pending.digest.clone(),
                        size: lb.pending.size,
                        diff_id: lb.diff_id.clone(),
                        usize: lb.size,
                        compression: lb.compression,
                        scan: lb.scan.map_err(|e| e.to_string()),
                    };
                    store.commit_blob(lb.pending)?;
                    if !existed {
                        a.added.push(member.digest.clone());
                    }
                    a.members.insert(name, member);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The hex a member name claims as its digest: `blobs/sha256/<hex>` or a
/// legacy `<hex>.json` config.
fn named_digest(name: &str) -> Option<&str> {
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Some(hex).filter(|h| is_hex64(h));
    }
    name.strip_suffix(".json").filter(|h| is_hex64(h))
}

impl Archive {
    fn member(&self, name: &str) -> Result<&Member> {
        let mut n = clean_member(name)
            .ok_or_else(|| Error::InvalidArchive(format!("{name:?} points outside the archive")))?;
        for _ in 0..16 {
            if let Some(m) = self.members.get(&n) {
                return Ok(m);
            }
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        Err(Error::InvalidArchive(format!(
            "{name} is referenced but not in the archive"
        )))
    }

    fn blob_member(&self, d: &Descriptor) -> Result<&Member> {
        let m = self.member(&format!("blobs/sha256/{}", d.digest.hex()))?;
        if m.size != d.size {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", d.digest),
                expected: d.size,
                actual: m.size,
            });
        }
        Ok(m)
    }
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn plan(store: &Store, a: &Archive) -> Result<Vec<Plan>> {
    let oci = match a.meta.get("index.json") {
        Some(bytes) => Some(oci_manifests(store, a, bytes)?),
        None => None,
    };
    if let Some(bytes) = a.meta.get("manifest.json") {
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidArchive(format!("manifest.json: {e}")))?;
        let mut plans = Vec::new();
        for e in entries {
            plans.push(plan_docker(store, a, &e, oci.as_deref().unwrap_or(&[]))?);
        }
        return Ok(plans);
    }
    match oci {
        Some(list) => list.into_iter().map(|o| plan_oci(store, a, o)).collect(),
        None => Err(Error::InvalidArchive(
            "neither manifest.json nor index.json found: not a docker-archive or OCI image layout"
                .into(),
        )),
    }
}

/// A manifest found through `index.json`, with the name its annotations give.
struct OciImage {
    bytes: Vec<u8>,
    manifest: Manifest,
    name: Option<ImageRef>,
}

fn oci_manifests(store: &Store, a: &Archive, index: &[u8]) -> Result<Vec<OciImage>> {
    let entries =
        oci::parse_index(index, "index.json").map_err(|e| Error::InvalidArchive(e.to_string()))?;
    let mut out = Vec::new();
    for e in &entries {
        collect_manifest(store, a, e, name_of(e)?, &mut out, 0)?;
    }
    Ok(out)
}

fn name_of(e: &IndexEntry) -> Result<Option<ImageRef>> {
    if let Some(n) = e.annotations.get("io.containerd.image.name") {
        return ImageRef::parse(n).map(Some);
    }
    match e.annotations.get("org.opencontainers.image.ref.name") {
        // A full reference; a bare tag names no repository.
        Some(n) if n.contains('/') || n.contains(':') => ImageRef::parse(n).map(Some),
        _ => Ok(None),
    }
}

fn collect_manifest(
    store: &Store,
    a: &Archive,
    e: &IndexEntry,
    name: Option<ImageRef>,
    out: &mut Vec<OciImage>,
    depth: usize,
) -> Result<()> {
    let desc = &e.descriptor;
    let m = a.blob_member(desc)?;
    let bytes = store.read_blob(&m.digest, METADATA_LIMIT)?;
    let what = format!("blob {}", desc.digest);
    if oci::is_index(&bytes) {
        if depth > 4 {
            return Err(Error::InvalidArchive(
                "image indexes nested too deeply".into(),
            ));
        }
        let entries =
            oci::parse_index(&bytes, &what).map_err(|e| Error::InvalidArchive(e.to_string()))?;
        let arch = host_arch();
        let pick: Vec<&IndexEntry> = if entries.len() == 1 {
            entries.iter().collect()
        } else {
            entries
                .iter()
                .filter(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|(os, ar)| os == "linux" && ar == arch)
                })
                .take(1)
                .collect()
        };
        if pick.is_empty() {
            return Err(Error::InvalidArchive(format!(
                "index {} has no manifest for linux/{arch}",
                desc.digest
            )));
        }
        for m in pick {
            collect_manifest(store, a, m, name.clone(), out, depth + 1)?;
        }
        return Ok(());
    }
    let manifest =
        oci::parse_manifest(&bytes, &what).map_err(|e| Error::InvalidArchive(e.to_string()))?;
    out.push(OciImage {
        bytes,
        manifest,
        name,
    });
    Ok(())
}

fn read_config(store: &Store, m: &Member, what: &str) -> Result<(Vec<u8>, Vec<Digest>)> {
    let config = store.read_blob(&m.digest, METADATA_LIMIT)?;
    let cfg = ImageConfig::parse(&config, &m.digest)
        .map_err(|e| Error::InvalidArchive(format!("{what}: {e}")))?;
    let diff_ids = cfg.diff_ids(&m.digest)?;
    Ok((config, diff_ids))
}

/// Checks a layer member against the diffID the config expects.
fn check_layer(m: &Member, want: &Digest, what: &str) -> Result<()> {
    if let Err(e) = &m.scan {
        return Err(Error::InvalidArchive(e.clone()));
    }
    verify(
        want,
        &m.diff_id,
        &format!("{what} (diffID from the image config)"),
    )
}

fn plan_docker(
    store: &Store,
    a: &Archive,
    e: &DockerManifestEntry,
    oci: &[OciImage],
) -> Result<Plan> {
    let cm = a.member(&e.config)?;
    let (config, diff_ids) = read_config(store, cm, &e.config)?;
    if diff_ids.len() != e.layers.len() {
        return Err(Error::InvalidArchive(format!(
            "manifest.json lists {} layers for {}, its config has {} diffIDs",
            e.layers.len(),
            e.config,
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (path, want) in e.layers.iter().zip(&diff_ids) {
        let m = a.member(path)?;
        check_layer(m, want, &format!("layer {path}"))?;
        let desc = Descriptor {
            media_type: m.compression.oci_layer_media_type().to_string(),
            digest: m.digest.clone(),
            size: m.size,
        };
        layers.push((m.diff_id.clone(), desc, m.usize));
    }
    // Docker 25+ archives also hold the OCI manifest: keep it (and its
    // digest) when it describes exactly these blobs.
    let mut manifest = None;
    for o in oci {
        let same = o.manifest.config.digest == cm.digest
            && o.manifest.layers.len() == layers.len()
            && o.manifest
                .layers
                .iter()
                .zip(&layers)
                .all(|(d, l)| d.digest == l.1.digest);
        if same {
            for (d, l) in o.manifest.layers.iter().zip(layers.iter_mut()) {
                l.1.media_type = d.media_type.clone();
            }
            manifest = Some(o.bytes.clone());
            break;
        }
    }
    let mut tags = Vec::new();
    for t in e.repo_tags.iter().flatten() {
        tags.push(
            ImageRef::parse(t)
                .map_err(|err| Error::InvalidArchive(format!("manifest.json RepoTags: {err}")))?,
        );
    }
    Ok(Plan {
        config,
        layers,
        manifest,
        tags,
    })
}

fn plan_oci(store: &Store, a: &Archive, o: OciImage) -> Result<Plan> {
    let cm = a.blob_member(&o.manifest.config)?;
    let (config, diff_ids) =
        read_config(store, cm, &format!("config {}", o.manifest.config.digest))?;
    if diff_ids.len() != o.manifest.layers.len() {
        return Err(Error::InvalidArchive(format!(
            "manifest lists {} layers, its config has {} diffIDs",
            o.manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (d, want) in o.manifest.layers.iter().zip(&diff_ids) {
        let m = a.blob_member(d)?;
        check_layer(m, want, &format!("layer blobs/sha256/{}", d.digest.hex()))?;
        layers.push((m.diff_id.clone(), d.clone(), m.usize));
    }
    Ok(Plan {
        config,
        layers,
        manifest: Some(o.bytes),
        tags: o.name.filter(|n| n.tag().is_some()).into_iter().collect(),
    })
}

fn commit(store: &Store, plans: Vec<Plan>) -> Result<Vec<Loaded>> {
    let mut out = Vec::new();
    for p in plans {
        let mut diff_ids = Vec::new();
        for (diff_id, desc, usize) in &p.layers {
            store.register_layer(diff_id, desc.clone(), *usize)?;
            diff_ids.push(diff_id.clone());
        }
        let img = store.put_image(&NewImage {
            config: &p.config,
            layers: &diff_ids,
            manifest: p.manifest.as_deref(),
            tags: &p.tags,
            repo_digests: &[],
        })?;
        out.push(Loaded {
            id: img.id,
            tags: p.tags,
        });
    }
    Ok(out)
}

/// The OCI architecture name of this machine.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
