//! The file-operation engine: COPY/ADD, mkdir, mkfile and rm on directories.
//!
//! The destination is a root filesystem directory — during a build, the
//! merged view of an overlay mount, so writes land in its upperdir. Every
//! destination path is resolved inside that root ([`RootDir`], `openat2`
//! `RESOLVE_IN_ROOT`): hostile symlinks in the image cannot make a copy write
//! outside it. Sources are read in place through
//! [`SourceTree`](crate::contenthash::SourceTree), the same view that
//! computes the copy's cache key, so the key covers exactly what is copied.
//!
//! Entry points: [`copy`] (plan with [`plan_copy`], write with [`execute`]),
//! which returns a [`Manifest`]; [`delta_copy`], which rewrites only what
//! changed since a previous manifest, as an overlay layer with whiteouts;
//! [`mkdir`], [`mkfile`], [`rm`]; [`ChownSpec`] and [`Chmod`] for `--chown`
//! and `--chmod`; [`fetch_url`] for ADD of a URL. ADD of a git URL is not
//! supported yet ([`Error::GitUnsupported`]).

mod archive;
mod chmod;
mod copy;
mod delta;
mod http;
mod ops;
mod owner;
mod root;

use std::path::{Path, PathBuf};

pub use archive::{extract as extract_archive, is_archive};
pub use chmod::Chmod;
pub use copy::{
    CopyOptions, DeferredDigests, Kind, Manifest, ManifestEntry, Plan, copy, execute, plan_copy,
};
pub use delta::{DeltaResult, delta_copy};
pub use http::{Fetched, fetch_url, is_git_url, is_http_url, url_filename};
pub use ops::{mkdir, mkfile, rm};
pub use owner::{ChownSpec, Id, Owner};
pub use root::RootDir;

/// Errors of file operations; each names the path or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path (on the host).
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Reading or selecting the source failed.
    #[error(transparent)]
    Source(#[from] crate::contenthash::Error),
    /// A path element that must be a directory is not.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A directory source onto an existing non-directory.
    #[error("cannot copy to non-directory: {}", path.display())]
    CannotCopyToNonDir {
        /// The destination.
        path: PathBuf,
    },
    /// A file source onto an existing directory.
    #[error("cannot replace to directory {} with file", path.display())]
    CannotReplaceDir {
        /// The destination.
        path: PathBuf,
    },
    /// A path to remove does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path inside the root.
        path: String,
    },
    /// A resolved path left the root (should be impossible with openat2).
    #[error("{}: resolves outside the root", path.display())]
    Escape {
        /// The path.
        path: PathBuf,
    },
    /// A bad argument (mode, checksum, manifest…).
    #[error("{0}")]
    Invalid(String),
    /// A tar archive could not be extracted.
    #[error("extracting {}: {reason}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Downloading a URL failed.
    #[error("downloading {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// `--checksum` does not match.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// `--checksum`.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// ADD of a git repository.
    #[error("ADD of git URL {url}: not supported yet")]
    GitUnsupported {
        /// The URL.
        url: String,
    },
    /// A delta copy cannot be made; copy in full.
    #[error("delta copy not possible: {0}")]
    DeltaUnsupported(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of file operations.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests;
