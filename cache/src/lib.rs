//! The content-addressed store.
//!
//! Owns the state directory: blobs addressed by digest, unpacked layer
//! directories, image records and tags, the build-cache index (all metadata
//! in one transactional database), image archives (docker-archive, OCI
//! layout) and the registry client ([`registry`]). Every write is atomic.
//!
//! # Invariants
//! - A file under `blobs/sha256/<hex>` is complete and hashes to `<hex>`.
//! - A directory under `layers/<hex>` is a complete, immutable unpacked
//!   layer (overlayfs upperdir format) whose tar hashes to `sha256:<hex>`.
//! - Metadata changes are redb transactions; files are written in the
//!   temporary area, fsynced and renamed into place, and leased before
//!   they appear, so `kill -9` at any moment leaves a working store and
//!   the next [`Store::open`] removes what the dead process left behind.
//! - Several processes may use one state directory at once (see
//!   [`meta`](crate::meta) for how the database is shared).
//!
//! # Entry points
//! [`Store`] (open, blobs, layers, lazy layers and their [`Materialize`]r,
//! images, tags, cache index, prune),
//! [`archive`] (load/save tarballs), [`rootfs`] (export/import),
//! [`ImageRef`] (reference grammar), [`Digest`].
//!
//! The on-disk layout is described in [`layout`](crate::layout) and
//! `docs/store.md`.

mod bgwrite;
mod blobs;
mod cache_index;
mod compression;
mod config;
mod digest;
mod error;
mod fsutil;
mod gc;
mod images;
mod layers;
mod layout;
mod lazy;
mod meta;
mod oci;
mod records;
mod reference;
mod scan;
mod store;
mod temp;
mod unpack;
mod usage;

#[cfg(test)]
mod testutil;

pub mod archive;
pub mod registry;
pub mod rootfs;

pub use cache_index::CacheBatch;
pub use compression::Compression;
pub use config::{HistoryEntry, ImageConfig};
pub use digest::Digest;
pub use error::{Error, Result};
pub use gc::{PruneOptions, PruneReport};
pub use images::{METADATA_LIMIT, NewImage, Removed};
pub use layers::LayerHints;
pub use lazy::Materialize;
pub use records::{Descriptor, Image, Layer, LayerRecipe, media};
pub use reference::{DEFAULT_REGISTRY, ImageRef};
pub use store::Store;
pub use unpack::OPAQUE_XATTR;
pub use usage::{DiskUsage, UsageRow};
