//! The build-cache index: a transactional string → bytes table owned by
//! the solver, plus *pins*: the layers an entry refers to, which the
//! garbage collector then keeps. What keys and values mean is the
//! solver's business; the store only keeps them consistent with the
//! layers (an entry can only pin layers the store knows).

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layers::get_layer;
use crate::meta::{Reader, Table, WriteTx};
use crate::records::{decode, encode};
use crate::store::{LeaseKind, Store};

/// Several cache-index changes applied in one transaction.
pub struct CacheBatch<'a, 'b> {
    store: &'a Store,
    w: &'a WriteTx<'b>,
}

impl CacheBatch<'_, '_> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.w.get(Table::CacheIndex, key)
    }

    /// Stores `value` under `key`, pinning `layers` (replacing earlier pins).
    pub fn put(&self, key: &str, value: &[u8], layers: &[Digest]) -> Result<()> {
        for d in layers {
            if get_layer(self.w, d)?.is_none() {
                return Err(Error::LayerNotFound(d.to_string()));
            }
        }
        self.w.put(Table::CacheIndex, key, value)?;
        if layers.is_empty() {
            self.w.delete(Table::CachePins, key)?;
        } else {
            self.w.put(Table::CachePins, key, &encode(&layers))?;
        }
        let leased: Vec<(LeaseKind, &Digest)> =
            layers.iter().map(|d| (LeaseKind::Layer, d)).collect();
        self.store.unlease_in(self.w, &leased)
    }

    /// Removes `key` and its pins; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.w.delete(Table::CachePins, key)?;
        self.w.delete(Table::CacheIndex, key)
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.w.scan(Table::CacheIndex, prefix)
    }
}

impl Store {
    /// The cache-index value under `key`.
    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.meta.read(|r| r.get(Table::CacheIndex, key))
    }

    /// The values under several keys, read in one transaction (one answer
    /// per key, in order).
    pub fn cache_get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.meta
            .read(|r| keys.iter().map(|k| r.get(Table::CacheIndex, k)).collect())
    }

    /// Stores `value` under `key` and pins `layers` (each must be known
    /// to the store) for as long as the entry exists.
    pub fn cache_put(&self, key: &str, value: &[u8], layers: &[Digest]) -> Result<()> {
        self.cache_batch(|b| b.put(key, value, layers))
    }

    /// Removes `key` and its pins; whether it was there. The layers it
    /// pinned are collected by the next prune if nothing else uses them.
    pub fn cache_delete(&self, key: &str) -> Result<bool> {
        self.cache_batch(|b| b.delete(key))
    }

    /// All entries whose key starts with `prefix`, in key order.
    pub fn cache_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.meta.read(|r| r.scan(Table::CacheIndex, prefix))
    }

    /// The layers pinned by `key`.
    pub fn cache_pins(&self, key: &str) -> Result<Vec<Digest>> {
        self.meta.read(|r| {
            r.get(Table::CachePins, key)?
                .map(|v| decode(key, &v))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    /// Runs several cache-index reads and writes in one transaction:
    /// all are applied or none.
    pub fn cache_batch<T>(&self, f: impl FnOnce(&CacheBatch<'_, '_>) -> Result<T>) -> Result<T> {
        self.meta.write(|w| f(&CacheBatch { store: self, w }))
    }
}
