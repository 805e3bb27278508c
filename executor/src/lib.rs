//! The executor.
//!
//! Owns running a process inside an image's filesystem: copy-on-write
//! snapshots (overlayfs, with a copy-based fallback), the Linux sandbox
//! (namespaces, pivot_root, mounts, user, capabilities, cgroup limits),
//! networking modes, and per-step log capture. It knows nothing of images or
//! the store: it is handed directories and returns directories (and tar
//! streams).
//!
//! A RUN step, end to end:
//!
//! ```no_run
//! # fn main() -> executor::Result<()> {
//! use executor::{CaptureSink, RunIo, Runtime, SandboxSpec, Snapshotter};
//! # let (parent_layers, scratch): (Vec<std::path::PathBuf>, std::path::PathBuf) = (vec![], "/s".into());
//! let mut snap = Snapshotter::from_env()?.prepare(&parent_layers, &scratch)?;
//! let mut out = CaptureSink::default();
//! let outcome = Runtime::new().run(
//!     &mut snap,
//!     &SandboxSpec::new(["/bin/sh", "-c", "echo hi > /greeting"]),
//!     RunIo::new(&mut out),
//! )?;
//! assert!(outcome.success());
//! let lowers = snap.lowers().to_vec();
//! let layer_dir = snap.commit()?; // rename into the store…
//! let (tar, _summary) =
//!     executor::diff::write_layer(&layer_dir, &lowers, Vec::new(), &Default::default())?;
//! # Ok(()) }
//! ```
//!
//! The binary that uses the runtime must call [`run_if_requested`] at the
//! very start of `main`: the sandbox helper is that same binary, re-executed
//! (see [`helper`](crate::run_if_requested) for why).
//!
//! Invariants: nothing is ever mounted in the caller's mount namespace;
//! files the sandbox creates only to mount on (and the generated
//! `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`) never reach a layer;
//! all `unsafe` code lives in one module (`sys`).

mod cancel;
mod caps;
mod cgroup;
mod compare;
pub mod container;
pub mod diff;
mod error;
mod fsutil;
mod helper;
mod layers;
mod logs;
mod network;
mod outcome;
mod proto;
mod runtime;
pub mod snapshot;
mod spec;
mod sys;
mod user;

pub use cancel::CancelToken;
pub use error::{Error, Result};
pub use helper::run_if_requested;
pub use logs::{CHUNK, CaptureSink, LogSink, NullSink, PrefixSink, Stream};
pub use outcome::{Outcome, Status};
pub use proto::HELPER_ARG;
pub use runtime::{RunIo, Runtime};
pub use snapshot::{Snapshot, Snapshotter, SnapshotterKind};
pub use spec::{
    DEFAULT_HOSTNAME, DEFAULT_PATH, Limits, MIN_MEMORY, Mount, MountKind, Network, SandboxSpec,
    Security,
};
