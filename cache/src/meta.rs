//! The metadata database: one redb file, opened per transaction.
//!
//! redb's default mode lets one process have a database open at a time.
//! kiln is daemonless and several processes (a long `build`, an `images`
//! beside it) share a state directory, so the database is never held open:
//! every transaction takes an exclusive flock on `meta.lock`, opens the
//! file, runs, commits, closes and unlocks. Transactions last milliseconds,
//! so a build never blocks `images` for longer than that. A process killed
//! inside a transaction leaves an unclean file that the next open repairs
//! (redb's recovery), and an uncommitted transaction is simply lost.
//!
//! redb 4.5+ also has a multi-process mode, but it is weeks old; the
//! open-per-transaction scheme uses only redb's long-standing default path.
//!
//! All tables map a string key to bytes (JSON records, or raw values for
//! the cache index), which keeps this module small and the records easy to
//! evolve.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::error::{Error, IoContext, Result};

/// The tables of the metadata database.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    /// image ID (`sha256:…`) → [`crate::records::ImageRecord`] JSON.
    Images,
    /// full reference (`docker.io/library/busybox:latest`) → image ID.
    Tags,
    /// diffID → [`crate::records::LayerRecord`] JSON.
    Layers,
    /// build-cache key → the solver's bytes.
    CacheIndex,
    /// build-cache key → JSON list of pinned diffIDs.
    CachePins,
    /// `owner\tkind\tdigest` → empty: what a live process is using.
    Leases,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::Images => "images",
            Table::Tags => "tags",
            Table::Layers => "layers",
            Table::CacheIndex => "cache_index",
            Table::CachePins => "cache_pins",
            Table::Leases => "leases",
        })
    }
}

/// Read access, shared by read and write transactions.
pub(crate) trait Reader {
    /// The value stored under `key`.
    fn get(&self, t: Table, key: &str) -> Result<Option<Vec<u8>>>;
    /// All entries whose key starts with `prefix`, in key order.
    fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

/// The database file and its lock.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    path: PathBuf,
    lock_path: PathBuf,
}

impl Meta {
    pub(crate) fn new(path: PathBuf, lock_path: PathBuf) -> Meta {
        Meta { path, lock_path }
    }

    /// Runs `f` in a read transaction.
    ///
    /// The file is opened read-only when it can be: opening it for
    /// writing marks it in use and syncs that to disk (and again on close),
    /// which costs a few milliseconds a transaction for nothing when only
    /// reading. A file that needs recovery (a writer was killed) is opened
    /// for writing instead, which repairs it.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTx<'_>) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        // Keep the database open for as long as the transaction lives.
        let (txn, _ro, _rw) = match redb::Builder::new()
            .set_cache_size(16 << 20)
            .open_read_only(&self.path)
        {
            Ok(db) => (db.begin_read().map_err(|e| self.err(e))?, Some(db), None),
            Err(_) => {
                let db = self.open()?;
                (db.begin_read().map_err(|e| self.err(e))?, None, Some(db))
            }
        };
        f(&ReadTx {
            txn,
            path: &self.path,
        })
    }

    /// Runs `f` in a write transaction, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&WriteTx<'_>) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let db = self.open()?;
        let txn = db.begin_write().map_err(|e| self.err(e))?;
        let tx = WriteTx {
            txn,
            path: &self.path,
        };
        let out = f(&tx)?;
        tx.txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn lock(&self) -> Result<File> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .at("open", &self.lock_path)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let start = Instant::now();
                tracing::debug!("waiting for {}", self.lock_path.display());
                f.lock().at("lock", &self.lock_path)?;
                tracing::debug!("waited {:?} for the metadata lock", start.elapsed());
            }
            Err(TryLockError::Error(e)) => return Err(e).at("lock", &self.lock_path),
        }
        Ok(f)
    }

    fn open(&self) -> Result<redb::Database> {
        redb::Builder::new()
            .set_cache_size(16 << 20)
            .create(&self.path)
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        db_err(&self.path, e)
    }
}

fn db_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A read transaction.
pub(crate) struct ReadTx<'a> {
    txn: redb::ReadTransaction,
    path: &'a Path,
}

impl Reader for ReadTx<'_> {
    fn get(&self, t: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let table = match self.txn.open_table(t.def()) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(self.path, e)),
        };
        let v = table.get(key).map_err(|e| db_err(self.path, e))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let table = match self.txn.open_table(t.def()) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(self.path, e)),
        };
        collect_prefix(&table, prefix, self.path)
    }
}

/// A write transaction.
pub(crate) struct WriteTx<'a> {
    txn: redb::WriteTransaction,
    path: &'a Path,
}

impl WriteTx<'_> {
    /// Stores `value` under `key`.
    pub(crate) fn put(&self, t: Table, key: &str, value: &[u8]) -> Result<()> {
        let mut table = self
            .txn
            .open_table(t.def())
            .map_err(|e| db_err(self.path, e))?;
        table.insert(key, value).map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn delete(&self, t: Table, key: &str) -> Result<bool> {
        let mut table = self
            .txn
            .open_table(t.def())
            .map_err(|e| db_err(self.path, e))?;
        let old = table.remove(key).map_err(|e| db_err(self.path, e))?;
        Ok(old.is_some())
    }
}

impl Reader for WriteTx<'_> {
    fn get(&self, t: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let table = self
            .txn
            .open_table(t.def())
            .map_err(|e| db_err(self.path, e))?;
        let v = table.get(key).map_err(|e| db_err(self.path, e))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let table = self
            .txn
            .open_table(t.def())
            .map_err(|e| db_err(self.path, e))?;
        collect_prefix(&table, prefix, self.path)
    }
}

fn collect_prefix(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    path: &Path,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in table.range(prefix..).map_err(|e| db_err(path, e))? {
        let (k, v) = item.map_err(|e| db_err(path, e))?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k.to_string(), v.value().to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_prefix_scan() {
        let t = tempfile::tempdir().unwrap();
        let m = Meta::new(t.path().join("m.redb"), t.path().join("m.lock"));
        assert_eq!(m.read(|r| r.get(Table::Tags, "a")).unwrap(), None);
        assert!(m.read(|r| r.scan(Table::Tags, "")).unwrap().is_empty());
        m.write(|w| {
            w.put(Table::Tags, "a/1", b"x")?;
            w.put(Table::Tags, "a/2", b"y")?;
            w.put(Table::Tags, "b/1", b"z")
        })
        .unwrap();
        let got = m.read(|r| r.scan(Table::Tags, "a/")).unwrap();
        assert_eq!(
            got,
            vec![("a/1".into(), b"x".to_vec()), ("a/2".into(), b"y".to_vec())]
        );
        // A failed closure commits nothing.
        let r: Result<()> = m.write(|w| {
            w.put(Table::Tags, "c", b"1")?;
            Err(Error::Conflict("no".into()))
        });
        assert!(r.is_err());
        assert_eq!(m.read(|r| r.get(Table::Tags, "c")).unwrap(), None);
        assert!(m.write(|w| w.delete(Table::Tags, "a/1")).unwrap());
        assert_eq!(m.read(|r| r.get(Table::Tags, "a/1")).unwrap(), None);
    }

    #[test]
    fn concurrent_writers_serialise() {
        let t = tempfile::tempdir().unwrap();
        let m = Meta::new(t.path().join("m.redb"), t.path().join("m.lock"));
        std::thread::scope(|s| {
            for i in 0..4 {
                let m = m.clone();
                s.spawn(move || {
                    for j in 0..25 {
                        m.write(|w| {
                            let n = w
                                .get(Table::CacheIndex, "n")?
                                .map(|v| u64::from_le_bytes(v.try_into().unwrap()))
                                .unwrap_or(0);
                            w.put(Table::CacheIndex, "n", &(n + 1).to_le_bytes())?;
                            w.put(Table::CacheIndex, &format!("k{i}-{j}"), b"")
                        })
                        .unwrap();
                    }
                });
            }
        });
        let n = m.read(|r| r.get(Table::CacheIndex, "n")).unwrap().unwrap();
        assert_eq!(u64::from_le_bytes(n.try_into().unwrap()), 100);
    }
}
