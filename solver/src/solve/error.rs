//! The solver's errors. Each names the step, image, path or secret at
//! fault; the CLI adds the Dockerfile location (`Error::vertex`).

use crate::llb::VertexId;

/// What went wrong while solving or exporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cache::Error),
    /// A sandbox could not be set up or run.
    #[error(transparent)]
    Executor(#[from] executor::Error),
    /// A file operation (COPY, ADD, WORKDIR, …) failed.
    #[error(transparent)]
    FileOp(#[from] crate::fileop::Error),
    /// Reading a COPY source failed.
    #[error(transparent)]
    Source(#[from] crate::contenthash::Error),
    /// A `.dockerignore` pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] crate::context::PatternError),
    /// A base image is not in the store (and this resolver cannot fetch it).
    #[error("image {reference} not found in the local store{hint}")]
    ImageNotFound {
        /// The normalised reference.
        reference: String,
        /// A hint for the user, starting with `; ` when present.
        hint: String,
    },
    /// Talking to a registry about an image or a cache failed.
    #[error("{reference}: {source}")]
    Registry {
        /// The image or cache reference.
        reference: String,
        /// What went wrong (boxed: it is large).
        #[source]
        source: Box<cache::registry::Error>,
    },
    /// Importing or exporting a build cache failed.
    #[error("{what}: {message}")]
    RemoteCache {
        /// The cache (`registry cache REF`, `local cache DIR`, …).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// A RUN step exited unsuccessfully.
    #[error("process {command:?} did not complete successfully: {status}")]
    RunFailed {
        /// The command as BuildKit shows it (`/bin/sh -c make`).
        command: String,
        /// How it ended (`exit code: 2`, `killed by SIGKILL …`).
        status: String,
        /// The exit code a shell would report.
        exit_code: i32,
        /// The last lines of its output.
        tail: Vec<String>,
    },
    /// A secret the Dockerfile requires was not given.
    #[error("secret {id} not found: pass it with --secret id={id},src=PATH (or env=VAR)")]
    SecretNotFound {
        /// The secret id.
        id: String,
    },
    /// A feature kiln does not have yet.
    #[error("{0}: not supported yet")]
    Unsupported(String),
    /// A cache record could not be read (a newer or damaged kiln wrote it).
    #[error("build cache entry {key}: {message}")]
    BadRecord {
        /// The cache key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The build was cancelled (Ctrl-C).
    #[error("build cancelled")]
    Cancelled,
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// An error in a step: which vertex, and what happened.
    #[error("{name}: {source}")]
    Vertex {
        /// The vertex.
        vertex: VertexId,
        /// Its progress name (`[build 2/5] RUN make`).
        name: String,
        /// Its Dockerfile lines, if any.
        lines: Option<(u32, u32)>,
        /// What happened.
        #[source]
        source: Box<Error>,
    },
    /// An I/O error outside the store, naming the path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The innermost error (under any [`Error::Vertex`] wrappers).
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Vertex { source, .. } => source.root_cause(),
            e => e,
        }
    }

    /// The vertex the error happened in.
    pub fn vertex(&self) -> Option<StepRef<'_>> {
        match self {
            Error::Vertex {
                vertex,
                name,
                lines,
                ..
            } => Some(StepRef {
                vertex: *vertex,
                name,
                lines: *lines,
            }),
            _ => None,
        }
    }

    /// Whether this is (caused by) cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.root_cause(), Error::Cancelled)
    }
}

/// The step an error happened in.
#[derive(Debug, Clone, Copy)]
pub struct StepRef<'a> {
    /// The vertex.
    pub vertex: VertexId,
    /// Its progress name.
    pub name: &'a str,
    /// Its first and last Dockerfile lines.
    pub lines: Option<(u32, u32)>,
}

/// Result of solving.
pub type Result<T> = std::result::Result<T, Error>;
