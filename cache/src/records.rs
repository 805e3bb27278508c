//! The records kept in the metadata database, and the public views of
//! them ([`Image`], [`Layer`], [`Descriptor`]).
//!
//! Records are JSON, so that adding a field later needs no migration
//! (`#[serde(default)]`).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// OCI media types kiln reads and writes.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// zstd OCI layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker v2 schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (rare).
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
}

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
}

/// A layer known to the store, keyed by its diffID (the sha256 of the
/// uncompressed tar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub size: u64,
    /// The blobs holding this layer (the first is preferred), each with
    /// its media type telling its compression.
    pub blobs: Vec<Descriptor>,
    /// For a *lazy* layer: how to regenerate its uncompressed tar, whose
    /// blob (digest = diffID) may not exist yet (see
    /// [`Store::open_layer_blob`](crate::Store::open_layer_blob)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<LayerRecipe>,
}

impl Layer {
    /// The preferred blob.
    pub fn blob(&self) -> &Descriptor {
        &self.blobs[0]
    }

    /// Whether `blob` is this layer's regenerable tar (which may be
    /// absent from `blobs/`).
    pub(crate) fn is_lazy_blob(&self, blob: &Digest) -> bool {
        self.recipe.is_some() && blob == &self.diff_id
    }
}

/// How to regenerate a lazy layer's tar: the layer tar of the overlay of
/// `stack` (unpacked layer directories, topmost first), diffed against
/// `lowers` (topmost first), with mtimes clamped to `clamp_mtime`. What
/// the layers are is the store's business (they are kept while the lazy
/// layer is); how to write the tar is the installed
/// [`Materialize`](crate::Materialize)'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecipe {
    /// Layers merged into the view the tar is written from, topmost first.
    pub stack: Vec<Digest>,
    /// Base layers the diff is taken against, topmost first.
    pub lowers: Vec<Digest>,
    /// `SOURCE_DATE_EPOCH` clamp of the tar's mtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp_mtime: Option<i64>,
    /// Set (to the layer's own diffID) when the tar is the diff of the
    /// layer's own unpacked directory against `lowers` — a build step's
    /// layer committed without its blob; `stack` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_dir: Option<Digest>,
}

impl LayerRecipe {
    /// Every layer the recipe reads.
    pub(crate) fn layers(&self) -> impl Iterator<Item = &Digest> {
        self.stack.iter().chain(&self.lowers)
    }
}

/// What the database keeps about an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub(crate) manifest: Descriptor,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Digest>,
    #[serde(default)]
    pub(crate) repo_digests: Vec<String>,
    /// `created` of the config, as written there (RFC 3339), if any.
    #[serde(default)]
    pub(crate) created: Option<String>,
    /// When the image was stored or last tagged (unix seconds).
    pub(crate) added: i64,
    /// Sum of the uncompressed layer sizes.
    pub(crate) size: u64,
}

/// An image in the store. Its ID is its config digest, as with docker.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID: the digest of the config.
    pub id: Digest,
    /// The manifest blob.
    pub manifest: Descriptor,
    /// The config blob (its digest is the ID).
    pub config: Descriptor,
    /// diffIDs of the layers, bottom first.
    pub layers: Vec<Digest>,
    /// Tags pointing at this image, sorted.
    pub tags: Vec<ImageRef>,
    /// `name@digest` references this image was pulled by.
    pub repo_digests: Vec<String>,
    /// The config's `created`, RFC 3339.
    pub created: Option<String>,
    /// When it was stored or last tagged, unix seconds.
    pub added: i64,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
}

impl Image {
    pub(crate) fn from_record(id: Digest, r: ImageRecord, tags: Vec<ImageRef>) -> Image {
        Image {
            id,
            manifest: r.manifest,
            config: r.config,
            layers: r.layers,
            tags,
            repo_digests: r.repo_digests,
            created: r.created,
            added: r.added,
            size: r.size,
        }
    }
}

/// Decodes a JSON record, naming it on failure.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::CorruptRecord {
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

/// Now, in unix seconds.
pub(crate) fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}
