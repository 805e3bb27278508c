//! Transfer progress, reported to whoever renders it (the binary draws
//! bars on a terminal, plain lines otherwise). Calls come from several
//! threads at once.

use crate::digest::Digest;

/// How a blob ended up where it had to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Pull: the store already had it. Push: the registry already had it.
    AlreadyExists,
    /// Downloaded into the store.
    Downloaded,
    /// Uploaded to the registry.
    Pushed,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Push: a local layer was compressed (into the store) for upload;
    /// its events are keyed by the diffID.
    Compressed,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A blob transfer is starting; `size` in bytes.
    Start {
        /// The blob (as the registry knows it).
        digest: &'a Digest,
        /// Bytes to transfer.
        size: u64,
        /// "download", "upload", "compress".
        action: &'static str,
    },
    /// `done` of the blob's bytes are transferred (monotonic, except after
    /// a retry restarts a transfer).
    Progress {
        /// The blob.
        digest: &'a Digest,
        /// Bytes so far.
        done: u64,
    },
    /// The blob is finished.
    Done {
        /// The blob.
        digest: &'a Digest,
        /// How.
        outcome: BlobOutcome,
    },
    /// A request failed and will be retried after `delay_ms`.
    Retry {
        /// What was being done, e.g. `GET http://…/blobs/sha256:…`.
        what: &'a str,
        /// The error.
        error: &'a str,
        /// Attempt number that failed (1-based).
        attempt: u32,
    },
}

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    /// Called for every event.
    fn event(&self, event: Event<'_>);
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: Event<'_>) {}
}
