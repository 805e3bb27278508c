//! The error type of the registry client.
//!
//! Every variant names the registry, repository, reference or blob it is
//! about, so the binary can print it as is.

use crate::error::Error as StoreError;

/// Shorthand for the registry client's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store refused or failed (digest mismatch, disk full, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storing a downloaded blob failed: a wrong digest or size, a
    /// truncated or hostile layer, a full disk.
    #[error("{what}: {error}")]
    Blob {
        /// "layer sha256:… of localhost:5000/app".
        what: String,
        /// What the store said.
        error: StoreError,
    },
    /// The connection failed (refused, reset, timed out, TLS) after the
    /// retries allowed.
    #[error("{method} {url}: {message}{hint}")]
    Transport {
        /// HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
        /// A hint for the user (e.g. about `--insecure-registry`), or "".
        hint: String,
    },
    /// The registry refused our credentials, or wants some we do not have.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// What was being done ("pull localhost:5000/app", "login").
        what: String,
        /// The registry's message plus what kiln knows (no credentials, …).
        message: String,
    },
    /// The repository, manifest or blob does not exist (or we may not see it).
    #[error("{what}: not found{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    NotFound {
        /// The reference or blob.
        what: String,
        /// The registry's message.
        message: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: unexpected status {status}: {message}")]
    Status {
        /// HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error codes and messages, or the start of the body.
        message: String,
    },
    /// A manifest, index, config or token response is malformed or
    /// unsupported.
    #[error("{what}: {reason}")]
    Invalid {
        /// What it is ("manifest localhost:5000/app:1").
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No manifest in an index matches the requested platform.
    #[error("no matching manifest for {platform} in {reference} (available: {available})")]
    NoPlatform {
        /// The reference pulled.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// The platforms the index offers.
        available: String,
    },
    /// Reading or writing the credentials file (or running a helper) failed.
    #[error("credentials {path}: {message}")]
    Credentials {
        /// The config file or helper program.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A bad argument (platform string, option value).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether this error means "the thing is not there".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether this error means "credentials refused or missing".
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
