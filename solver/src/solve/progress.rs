//! What the solver tells the user while it works: one stream of events per
//! vertex (started, cached, output, status, done, failed). The CLI renders
//! them (BuildKit's plain lines, a live terminal view, or nothing); the
//! solver never prints.

use std::time::Duration;

pub use executor::Stream;

use crate::llb::VertexId;

/// One thing that happened to a vertex.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Work on the vertex began (it was not in the cache).
    Started {
        /// The vertex.
        vertex: VertexId,
        /// Its progress name.
        name: &'a str,
    },
    /// The vertex's result came from the cache.
    Cached {
        /// The vertex.
        vertex: VertexId,
        /// Its progress name.
        name: &'a str,
    },
    /// Output of the vertex's process (not necessarily whole lines).
    Log {
        /// The vertex.
        vertex: VertexId,
        /// Which stream.
        stream: Stream,
        /// The bytes.
        data: &'a [u8],
    },
    /// A status line (`transferring context: 12 files 3.4kB`).
    Status {
        /// The vertex.
        vertex: VertexId,
        /// The text.
        text: &'a str,
    },
    /// The vertex finished.
    Done {
        /// The vertex.
        vertex: VertexId,
        /// How long it took.
        elapsed: Duration,
    },
    /// The vertex failed (the error is also returned by the solver).
    Failed {
        /// The vertex.
        vertex: VertexId,
        /// How long it ran.
        elapsed: Duration,
        /// A one-line description.
        error: &'a str,
    },
}

/// Receives events, from any worker thread.
pub trait Progress: Send + Sync {
    /// Something happened.
    fn event(&self, event: Event<'_>);
}

/// Ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullProgress;

impl Progress for NullProgress {
    fn event(&self, _: Event<'_>) {}
}
