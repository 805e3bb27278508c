//! The LLB-like build graph: plain, serialisable data that the frontend
//! produces and the solver executes.
//!
//! A [`Definition`] is a list of [`Vertex`]es in topological order (every
//! vertex's inputs come before it). Each vertex holds one [`Op`] — an image
//! source, the local build context, an HTTP or git source, a process to run
//! ([`Exec`]), file operations ([`FileOp`]) or a [`Merge`] of layers — and the
//! outputs of earlier vertices it reads ([`Output`]). An op names its inputs by
//! their *position in `Vertex::inputs`*, never by position in the definition,
//! so a vertex's [`Digest`] depends only on what it does and on the digests of
//! what it reads: the same Dockerfile and arguments give the same digests in
//! every run on every machine, and two builds that share a prefix share the
//! digests of that prefix.
//!
//! Next to the graph, a definition carries the image each compiled stage
//! accumulates ([`Image`]: the OCI/Docker config fields and the history) and,
//! for every history entry, where its layer comes from ([`LayerSource`]).
//!
//! Invariants the solver may rely on:
//! - `vertices[i].inputs[j].vertex < i` (topological order);
//! - every input index an op mentions is `< inputs.len()`;
//! - `vertex.digest == vertex.compute_digest(&inputs' digests)`, checked by
//!   [`Definition::verify`].
//! - An absent input (`None` where an op takes `Option<usize>`) means the
//!   empty filesystem (`scratch`).

mod definition;
mod digest;
mod exec;
mod file;
mod image;
mod op;
mod platform;
mod render;

pub use definition::{Definition, DefinitionBuilder, StageResult, Vertex, VertexId};
pub use digest::Digest;
pub use exec::{CacheSharing, Exec, Mount, MountKind, NetworkMode, ProxyEnv, SecurityMode};
pub use file::{Chmod, Chown, CopyAction, FileAction, FileOp, MkdirAction, MkfileAction, RmAction};
pub use image::{
    Empty, HISTORY_COMMENT, Healthcheck, History, Image, ImageConfig, LayerSource, RootFs,
};
pub use op::{GitSource, HttpSource, ImageSource, LocalSource, Merge, Op};
pub use platform::Platform;
pub use render::{render_dot, render_text};

/// One output of one vertex: `vertex` is the index of the vertex in
/// [`Definition::vertices`], `index` which of its outputs (every op kiln
/// emits today has exactly one output, index 0: the resulting filesystem).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Output {
    /// Index into [`Definition::vertices`].
    pub vertex: VertexId,
    /// Output number of that vertex.
    pub index: u32,
}

impl Output {
    /// Output 0 of `vertex`.
    pub fn of(vertex: VertexId) -> Self {
        Output { vertex, index: 0 }
    }
}
