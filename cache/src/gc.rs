//! Garbage collection: mark what is referenced, sweep the rest.
//!
//! Roots are images (their manifest, config and layers), layers pinned by
//! the build-cache index, and leases of live processes. A layer keeps its
//! blobs and unpacked directory alive. Reference counts are recomputed by
//! marking rather than stored, so they can never drift after a crash.
//!
//! Sweeping runs inside a metadata write transaction, i.e. while holding
//! the database lock: a writer records its lease *before* it renames a
//! file into the store, so the collector never deletes something a writer
//! is about to use. Unpacked directories are renamed into the temporary
//! area under the lock and deleted after it is released.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use crate::digest::{Digest, is_hex64};
use crate::error::{IoContext, Result};
use crate::fsutil::remove_any;
use crate::layers::get_layer;
use crate::meta::{Reader, Table, WriteTx};
use crate::records::{ImageRecord, Layer, decode};
use crate::store::{LeaseKind, Store, parse_lease_key};
use crate::temp;

/// Things that may have become garbage.
#[derive(Debug, Default, Clone)]
pub(crate) struct Candidates {
    pub(crate) blobs: HashSet<Digest>,
    pub(crate) layers: HashSet<Digest>,
}

/// What a sweep removed.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    pub(crate) blobs: usize,
    pub(crate) layers: usize,
    pub(crate) bytes: u64,
    /// Unpacked directories moved aside, to delete after the lock.
    pub(crate) dirs: Vec<PathBuf>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Dangling images deleted.
    pub images: Vec<Digest>,
    /// Build-cache entries deleted (with `all`).
    pub cache_entries: usize,
    /// Layers (records and unpacked directories) deleted.
    pub layers: usize,
    /// Blob files deleted.
    pub blobs: usize,
    /// Bytes of blobs freed.
    pub bytes: u64,
}

/// What to prune.
#[derive(Debug, Default, Clone, Copy)]
pub struct PruneOptions {
    /// Also drop the whole build cache (index, pins, cache mounts, logs).
    pub all: bool,
}

struct Marked {
    blobs: HashSet<Digest>,
    layers: HashSet<Digest>,
    dead_leases: Vec<String>,
}

impl Store {
    /// Removes dangling images and every blob, layer and temporary file
    /// nothing references; with `all`, the build cache too.
    pub fn prune(&self, opts: PruneOptions) -> Result<PruneReport> {
        let dead = temp::clean_dead(&self.layout.tmp())?;
        if !dead.is_empty() {
            tracing::debug!("removed temporary files of {} dead processes", dead.len());
        }
        let (report, dirs) = self.meta.write(|w| {
            let mut report = PruneReport::default();
            let tagged: HashSet<Digest> = crate::images::tags_by_image(w)?.into_keys().collect();
            for (k, _) in w.scan(Table::Images, "")? {
                let id = Digest::parse(&k)?;
                if !tagged.contains(&id) {
                    w.delete(Table::Images, &k)?;
                    report.images.push(id);
                }
            }
            if opts.all {
                for (k, _) in w.scan(Table::CacheIndex, "")? {
                    w.delete(Table::CacheIndex, &k)?;
                    report.cache_entries += 1;
                }
                for (k, _) in w.scan(Table::CachePins, "")? {
                    w.delete(Table::CachePins, &k)?;
                }
            }
            let swept = self.sweep(w, None)?;
            report.layers = swept.layers;
            report.blobs = swept.blobs;
            report.bytes = swept.bytes;
            Ok((report, swept.dirs))
        })?;
        empty_trash(dirs);
        if opts.all {
            for d in [self.layout.cache_mounts(), self.layout.logs()] {
                remove_any(&d)?;
            }
        }
        self.clean_locks()?;
        Ok(report)
    }

    /// Drops the leases of dead owners and whatever only they protected.
    pub(crate) fn collect_dead_leases(&self, dead: &[String]) -> Result<()> {
        let dirs = self.meta.write(|w| {
            let mut cand = Candidates::default();
            for owner in dead {
                for (k, _) in w.scan(Table::Leases, &format!("{owner}\t"))? {
                    if let Some((_, kind, d)) = parse_lease_key(&k) {
                        match kind {
                            LeaseKind::Blob => cand.blobs.insert(d),
                            LeaseKind::Layer => cand.layers.insert(d),
                        };
                    }
                    w.delete(Table::Leases, &k)?;
                }
            }
            Ok(self.sweep(w, Some(cand))?.dirs)
        })?;
        empty_trash(dirs);
        Ok(())
    }

    /// Gives up this process's leases on `blobs` and `layers` and deletes
    /// those nothing else references (a failed load cleaning up after
    /// itself).
    pub(crate) fn discard(&self, blobs: &[Digest], layers: &[Digest]) -> Result<()> {
        let dirs = self.meta.write(|w| {
            let mut items: Vec<(LeaseKind, &Digest)> =
                blobs.iter().map(|d| (LeaseKind::Blob, d)).collect();
            items.extend(layers.iter().map(|d| (LeaseKind::Layer, d)));
            self.unlease_in(w, &items)?;
            let cand = Candidates {
                blobs: blobs.iter().cloned().collect(),
                layers: layers.iter().cloned().collect(),
            };
            Ok(self.sweep(w, Some(cand))?.dirs)
        })?;
        empty_trash(dirs);
        Ok(())
    }

    /// Deletes candidates (or, with `None`, everything) not reachable.
    pub(crate) fn sweep(&self, w: &WriteTx<'_>, cand: Option<Candidates>) -> Result<Swept> {
        let marked = self.mark(w)?;
        for k in &marked.dead_leases {
            w.delete(Table::Leases, k)?;
        }
        let mut swept = Swept::default();
        let full = cand.is_none();
        let mut cand = match cand {
            Some(c) => c,
            None => Candidates {
                blobs: self.blob_files()?,
                layers: w
                    .scan(Table::Layers, "")?
                    .into_iter()
                    .filter_map(|(k, _)| Digest::parse(&k).ok())
                    .chain(self.layer_dirs()?)
                    .collect(),
            },
        };
        let mut todo: Vec<Digest> = cand.layers.iter().cloned().collect();
        while let Some(d) = todo.pop() {
            if marked.layers.contains(&d) {
                continue;
            }
            if let Some(layer) = get_layer(w, &d)? {
                w.delete(Table::Layers, d.as_str())?;
                cand.blobs.extend(layer.blobs.into_iter().map(|b| b.digest));
                // What only this lazy layer's recipe kept may go too.
                if let Some(r) = &layer.recipe {
                    todo.extend(
                        r.layers()
                            .filter(|l| cand.layers.insert((*l).clone()))
                            .cloned(),
                    );
                }
                swept.layers += 1;
            }
            let dir = self.layout.layer_dir(&d);
            if dir.is_dir() {
                let trash = self.tmp_path("trash")?;
                fs::rename(&dir, &trash).at("rename", &dir)?;
                let _ = fs::remove_file(self.layout.locks().join(d.hex()));
                swept.dirs.push(trash);
            }
        }
        for d in &cand.blobs {
            if marked.blobs.contains(d) {
                continue;
            }
            if let Ok(m) = fs::metadata(self.blob_path(d)) {
                self.delete_blob_file(d)?;
                swept.blobs += 1;
                swept.bytes += m.len();
            }
        }
        if full {
            tracing::debug!("full sweep: {} blobs, {} layers", swept.blobs, swept.layers);
        }
        Ok(swept)
    }

    fn mark(&self, r: &impl Reader) -> Result<Marked> {
        let mut m = Marked {
            blobs: HashSet::new(),
            layers: HashSet::new(),
            dead_leases: Vec::new(),
        };
        for (k, v) in r.scan(Table::Images, "")? {
            let rec: ImageRecord = decode(&k, &v)?;
            m.blobs.insert(rec.manifest.digest);
            m.blobs.insert(rec.config.digest);
            m.layers.extend(rec.layers);
        }
        for (k, v) in r.scan(Table::CachePins, "")? {
            let pins: Vec<Digest> = decode(&k, &v)?;
            m.layers.extend(pins);
        }
        let mut alive: BTreeMap<String, bool> = BTreeMap::new();
        let me = self.owner_id().map(str::to_string);
        for (k, _) in r.scan(Table::Leases, "")? {
            let Some((owner, kind, d)) = parse_lease_key(&k) else {
                m.dead_leases.push(k);
                continue;
            };
            let live = *alive.entry(owner.to_string()).or_insert_with(|| {
                me.as_deref() == Some(owner) || temp::is_alive(&self.layout.tmp(), owner)
            });
            if !live {
                m.dead_leases.push(k.clone());
                continue;
            }
            match kind {
                LeaseKind::Blob => m.blobs.insert(d),
                LeaseKind::Layer => m.layers.insert(d),
            };
        }
        let mut records: HashMap<Digest, Layer> = HashMap::new();
        for (k, v) in r.scan(Table::Layers, "")? {
            let Ok(d) = Digest::parse(&k) else { continue };
            records.insert(d, decode(&k, &v)?);
        }
        // A marked layer keeps its blobs and, if lazy, its recipe's layers
        // (transitively: a recipe layer may be lazy too).
        let mut todo: Vec<Digest> = m.layers.iter().cloned().collect();
        while let Some(d) = todo.pop() {
            let Some(layer) = records.remove(&d) else {
                continue;
            };
            m.blobs.extend(layer.blobs.into_iter().map(|b| b.digest));
            for l in layer.recipe.iter().flat_map(|r| r.layers()) {
                if m.layers.insert(l.clone()) {
                    todo.push(l.clone());
                }
            }
        }
        Ok(m)
    }

    /// Every blob file on disk.
    fn blob_files(&self) -> Result<HashSet<Digest>> {
        hex_names(&self.layout.blobs())
    }

    /// Every unpacked directory on disk.
    fn layer_dirs(&self) -> Result<HashSet<Digest>> {
        hex_names(&self.layout.layers())
    }

    /// Removes unpack locks of layers that are gone.
    fn clean_locks(&self) -> Result<()> {
        for d in hex_names(&self.layout.locks())? {
            if !self.layout.layer_dir(&d).exists() {
                let _ = fs::remove_file(self.layout.locks().join(d.hex()));
            }
        }
        Ok(())
    }
}

/// The digests named by the 64-hex entries of a directory.
fn hex_names(dir: &std::path::Path) -> Result<HashSet<Digest>> {
    let mut out = HashSet::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).at("read directory", dir),
    };
    for e in entries {
        let e = e.at("read directory", dir)?;
        let name = e.file_name();
        if let Some(s) = name.to_str().filter(|s| is_hex64(s)) {
            out.insert(Digest::from_hex(s)?);
        }
    }
    Ok(out)
}

/// Deletes directories moved aside by a sweep.
pub(crate) fn empty_trash(dirs: Vec<PathBuf>) {
    for d in dirs {
        if let Err(e) = remove_any(&d) {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ls, store};

    #[test]
    fn dead_leases_protect_nothing() {
        let (t, s) = store();
        let (d, _) = s.ingest_blob(&b"orphan"[..], None).unwrap();
        // Pretend a crashed process leased it: move our lease to an owner
        // without a lock file.
        s.meta
            .write(|w| {
                w.put(Table::Leases, &format!("999-dead\tblob\t{d}"), b"")?;
                s.unlease_in(w, &[(LeaseKind::Blob, &d)])
            })
            .unwrap();
        let r = s.prune(PruneOptions::default()).unwrap();
        assert_eq!(r.blobs, 1);
        assert!(!s.has_blob(&d));
        assert!(
            s.meta
                .read(|r| r.scan(Table::Leases, ""))
                .unwrap()
                .is_empty()
        );
        drop(t);
    }

    #[test]
    fn live_leases_and_cache_pins_are_kept() {
        let (_t, s) = store();
        let (d, _) = s.ingest_blob(&b"in use"[..], None).unwrap();
        let l = s
            .ingest_layer(&testkit::busybox_layer()[..], Default::default())
            .unwrap();
        s.prune(PruneOptions::default()).unwrap();
        assert!(s.has_blob(&d), "leased by this live process");
        s.cache_put("k1", b"v", std::slice::from_ref(&l.diff_id))
            .unwrap();
        assert_eq!(s.cache_get("k1").unwrap().unwrap(), b"v");
        assert_eq!(s.cache_pins("k1").unwrap(), vec![l.diff_id.clone()]);
        let root = s.root().to_path_buf();
        drop(s);
        let s = Store::open(&root).unwrap();
        s.prune(PruneOptions::default()).unwrap();
        assert!(!s.has_blob(&d), "lease released with its store");
        assert!(
            s.layer(&l.diff_id).unwrap().is_some(),
            "pinned by the cache"
        );
        assert!(s.has_blob(&l.blob().digest));
        let r = s.prune(PruneOptions { all: true }).unwrap();
        assert_eq!(r.cache_entries, 1);
        assert!(s.layer(&l.diff_id).unwrap().is_none());
        assert!(ls(&s.layout.blobs()).is_empty());
        let e = s
            .cache_put("k2", b"v", std::slice::from_ref(&l.diff_id))
            .unwrap_err();
        assert!(matches!(e, crate::Error::LayerNotFound(_)));
    }

    #[test]
    fn cache_index_scan_and_batch() {
        let (_t, s) = store();
        s.cache_batch(|b| {
            b.put("a/1", b"1", &[])?;
            b.put("a/2", b"2", &[])?;
            b.put("b/1", b"3", &[])
        })
        .unwrap();
        let keys: Vec<String> = s
            .cache_scan("a/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["a/1", "a/2"]);
        assert!(s.cache_delete("a/1").unwrap());
        assert!(!s.cache_delete("a/1").unwrap());
        assert_eq!(s.cache_get("a/1").unwrap(), None);
    }
}
