//! Content hashing of COPY/ADD sources, BuildKit `contenthash` style.
//!
//! A [`SourceTree`] reads a source directory in place (the build context,
//! filtered by `.dockerignore`, or another stage's root filesystem). Its
//! digests ignore mtimes and cover, per entry, the tarsum-v1 header fields
//! (mode with setuid/setgid/sticky, uid, gid — 0:0 for the context —, size,
//! type, symlink target, device numbers, xattrs as BuildKit filters them)
//! and the content (BLAKE3 for a file's header and content: a cold context
//! is read and hashed in full, and BLAKE3 is several times faster than
//! sha256 on one core; sha256 elsewhere); a directory's digest is a Merkle
//! hash over its sorted entries. [`SourceTree::selection_digest`] gives
//! the cache-key input of one COPY source ([`Selection`]): exactly the
//! selected files' names, modes, ownership and content.
//!
//! File digests are computed in parallel (rayon) and remembered in a
//! [`StatCache`] by (path, size, mtime, ctime, inode, mode, device), so an
//! unchanged context is not read again.

mod digest;
mod hash;
mod header;
mod select;
mod statcache;
mod tree;

use std::path::{Path, PathBuf};

pub use digest::Digest;
pub use header::{header_bytes, xattr_counts};
pub use select::{SelectedEntry, Selection, SourceMatch};
pub use statcache::{FileStatCache, MemoryStatCache, StatCache, StatKey};
pub use tree::{Meta, Node, SourceOptions, SourceTree, read_file_xattrs, read_xattrs};

/// Errors of content hashing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source path does not exist (or is excluded by `.dockerignore`).
    #[error("\"/{path}\": not found")]
    NotFound {
        /// The path, relative to the source root.
        path: String,
    },
    /// Reading the source failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The source root is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Symlinks loop.
    #[error("{path}: too many levels of symbolic links")]
    TooManySymlinks {
        /// The path being resolved.
        path: String,
    },
    /// A malformed wildcard in a source path.
    #[error("invalid wildcard in source path {pattern:?}")]
    BadWildcard {
        /// The source path.
        pattern: String,
    },
    /// A malformed include/exclude pattern.
    #[error(transparent)]
    Pattern(#[from] crate::context::PatternError),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn not_found(path: &str) -> Error {
        Error::NotFound {
            path: path.trim_start_matches('/').to_string(),
        }
    }
}

/// Result of content hashing.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests;
