//! [`Store`]: opening a state directory, scratch space and leases.
//!
//! A *lease* records in the database that this process is using a blob or
//! a layer that no image references yet (a blob just downloaded, a layer
//! just unpacked as a lowerdir). The garbage collector keeps everything a
//! live process has leased. Leases are written *before* a file is renamed
//! into `blobs/` or `layers/`, and the collector holds the database lock
//! while it deletes, so it can never delete something a writer is about to
//! use. A lease dies with its process (see [`crate::temp`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::fsutil::mkdirs;
use crate::layout::Layout;
use crate::meta::{Meta, Reader, Table};
use crate::temp::{self, Owner};

/// What a lease protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LeaseKind {
    Blob,
    Layer,
}

impl LeaseKind {
    fn tag(self) -> &'static str {
        match self {
            LeaseKind::Blob => "blob",
            LeaseKind::Layer => "layer",
        }
    }
}

/// A lease key: `owner\tkind\tdigest`.
pub(crate) fn lease_key(owner: &str, kind: LeaseKind, d: &Digest) -> String {
    format!("{owner}\t{}\t{d}", kind.tag())
}

/// Splits a lease key into (owner, kind, digest).
pub(crate) fn parse_lease_key(key: &str) -> Option<(&str, LeaseKind, Digest)> {
    let mut it = key.splitn(3, '\t');
    let owner = it.next()?;
    let kind = match it.next()? {
        "blob" => LeaseKind::Blob,
        "layer" => LeaseKind::Layer,
        _ => return None,
    };
    let d = Digest::parse(it.next()?).ok()?;
    Some((owner, kind, d))
}

/// An open state directory. Cheap to open; safe to share between threads
/// and to use from several processes at once.
#[derive(Debug)]
pub struct Store {
    pub(crate) layout: Layout,
    pub(crate) meta: Meta,
    owner: OnceLock<Owner>,
    owner_init: Mutex<()>,
    leased: Mutex<HashSet<String>>,
    pub(crate) materializer: crate::lazy::Slot,
}

impl Store {
    /// Opens (creating if needed) the state directory at `root`. Cleans up
    /// after processes that died while writing: their temporary files and
    /// whatever they had stored that nothing references.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let layout = Layout::new(root.as_ref());
        for dir in [
            layout.blobs(),
            layout.layers(),
            layout.tmp(),
            layout.locks(),
        ] {
            mkdirs(&dir)?;
        }
        let meta = Meta::new(layout.db(), layout.db_lock());
        let store = Store {
            layout,
            meta,
            owner: OnceLock::new(),
            owner_init: Mutex::new(()),
            leased: Mutex::new(HashSet::new()),
            materializer: Default::default(),
        };
        let dead = temp::clean_dead(&store.layout.tmp())?;
        if !dead.is_empty() {
            tracing::info!(
                "cleaning up after {} interrupted kiln process(es)",
                dead.len()
            );
            store.collect_dead_leases(&dead)?;
        }
        Ok(store)
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// A fresh scratch directory on the store's filesystem, removed when
    /// the returned guard is dropped. Directories created inside it can be
    /// renamed into the store (see [`Store::commit_layer_dir`]).
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        let owner = self.owner()?;
        tempfile::Builder::new()
            .prefix("scratch-")
            .tempdir_in(owner.dir())
            .at("create temporary directory in", owner.dir())
    }

    /// `logs/` (created on first use): where build logs go.
    pub fn logs_dir(&self) -> Result<PathBuf> {
        let d = self.layout.logs();
        mkdirs(&d)?;
        Ok(d)
    }

    /// `cache-mounts/` (created on first use): persistent directories of
    /// `RUN --mount=type=cache`.
    pub fn cache_mounts_dir(&self) -> Result<PathBuf> {
        let d = self.layout.cache_mounts();
        mkdirs(&d)?;
        Ok(d)
    }

    /// `snapshots/` (created on first use): active overlay snapshots.
    pub fn snapshots_dir(&self) -> Result<PathBuf> {
        let d = self.layout.snapshots();
        mkdirs(&d)?;
        Ok(d)
    }

    /// This process's owner area, created on first use.
    pub(crate) fn owner(&self) -> Result<&Owner> {
        if let Some(o) = self.owner.get() {
            return Ok(o);
        }
        let _g = self.owner_init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = self.owner.get() {
            return Ok(o);
        }
        let o = Owner::create(&self.layout.tmp())?;
        let _ = self.owner.set(o);
        Ok(self.owner.get().expect("just set"))
    }

    /// A fresh path for a temporary file or directory.
    pub(crate) fn tmp_path(&self, what: &str) -> Result<PathBuf> {
        Ok(self.owner()?.fresh_path(what))
    }

    /// Records leases on `items` for this process (one transaction, skipped
    /// for items already leased).
    pub(crate) fn lease(&self, items: &[(LeaseKind, &Digest)]) -> Result<()> {
        let owner = self.owner()?.id().to_string();
        let keys: Vec<String> = {
            let leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
            items
                .iter()
                .map(|(k, d)| lease_key(&owner, *k, d))
                .filter(|k| !leased.contains(k))
                .collect()
        };
        if keys.is_empty() {
            return Ok(());
        }
        self.meta.write(|w| {
            for k in &keys {
                w.put(Table::Leases, k, b"")?;
            }
            Ok(())
        })?;
        self.leased
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keys);
        Ok(())
    }

    /// Does this process hold a lease on `d`? (Answered from memory.)
    pub(crate) fn holds_lease(&self, kind: LeaseKind, d: &Digest) -> bool {
        let Some(owner) = self.owner.get() else {
            return false;
        };
        let key = lease_key(owner.id(), kind, d);
        self.leased
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
    }

    /// Drops this process's leases on `items` (inside a write transaction).
    pub(crate) fn unlease_in(
        &self,
        w: &crate::meta::WriteTx<'_>,
        items: &[(LeaseKind, &Digest)],
    ) -> Result<()> {
        let Some(owner) = self.owner.get() else {
            return Ok(());
        };
        let mut leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        for (k, d) in items {
            let key = lease_key(owner.id(), *k, d);
            w.delete(Table::Leases, &key)?;
            leased.remove(&key);
        }
        Ok(())
    }

    /// The owner ID of this process, if it has written anything.
    pub(crate) fn owner_id(&self) -> Option<&str> {
        self.owner.get().map(|o| o.id())
    }

    fn release_all_leases(&self) -> Result<()> {
        let Some(owner) = self.owner.get() else {
            return Ok(());
        };
        let mut leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        if leased.is_empty() {
            return Ok(());
        }
        let prefix = format!("{}\t", owner.id());
        self.meta.write(|w| {
            for (k, _) in w.scan(Table::Leases, &prefix)? {
                w.delete(Table::Leases, &k)?;
            }
            Ok(())
        })?;
        leased.clear();
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.release_all_leases() {
            tracing::warn!("releasing leases: {e}");
        }
    }
}
