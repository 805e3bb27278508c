//! OCI image-layout directories as cache stores (`type=local`):
//! `oci-layout`, `index.json` (one entry per tag, named by the
//! `org.opencontainers.image.ref.name` annotation) and
//! `blobs/sha256/<hex>`. Blobs are written under a temporary name,
//! verified, fsynced and renamed; `index.json` is replaced last, so a
//! reader never sees an entry whose blobs are missing.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cache::{Descriptor, Digest};
use sha2::{Digest as _, Sha256};

use super::format::{AnnotatedDescriptor, Manifest};

/// The annotation naming an index entry.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Where a blob lives in the layout.
pub(crate) fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

/// Reads a small blob, verifying its digest.
pub(crate) fn read_blob(dir: &Path, d: &Digest, limit: u64) -> Result<Vec<u8>, String> {
    let p = blob_path(dir, d);
    let f = File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut out = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if out.len() as u64 > limit {
        return Err(format!("{}: larger than {limit} bytes", p.display()));
    }
    if &Digest::of(&out) != d {
        return Err(format!(
            "{}: content does not match its digest",
            p.display()
        ));
    }
    Ok(out)
}

/// The index entry tagged `tag` (or the only entry, for `latest`).
pub(crate) fn find(dir: &Path, tag: &str) -> Result<AnnotatedDescriptor, String> {
    let p = dir.join("index.json");
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let index = Manifest::parse(&bytes, &p.display().to_string())?;
    if let Some(e) = index
        .manifests
        .iter()
        .find(|e| e.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
    {
        return Ok(e.clone());
    }
    if tag == "latest" && index.manifests.len() == 1 {
        return Ok(index.manifests[0].clone());
    }
    Err(format!("{}: no entry tagged {tag:?}", p.display()))
}

/// Writes a blob from `r` unless the layout has it; `d` is checked.
pub(crate) fn write_blob(dir: &Path, d: &Digest, mut r: impl Read) -> Result<(), String> {
    let p = blob_path(dir, d);
    if p.exists() {
        return Ok(());
    }
    let parent = p.parent().expect("blob path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 17];
    loop {
        let n = r.read(&mut buf).map_err(|e| format!("read {d}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let got = format!("sha256:{}", hex::encode(h.finalize()));
    if got != d.as_str() {
        return Err(format!("blob {d}: its content hashes to {got}"));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    tmp.persist(&p)
        .map_err(|e| format!("{}: {}", p.display(), e.error))?;
    Ok(())
}

/// Points `tag` at `manifest` in `index.json` (other tags are kept) and
/// writes `oci-layout` if missing.
pub(crate) fn tag(dir: &Path, manifest: &Descriptor, tag: &str) -> Result<(), String> {
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        atomic_write(dir, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let p = dir.join("index.json");
    let mut entries: Vec<serde_json::Value> = match std::fs::read(&p) {
        Ok(b) => {
            let v: serde_json::Value = serde_json::from_slice(&b)
                .map_err(|e| format!("{}: invalid index: {e}", p.display()))?;
            v.get("manifests")
                .and_then(|m| m.as_array())
                .cloned()
                .unwrap_or_default()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    entries.retain(|e| e["annotations"][REF_NAME].as_str() != Some(tag));
    entries.push(serde_json::json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": manifest.size,
        "annotations": { REF_NAME: tag },
    }));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": cache::media::OCI_INDEX,
        "manifests": entries,
    }))
    .expect("index serialises");
    atomic_write(dir, &p, &index)
}

fn atomic_write(dir: &Path, p: &Path, data: &[u8]) -> Result<(), String> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("{}: {e}", p.display()))?;
    tmp.persist(p)
        .map_err(|e| format!("{}: {}", p.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_and_tags() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let data = b"hello";
        let d = Digest::of(data);
        write_blob(dir, &d, &data[..]).unwrap();
        write_blob(dir, &d, &b"ignored: already there"[..]).unwrap();
        assert_eq!(read_blob(dir, &d, 100).unwrap(), data);
        assert!(read_blob(dir, &d, 2).is_err());
        let e = write_blob(dir, &Digest::of(b"x"), &b"y"[..]).unwrap_err();
        assert!(e.contains("hashes to"), "{e}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        let m = Descriptor {
            media_type: cache::media::OCI_MANIFEST.into(),
            digest: d.clone(),
            size: 5,
        };
        tag(dir, &m, "a").unwrap();
        assert_eq!(find(dir, "latest").unwrap().digest, d, "the only entry");
        let m2 = Descriptor {
            digest: Digest::of(b"m2"),
            ..m.clone()
        };
        tag(dir, &m2, "b").unwrap();
        tag(dir, &m2, "a").unwrap();
        assert_eq!(find(dir, "a").unwrap().digest, m2.digest);
        assert_eq!(find(dir, "b").unwrap().digest, m2.digest);
        assert!(find(dir, "latest").is_err());
        assert!(dir.join("oci-layout").exists());
    }
}
