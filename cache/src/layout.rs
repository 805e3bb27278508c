//! Where things live under the state directory.
//!
//! ```text
//! <root>/
//!   meta.redb            metadata database (images, tags, layers, cache index, leases)
//!   meta.lock            flock serialising access to meta.redb across processes
//!   blobs/sha256/<hex>   content-addressed blobs: configs, manifests, layer tars (as received)
//!   layers/<hex>/        unpacked layers keyed by diffID, in overlayfs upperdir format
//!   locks/<hex>          per-layer unpack locks
//!   tmp/<owner>/         per-process scratch space; tmp/<owner>.lock is held while it lives
//!   logs/                reserved: build logs (executor/solver)
//!   cache-mounts/        reserved: RUN --mount=type=cache directories
//!   snapshots/           reserved: active overlay snapshots
//! ```
//!
//! Everything that is renamed into `blobs/` or `layers/` is first written
//! under `tmp/`, which is on the same filesystem.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// The paths of one state directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.root.join("meta.redb")
    }

    pub(crate) fn db_lock(&self) -> PathBuf {
        self.root.join("meta.lock")
    }

    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs().join(d.hex())
    }

    pub(crate) fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers().join(diff_id.hex())
    }

    pub(crate) fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub(crate) fn cache_mounts(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }

    pub(crate) fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }
}
