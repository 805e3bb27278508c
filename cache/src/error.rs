//! The one error type of the `cache` crate.
//!
//! Every variant names what it is about (a path, a reference, a digest, an
//! archive member) so that the binary can print it as is, with context.

use std::io;
use std::path::{Path, PathBuf};

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "rename", …).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An I/O error on a stream (an archive on stdin, a caller's writer).
    #[error("{context}: {source}")]
    Stream {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("metadata database {}: {message}", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// A metadata record could not be decoded (a newer or damaged store).
    #[error("corrupt metadata record {key}: {message}")]
    CorruptRecord {
        /// Table and key of the record.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// Content did not hash to the digest it was expected to have.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being verified (a blob, a layer, an archive member).
        what: String,
        /// The digest it should have had.
        expected: String,
        /// The digest it had.
        actual: String,
    },
    /// Content had a different size than declared.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was being verified.
        what: String,
        /// The declared size.
        expected: u64,
        /// The real size.
        actual: u64,
    },
    /// A string is not a valid `sha256:<64 hex>` digest.
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    /// A string is not a valid image reference.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No image matches the reference or ID.
    #[error("no such image: {0}")]
    ImageNotFound(String),
    /// A short ID prefix matches several images.
    #[error("image ID prefix {prefix} is ambiguous: it matches {count} images")]
    AmbiguousImageId {
        /// The prefix given.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// A layer is not known to the store.
    #[error("no such layer: {0}")]
    LayerNotFound(String),
    /// A blob is not in the store.
    #[error("no such blob: {0}")]
    BlobNotFound(String),
    /// A layer tar contains an entry that could escape or corrupt the layer.
    #[error("refusing layer {layer}: entry {entry:?}: {reason}")]
    HostileEntry {
        /// The layer (diffID or blob digest) being unpacked.
        layer: String,
        /// The offending entry's name as written in the tar.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer tar is malformed (truncated, bad header, …).
    #[error("invalid layer {layer}: {reason}")]
    InvalidLayer {
        /// The layer being read.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// An image archive (docker-archive or OCI layout) is malformed.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// An image config or manifest is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidImage {
        /// "config sha256:…", "manifest sha256:…".
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An operation would break a rule (e.g. deleting a multiply-tagged
    /// image by ID without force).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An argument was invalid (e.g. a bad `--change` instruction).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Builds an [`Error::Io`] naming `path`.
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Builds an [`Error::Stream`].
    pub(crate) fn stream(context: impl Into<String>, source: io::Error) -> Self {
        Error::Stream {
            context: context.into(),
            source,
        }
    }
}

/// Adds a path to `io::Result`s: `fs::rename(a, b).at("rename", a)?`.
pub(crate) trait IoContext<T> {
    /// Turns the error into an [`Error::Io`] naming `path`.
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e.into()))
    }
}
