//! `kiln save`: one tar that is both a docker-archive and an OCI layout.
//!
//! Layout, as Docker 25+ writes it: `blobs/sha256/<hex>` for every layer,
//! config and manifest blob (as stored: a layer loaded gzip-compressed is
//! saved compressed, which both `docker load` and OCI tools accept);
//! `index.json` with one descriptor per tag carrying
//! `io.containerd.image.name` (full reference) and
//! `org.opencontainers.image.ref.name` (tag); `manifest.json`
//! (`Config`, `RepoTags`, `Layers` as paths into `blobs/`); `oci-layout`;
//! `repositories`. Every header has mode 0644/0755, owner 0:0 and mtime 0,
//! members come in a fixed order and JSON is written with fixed key order,
//! so the same images always give the same bytes. Blobs stream from the
//! store; nothing is held in memory but metadata.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::records::{Image, media};
use crate::reference::ImageRef;
use crate::store::Store;

/// An image to save, with the tags to save it under (none: by ID).
#[derive(Debug, Clone)]
pub struct SaveItem {
    /// The image.
    pub image: Image,
    /// Tags recorded in the archive.
    pub tags: Vec<ImageRef>,
}

/// Writes `items` as one archive to `w`.
pub fn save(store: &Store, items: &[SaveItem], w: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    let out = |e: io::Error| Error::stream("write archive", e);
    append_dir(&mut b, "blobs/").map_err(out)?;
    append_dir(&mut b, "blobs/sha256/").map_err(out)?;
    let mut written: HashSet<Digest> = HashSet::new();
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let img = &item.image;
        let manifest_bytes = store.image_manifest(img)?;
        let what = format!("manifest {}", img.manifest.digest);
        let manifest = crate::oci::parse_manifest(&manifest_bytes, &what)?;
        for (l, diff_id) in manifest.layers.iter().zip(&img.layers) {
            if written.insert(l.digest.clone()) {
                let f = store.open_layer_blob(diff_id, &l.digest)?;
                append_blob(&mut b, &l.digest, f)?;
            }
        }
        for d in [&img.config.digest, &img.manifest.digest] {
            if written.insert(d.clone()) {
                append_blob(&mut b, d, store.open_blob(d)?)?;
            }
        }
        let layer_paths: Vec<String> = manifest
            .layers
            .iter()
            .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
            .collect();
        let repo_tags: Vec<String> = item.tags.iter().map(ImageRef::familiar).collect();
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", img.config.digest.hex()),
            "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
            "Layers": layer_paths,
        }));
        let descriptor = |annotations: Option<Value>| {
            let mut d = json!({
                "mediaType": img.manifest.media_type,
                "digest": img.manifest.digest,
                "size": img.manifest.size,
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if item.tags.is_empty() {
            index.push(descriptor(None));
        }
        for t in &item.tags {
            let tag = t.tag().unwrap_or("latest");
            index.push(descriptor(Some(json!({
                "io.containerd.image.name": t.to_string(),
                "org.opencontainers.image.ref.name": tag,
            }))));
            if let Some(top) = manifest.layers.last() {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.digest.hex().to_string());
            }
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": index,
    });
    append_file(&mut b, "index.json", &to_json(&index)).map_err(out)?;
    append_file(
        &mut b,
        "manifest.json",
        &to_json(&Value::Array(docker_manifest)),
    )
    .map_err(out)?;
    append_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(out)?;
    append_file(&mut b, "repositories", &to_json(&json!(repositories))).map_err(out)?;
    let mut w = b.into_inner().map_err(out)?;
    w.flush().map_err(out)?;
    Ok(())
}

fn to_json(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_vec(v).expect("JSON serialises");
    s.push(b'\n');
    s
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, io::empty())
}

fn append_file<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data)
}

fn append_blob<W: Write>(b: &mut tar::Builder<W>, d: &Digest, f: std::fs::File) -> Result<()> {
    let size = f
        .metadata()
        .map_err(|e| Error::stream(format!("stat blob {d}"), e))?
        .len();
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    let name = format!("blobs/sha256/{}", d.hex());
    b.append_data(
        &mut h,
        &name,
        io::BufReader::with_capacity(crate::blobs::COPY_BUF, f),
    )
    .map_err(|e| Error::stream(format!("write {name} to the archive"), e))?;
    Ok(())
}
