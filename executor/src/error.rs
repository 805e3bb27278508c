//! The executor's error type.
//!
//! Every variant names what it was working on (a path, a program, a cgroup
//! file) so the binary can print a useful message without guessing.

use std::path::PathBuf;

/// The result type of every fallible executor function.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on a path failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we were doing (`"create"`, `"read"`, `"mount overlay on"`, …).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// An operation not tied to one path failed (spawning, a pipe, a socket).
    #[error("{op}: {source}")]
    Os {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The caller asked for something the executor cannot do (bad spec,
    /// bad option value, unsupported combination).
    #[error("{0}")]
    Invalid(String),

    /// Neither snapshotter can serve this request.
    #[error("cannot prepare a snapshot: {0}")]
    Snapshot(String),

    /// Setting up the sandbox failed before the command started (mounts,
    /// user lookup, working directory, …). `stage` says which step.
    #[error("sandbox setup failed while {stage}: {message}")]
    Setup {
        /// The setup step that failed (`"mounting /proc"`, `"resolving user"`).
        stage: String,
        /// The error, already with its context.
        message: String,
    },

    /// The command could not be executed (not found, not executable).
    #[error("{message}")]
    Exec {
        /// The program as given in argv\[0\].
        program: String,
        /// The OS error number from `execve`, when there was one.
        errno: Option<i32>,
        /// A docker-style message, e.g. `exec: "foo": executable file not found in $PATH`.
        message: String,
    },

    /// A resource limit could not be applied.
    #[error("cgroup {}: {message}", path.display())]
    Cgroup {
        /// The cgroup file or directory involved.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// The sandbox helper process misbehaved (died during setup, broke the
    /// protocol). Usually means the helper binary is not a kiln binary.
    #[error("sandbox helper: {0}")]
    Helper(String),
}

impl Error {
    /// Wraps an I/O error with the operation and the path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Wraps an I/O error with the operation only.
    pub(crate) fn os(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        Error::Os {
            op,
            source: source.into(),
        }
    }

    /// The exit status docker gives this error when it stops `docker run`:
    /// 127 for a command that was not found, 126 for one that cannot be
    /// executed, 125 for everything else (the runtime's own failures).
    pub fn docker_exit_code(&self) -> u8 {
        match self {
            Error::Exec { errno, .. } => match errno {
                Some(libc::ENOENT) => 127,
                _ => 126,
            },
            _ => 125,
        }
    }
}

/// Extension to attach a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] naming `op` and `path`.
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e.into()))
    }
}
