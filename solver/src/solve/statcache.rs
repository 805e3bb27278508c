//! The context stat cache kept in the store's cache table, so an unchanged
//! context is not re-read by the next build (or the next process).
//!
//! Entries are `s:<hex(path)>:<hex(stat identity)>` → digest. Lookups for
//! a whole batch are one read transaction; stores are one write
//! transaction that also drops the older entries of the same paths, so the
//! table holds one entry per file (its latest version), not one per edit.
//! Stores are held in memory until [`StoreStatCache::save_in_background`]
//! (the solver calls it once a step's cache lookups are done, before the
//! step runs): the build already has the digests, and saving them for the
//! next build need not hold up this one's lookups or its copy. Whatever is
//! still pending or being written when the cache is dropped, at the end of
//! the solve, is finished then.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cache::Store;

use crate::contenthash::{Digest, StatCache, StatKey};

/// A [`StatCache`] in the store's database.
pub struct StoreStatCache {
    store: Arc<Store>,
    /// Entries not saved yet.
    pending: Mutex<Vec<(StatKey, Digest)>>,
    /// Saves in progress.
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for StoreStatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreStatCache").finish_non_exhaustive()
    }
}

impl StoreStatCache {
    /// A stat cache in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        StoreStatCache {
            store,
            pending: Mutex::new(Vec::new()),
            writers: Mutex::new(Vec::new()),
        }
    }

    /// Starts writing the pending entries on a background thread.
    pub(crate) fn save_in_background(&self) {
        let entries = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if entries.is_empty() {
            return;
        }
        let store = self.store.clone();
        let writer = std::thread::spawn(move || save(&store, &entries));
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(writer);
    }

    /// Saves the pending entries and waits for the saves in progress.
    fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !pending.is_empty() {
            save(&self.store, &pending);
        }
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in writers {
            let _ = w.join();
        }
    }
}

impl Drop for StoreStatCache {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Saves `entries`, replacing older entries of the same paths.
fn save(store: &Store, entries: &[(StatKey, Digest)]) {
    let t = std::time::Instant::now();
    let r = store.cache_batch(|b| {
        for (k, d) in entries {
            let (prefix, full) = index_key(k);
            for (old, _) in b.scan(&prefix)? {
                if old != full {
                    b.delete(&old)?;
                }
            }
            b.put(&full, d.as_str().as_bytes(), &[])?;
        }
        Ok(())
    });
    match r {
        Ok(()) => tracing::debug!(
            "stat cache: {} files saved in {:?}",
            entries.len(),
            t.elapsed()
        ),
        Err(e) => tracing::warn!("stat cache not saved (files will be re-read next time): {e}"),
    }
}

/// Splits a stat key into (path prefix, full index key).
fn index_key(k: &StatKey) -> (String, String) {
    let b = k.as_bytes();
    let nul = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let path = format!("s:{}:", hex::encode(&b[..nul]));
    let full = format!("{path}{}", hex::encode(&b[nul..]));
    (path, full)
}

impl StatCache for StoreStatCache {
    fn get_many(&self, keys: &[StatKey]) -> Vec<Option<Digest>> {
        let idx: Vec<String> = keys.iter().map(|k| index_key(k).1).collect();
        let refs: Vec<&str> = idx.iter().map(String::as_str).collect();
        match self.store.cache_get_many(&refs) {
            Ok(vals) => vals
                .into_iter()
                .map(|v| v.and_then(|b| Digest::parse_file(std::str::from_utf8(&b).ok()?)))
                .collect(),
            Err(e) => {
                tracing::warn!("stat cache lookup failed (files will be re-read): {e}");
                vec![None; keys.len()]
            }
        }
    }

    fn put_many(&self, entries: &[(StatKey, Digest)]) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contenthash::Meta;
    use std::path::Path;

    #[test]
    fn remembers_latest_version_per_path() {
        let d = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(d.path()).unwrap());
        let c = StoreStatCache::new(store.clone());
        let m1 = Meta {
            size: 1,
            mtime: 1,
            ..Meta::default()
        };
        let m2 = Meta { mtime: 2, ..m1 };
        let k1 = StatKey::new(Path::new("/ctx/a"), &m1, true);
        let k2 = StatKey::new(Path::new("/ctx/a"), &m2, true);
        let kb = StatKey::new(Path::new("/ctx/b"), &m1, true);
        c.put_many(&[
            (k1.clone(), Digest::of_file(b"1")),
            (kb.clone(), Digest::of_file(b"b")),
        ]);
        c.flush();
        assert_eq!(
            c.get_many(&[k1.clone(), k2.clone(), kb.clone()]),
            vec![
                Some(Digest::of_file(b"1")),
                None,
                Some(Digest::of_file(b"b"))
            ]
        );
        c.put_many(&[(k2.clone(), Digest::of_file(b"2"))]);
        c.flush();
        assert_eq!(
            c.get_many(&[k1, k2, kb]),
            vec![
                None,
                Some(Digest::of_file(b"2")),
                Some(Digest::of_file(b"b"))
            ]
        );
        assert_eq!(store.cache_scan("s:").unwrap().len(), 2);
    }

    #[test]
    fn background_and_pending_saves_are_finished_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(d.path()).unwrap());
        let key = |p: &str| StatKey::new(Path::new(p), &Meta::default(), true);
        let c = StoreStatCache::new(store.clone());
        c.put_many(&[(key("/ctx/a"), Digest::of_file(b"a"))]);
        // Nothing is written before the solver says the lookups are done.
        assert!(store.cache_scan("s:").unwrap().is_empty());
        c.save_in_background();
        c.put_many(&[(key("/ctx/b"), Digest::of_file(b"b"))]);
        drop(c);
        let again = StoreStatCache::new(store.clone());
        assert_eq!(
            again.get_many(&[key("/ctx/a"), key("/ctx/b")]),
            vec![Some(Digest::of_file(b"a")), Some(Digest::of_file(b"b"))]
        );
    }

    #[test]
    fn entries_from_before_file_digests_were_blake3_are_misses() {
        let d = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(d.path()).unwrap());
        let key = StatKey::new(Path::new("/ctx/a"), &Meta::default(), true);
        let c = StoreStatCache::new(store.clone());
        c.put_many(&[(key.clone(), Digest::of(b"a"))]);
        drop(c);
        assert_eq!(store.cache_scan("s:").unwrap().len(), 1);
        let c = StoreStatCache::new(store);
        assert_eq!(c.get_many(&[key]), vec![None]);
    }
}
