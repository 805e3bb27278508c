//! Remembering file digests by their `stat` identity, so an unchanged
//! context is not read again.
//!
//! A key is the file's absolute path plus size, mtime (ns), ctime (ns), inode,
//! mode and device, plus whether ownership was zeroed. Any write, chmod, chown
//! or xattr change moves ctime, so a matching key means an unchanged digest.
//! The scheduler backs [`StatCache`] with the store's database; this module
//! provides an in-memory map and an atomically rewritten file for tests and
//! simple uses.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Digest;
use super::tree::Meta;

/// The identity of one file version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatKey(Vec<u8>);

impl StatKey {
    /// Builds the key of `path` with `meta`; `zero_owner` is part of the key
    /// because it changes the digest.
    pub fn new(path: &Path, meta: &Meta, zero_owner: bool) -> StatKey {
        use std::os::unix::ffi::OsStrExt;
        let p = path.as_os_str().as_bytes();
        let mut k = Vec::with_capacity(p.len() + 72);
        k.extend_from_slice(p);
        k.push(0);
        for v in [
            meta.size,
            (meta.mtime as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(meta.mtime_nsec as u64),
            (meta.ctime as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(meta.ctime_nsec as u64),
            meta.ino,
            meta.mode as u64,
            meta.dev,
            zero_owner as u64,
            meta.uid as u64 | ((meta.gid as u64) << 32),
        ] {
            k.extend_from_slice(&v.to_le_bytes());
        }
        StatKey(k)
    }

    /// The key as bytes (for a database).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Rebuilds a key from [`as_bytes`](Self::as_bytes).
    pub fn from_bytes(b: Vec<u8>) -> StatKey {
        StatKey(b)
    }
}

/// Persistent memory of file digests. Implementations must be thread safe;
/// lookups and stores come in batches.
pub trait StatCache: Send + Sync {
    /// Looks keys up; one answer per key, in order.
    fn get_many(&self, keys: &[StatKey]) -> Vec<Option<Digest>>;
    /// Remembers digests. Errors are the implementation's to log: a lost
    /// entry only costs a re-read.
    fn put_many(&self, entries: &[(StatKey, Digest)]);
}

/// A stat cache in memory (lives as long as the process).
#[derive(Debug, Default)]
pub struct MemoryStatCache {
    map: Mutex<HashMap<StatKey, Digest>>,
}

impl MemoryStatCache {
    /// Number of remembered files.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StatCache for MemoryStatCache {
    fn get_many(&self, keys: &[StatKey]) -> Vec<Option<Digest>> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter().map(|k| m.get(k).cloned()).collect()
    }
    fn put_many(&self, entries: &[(StatKey, Digest)]) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for (k, d) in entries {
            m.insert(k.clone(), d.clone());
        }
    }
}

/// A stat cache kept in one file, rewritten atomically (temp file, fsync,
/// rename) on every `put_many`. Meant for tests and small contexts; the
/// scheduler uses the store's database instead.
#[derive(Debug)]
pub struct FileStatCache {
    path: PathBuf,
    mem: MemoryStatCache,
}

impl FileStatCache {
    /// Opens (or starts) the cache file; a missing or corrupt file starts empty.
    pub fn open(path: &Path) -> FileStatCache {
        let mem = MemoryStatCache::default();
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut entries = Vec::new();
            for line in text.lines() {
                let Some((k, d)) = line.split_once(' ') else {
                    continue;
                };
                let (Ok(k), Some(d)) = (hex::decode(k), Digest::parse_file(d)) else {
                    continue;
                };
                entries.push((StatKey(k), d));
            }
            mem.put_many(&entries);
        }
        FileStatCache {
            path: path.to_path_buf(),
            mem,
        }
    }

    /// Number of remembered files.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.mem.is_empty()
    }

    fn save(&self) -> std::io::Result<()> {
        let map = self.mem.map.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            for (k, d) in map.iter() {
                writeln!(w, "{} {}", hex::encode(&k.0), d)?;
            }
            w.flush()?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

impl StatCache for FileStatCache {
    fn get_many(&self, keys: &[StatKey]) -> Vec<Option<Digest>> {
        self.mem.get_many(keys)
    }
    fn put_many(&self, entries: &[(StatKey, Digest)]) {
        if entries.is_empty() {
            return;
        }
        self.mem.put_many(entries);
        if let Err(e) = self.save() {
            tracing::warn!("could not save stat cache {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cache_survives_reopen_and_ignores_garbage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stat.cache");
        let m = Meta {
            size: 3,
            mtime: 1,
            ino: 7,
            mode: 0o100644,
            ..Meta::default()
        };
        let k = StatKey::new(Path::new("/ctx/a"), &m, true);
        let k2 = StatKey::new(Path::new("/ctx/a"), &m, false);
        assert_ne!(k, k2, "zeroed ownership is part of the key");
        let c = FileStatCache::open(&p);
        assert!(c.is_empty());
        c.put_many(&[(k.clone(), Digest::of_file(b"x"))]);
        let c = FileStatCache::open(&p);
        assert_eq!(
            c.get_many(&[k.clone(), k2.clone()]),
            vec![Some(Digest::of_file(b"x")), None]
        );
        std::fs::write(&p, "zz not-a-digest\n\n").unwrap();
        assert!(FileStatCache::open(&p).is_empty());
        let changed = Meta { mtime_nsec: 1, ..m };
        assert_ne!(StatKey::new(Path::new("/ctx/a"), &changed, true), k);
    }
}
