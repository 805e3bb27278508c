//! Disk usage of the store (`kiln system df`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use crate::digest::Digest;
use crate::error::Result;
use crate::meta::{Reader, Table};
use crate::records::{ImageRecord, Layer, decode};
use crate::store::Store;

/// One line of `system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// How many there are.
    pub total: usize,
    /// How many are in use (tagged images, referenced layers…).
    pub active: usize,
    /// Bytes they take.
    pub size: u64,
    /// Bytes a prune (`--all` for the build cache) would free.
    pub reclaimable: u64,
}

/// What the store uses, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Images: their manifest, config and layer blobs.
    pub images: UsageRow,
    /// Layers kept only by the build cache (blobs).
    pub build_cache: UsageRow,
    /// Unpacked layer directories.
    pub unpacked: UsageRow,
    /// Blobs nothing references (left by interrupted work).
    pub unreferenced: UsageRow,
}

impl Store {
    /// Measures the store. Walks the unpacked directories, so it takes
    /// time proportional to the number of files.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let (images, pins, layers) = self.meta.read(|r| {
            let tagged: HashSet<Digest> = crate::images::tags_by_image(r)?.into_keys().collect();
            let mut images = Vec::new();
            for (k, v) in r.scan(Table::Images, "")? {
                let rec: ImageRecord = decode(&k, &v)?;
                images.push((tagged.contains(&Digest::parse(&k)?), rec));
            }
            let mut pins: HashSet<Digest> = HashSet::new();
            let mut entries = 0;
            for (k, v) in r.scan(Table::CachePins, "")? {
                pins.extend(decode::<Vec<Digest>>(&k, &v)?);
            }
            for _ in r.scan(Table::CacheIndex, "")? {
                entries += 1;
            }
            let mut layers = Vec::new();
            for (k, v) in r.scan(Table::Layers, "")? {
                layers.push(decode::<Layer>(&k, &v)?);
            }
            Ok((images, (pins, entries), layers))
        })?;
        let (pins, cache_entries) = pins;
        // What a lazy layer needs counts as used with it.
        let pins: HashSet<Digest> = with_recipes(&layers, pins.iter()).into_iter().collect();
        let layer_blobs = |d: &Digest| -> Vec<Digest> {
            layers
                .iter()
                .find(|l| &l.diff_id == d)
                .map(|l| l.blobs.iter().map(|b| b.digest.clone()).collect())
                .unwrap_or_default()
        };
        let size_of = |set: &HashSet<Digest>| -> u64 {
            set.iter()
                .filter_map(|d| fs::metadata(self.blob_path(d)).ok())
                .map(|m| m.len())
                .sum()
        };
        let (mut used, mut active_blobs) = (HashSet::new(), HashSet::new());
        let (mut image_layers, mut active_layers) = (HashSet::new(), HashSet::new());
        for (tagged, rec) in &images {
            let mut blobs = vec![rec.manifest.digest.clone(), rec.config.digest.clone()];
            for l in &with_recipes(&layers, rec.layers.iter()) {
                blobs.extend(layer_blobs(l));
                image_layers.insert(l.clone());
                if *tagged {
                    active_layers.insert(l.clone());
                }
            }
            if *tagged {
                active_blobs.extend(blobs.iter().cloned());
            }
            used.extend(blobs);
        }
        let images_row = UsageRow {
            total: images.len(),
            active: images.iter().filter(|(t, _)| *t).count(),
            size: size_of(&used),
            reclaimable: size_of(&used.difference(&active_blobs).cloned().collect()),
        };
        let cache_only: HashSet<Digest> = pins
            .iter()
            .filter(|d| !image_layers.contains(*d))
            .flat_map(layer_blobs)
            .filter(|b| !used.contains(b))
            .collect();
        let cache_size = size_of(&cache_only);
        let build_cache = UsageRow {
            total: cache_entries,
            active: cache_entries,
            size: cache_size,
            reclaimable: cache_size,
        };
        let mut all_blobs = HashSet::new();
        for e in fs::read_dir(self.layout.blobs())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                all_blobs.insert(d);
            }
        }
        let mut referenced = used.clone();
        referenced.extend(cache_only);
        for l in &layers {
            if pins.contains(&l.diff_id) {
                referenced.extend(l.blobs.iter().map(|b| b.digest.clone()));
            }
        }
        let unref: HashSet<Digest> = all_blobs.difference(&referenced).cloned().collect();
        let unref_size = size_of(&unref);
        let mut du = DiskUsage {
            images: images_row,
            build_cache,
            unpacked: UsageRow::default(),
            unreferenced: UsageRow {
                total: unref.len(),
                active: 0,
                size: unref_size,
                reclaimable: unref_size,
            },
        };
        for e in fs::read_dir(self.layout.layers())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) else {
                continue;
            };
            let size = tree_size(&e.path());
            du.unpacked.total += 1;
            du.unpacked.size += size;
            if active_layers.contains(&d) || pins.contains(&d) {
                du.unpacked.active += 1;
            } else if !image_layers.contains(&d) {
                du.unpacked.reclaimable += size;
            }
        }
        Ok(du)
    }
}

/// `roots` and, transitively, the layers of their recipes (for a lazy
/// layer: what its tar is regenerated from).
fn with_recipes<'a>(layers: &[Layer], roots: impl Iterator<Item = &'a Digest>) -> Vec<Digest> {
    let by_id: HashMap<&Digest, &Layer> = layers.iter().map(|l| (&l.diff_id, l)).collect();
    let mut out: Vec<Digest> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut todo: Vec<Digest> = roots.cloned().collect();
    todo.reverse();
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        if let Some(r) = by_id.get(&d).and_then(|l| l.recipe.as_ref()) {
            todo.extend(r.layers().cloned());
        }
        out.push(d);
    }
    out
}

/// Apparent size of the regular files under `p`.
fn tree_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use crate::testutil::{image, store};

    #[test]
    fn counts_images_and_unpacked_layers() {
        let (_t, s) = store();
        let img = image(
            &s,
            &[testkit::busybox_layer()],
            &["a:1"],
            "2023-01-01T00:00:00Z",
        );
        s.unpacked_dir(&img.layers[0]).unwrap();
        let du = s.disk_usage().unwrap();
        assert_eq!((du.images.total, du.images.active), (1, 1));
        assert!(du.images.size > testkit::busybox_layer().len() as u64);
        assert_eq!(du.images.reclaimable, 0);
        assert_eq!((du.unpacked.total, du.unpacked.active), (1, 1));
        assert!(du.unpacked.size > 1_000_000);
        assert_eq!(du.unreferenced.total, 0);
    }
}
