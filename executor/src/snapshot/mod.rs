//! Copy-on-write root filesystems for sandboxes.
//!
//! A [`Snapshotter`] turns a parent chain of layer directories (overlay
//! upperdir format, topmost first, as the store keeps them) and a scratch
//! directory into a [`Snapshot`]: a root filesystem a sandbox can write to
//! without touching the layers, and which afterwards yields exactly what
//! changed, as a new layer directory ([`Snapshot::commit`]) that the caller
//! renames into the store and/or writes as a tar with [`crate::diff`].
//!
//! Two implementations:
//! - **overlay**: lowerdirs = the chain, fresh upperdir/workdir in the
//!   scratch directory (see `overlay.rs` for the options); the upperdir *is*
//!   the new layer.
//! - **copy**: the merged chain copied into the scratch directory; the new
//!   layer is computed by walking (see `copy.rs`). Slower, needs nothing
//!   from the kernel.
//!
//! [`SnapshotterKind::Auto`] (the default) uses overlay and falls back to
//! copy when the overlay cannot be mounted (no overlayfs, not permitted,
//! too many layers) — [`Snapshot::fallback_reason`] says why. The scratch
//! directory must be on the store's filesystem so the result can be
//! renamed into it. Its layout: `upper/` (the new layer), `work/`
//! (overlay's), `rootfs/` and `.copied` (copy snapshotter), `empty/` (the
//! lowerdir of a FROM-scratch overlay). The sandbox attaches its root on the
//! scratch directory itself, inside its own mount namespace only.
//!
//! A snapshot that is neither committed nor discarded stays on disk (as a
//! kept `kiln run` container does); the store's garbage collection owns
//! abandoned scratch directories.

mod copy;
pub(crate) mod overlay;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::fs::CWD;
use rustix::mount::OpenTreeFlags;

use crate::error::{Error, IoContext, Result};
use overlay::LegacyMount;

/// The environment variable that selects the snapshotter.
pub const SNAPSHOTTER_ENV: &str = "KILN_SNAPSHOTTER";

/// Which snapshotter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotterKind {
    /// Overlay when it can be mounted, copy otherwise.
    #[default]
    Auto,
    /// Overlayfs only; fail if it cannot be mounted.
    Overlay,
    /// The copy-based fallback, always.
    Copy,
}

impl FromStr for SnapshotterKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "auto" => Ok(SnapshotterKind::Auto),
            "overlay" | "overlayfs" => Ok(SnapshotterKind::Overlay),
            "copy" | "native" => Ok(SnapshotterKind::Copy),
            other => Err(Error::Invalid(format!(
                "unknown snapshotter {other:?} (expected auto, overlay or copy)"
            ))),
        }
    }
}

impl std::fmt::Display for SnapshotterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotterKind::Auto => "auto",
            SnapshotterKind::Overlay => "overlay",
            SnapshotterKind::Copy => "copy",
        })
    }
}

/// Prepares snapshots.
#[derive(Debug, Clone, Default)]
pub struct Snapshotter {
    kind: SnapshotterKind,
    force_legacy_mount: bool,
}

impl Snapshotter {
    /// A snapshotter of the given kind.
    pub fn new(kind: SnapshotterKind) -> Self {
        Snapshotter {
            kind,
            force_legacy_mount: false,
        }
    }

    /// The kind named by `KILN_SNAPSHOTTER` (`auto` when unset).
    pub fn from_env() -> Result<Self> {
        let v = std::env::var(SNAPSHOTTER_ENV).unwrap_or_default();
        Ok(Snapshotter::new(v.parse()?))
    }

    /// The configured kind.
    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// Mount overlays with `mount(2)` and relative paths, as on kernels
    /// without `lowerdir+`. For tests of that path.
    #[doc(hidden)]
    pub fn force_legacy_mount(mut self, yes: bool) -> Self {
        self.force_legacy_mount = yes;
        self
    }

    /// Prepares a writable root filesystem on top of `lowers` (layer
    /// directories, topmost first; empty for `FROM scratch`) inside
    /// `scratch` (created if missing; must be empty; on the store's
    /// filesystem).
    pub fn prepare(&self, lowers: &[PathBuf], scratch: &Path) -> Result<Snapshot> {
        for l in lowers {
            if !l.is_absolute() {
                return Err(Error::Invalid(format!(
                    "layer directory {} is not an absolute path",
                    l.display()
                )));
            }
            let m = std::fs::metadata(l).ctx("open layer directory", l)?;
            if !m.is_dir() {
                return Err(Error::Invalid(format!(
                    "layer {} is not a directory",
                    l.display()
                )));
            }
        }
        std::fs::create_dir_all(scratch).ctx("create", scratch)?;
        let scratch = std::fs::canonicalize(scratch).ctx("resolve", scratch)?;
        if std::fs::read_dir(&scratch)
            .ctx("read", &scratch)?
            .next()
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "scratch directory {} is not empty",
                scratch.display()
            )));
        }
        let mut snap = Snapshot {
            lowers: lowers.to_vec(),
            scratch: scratch.clone(),
            backend: Backend::Copy {
                rootfs: PathBuf::new(),
                mark: (0, 0),
            },
            fallback: None,
        };
        if self.kind != SnapshotterKind::Copy {
            match self.prepare_overlay(lowers, &scratch) {
                Ok(b) => {
                    snap.backend = b;
                    return Ok(snap);
                }
                Err(reason) if self.kind == SnapshotterKind::Auto => {
                    // Undo the overlay's directories, then copy.
                    for d in ["upper", "work", "empty"] {
                        let p = scratch.join(d);
                        if p.exists() {
                            std::fs::remove_dir_all(&p).ctx("remove", &p)?;
                        }
                    }
                    snap.fallback = Some(reason);
                }
                Err(reason) => return Err(Error::Snapshot(reason)),
            }
        }
        let rootfs = scratch.join("rootfs");
        let mark = copy::materialize(lowers, &rootfs, &scratch.join(".copied"))?;
        snap.backend = Backend::Copy { rootfs, mark };
        Ok(snap)
    }

    fn prepare_overlay(
        &self,
        lowers: &[PathBuf],
        scratch: &Path,
    ) -> std::result::Result<Backend, String> {
        let upper = scratch.join("upper");
        let work = scratch.join("work");
        for d in [&upper, &work] {
            std::fs::create_dir(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        // Overlayfs needs at least one lowerdir: FROM scratch gets an
        // empty one.
        let lowers: Vec<PathBuf> = if lowers.is_empty() {
            let empty = scratch.join("empty");
            std::fs::create_dir(&empty).map_err(|e| format!("create {}: {e}", empty.display()))?;
            vec![empty]
        } else {
            lowers.to_vec()
        };
        let legacy = |why: Option<String>| -> std::result::Result<Backend, String> {
            let mount = overlay::legacy(&lowers, &upper, &work).map_err(|e| match &why {
                Some(w) => format!("{w}; {e}"),
                None => e,
            })?;
            Ok(Backend::Overlay {
                upper: upper.clone(),
                work: work.clone(),
                lowers: lowers.clone(),
                detached: None,
                legacy: Some(mount),
            })
        };
        if self.force_legacy_mount {
            return legacy(None);
        }
        match overlay::build_detached(&lowers, &upper, &work) {
            Ok(fd) => Ok(Backend::Overlay {
                upper,
                work,
                lowers,
                detached: Some(fd),
                legacy: None,
            }),
            Err(overlay::BuildError::Unsupported(why)) => legacy(Some(why)),
            Err(overlay::BuildError::Refused(why)) => Err(format!("overlay mount refused: {why}")),
        }
    }
}

/// A prepared root filesystem (see the module doc).
#[derive(Debug)]
pub struct Snapshot {
    lowers: Vec<PathBuf>,
    scratch: PathBuf,
    backend: Backend,
    fallback: Option<String>,
}

#[derive(Debug)]
enum Backend {
    Overlay {
        upper: PathBuf,
        work: PathBuf,
        /// The lowerdirs actually used (an empty one for FROM scratch).
        lowers: Vec<PathBuf>,
        /// The overlay built at prepare time, not yet handed to a sandbox.
        detached: Option<OwnedFd>,
        /// Set when the kernel lacks `lowerdir+`.
        legacy: Option<LegacyMount>,
    },
    Copy {
        rootfs: PathBuf,
        mark: copy::Mark,
    },
}

/// How the sandbox helper gets the root filesystem.
#[derive(Debug)]
pub(crate) enum RootfsSource {
    /// A detached mount to attach.
    Detached(OwnedFd),
    /// An overlay to mount with `mount(2)` after `chdir(cwd)`.
    Legacy(LegacyMount),
}

impl Snapshot {
    /// Which snapshotter this is (`Overlay` or `Copy`, never `Auto`).
    pub fn kind(&self) -> SnapshotterKind {
        match self.backend {
            Backend::Overlay { .. } => SnapshotterKind::Overlay,
            Backend::Copy { .. } => SnapshotterKind::Copy,
        }
    }

    /// Why the `auto` snapshotter fell back to copying, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The parent chain, topmost first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// The scratch directory the snapshot lives in.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The directory that receives the sandbox's writes: the upperdir for
    /// overlay, the copy for the copy snapshotter.
    pub fn writable_dir(&self) -> &Path {
        match &self.backend {
            Backend::Overlay { upper, .. } => upper,
            Backend::Copy { rootfs, .. } => rootfs,
        }
    }

    /// A descriptor of the snapshot's merged, writable root, for work done
    /// in kiln's own process (the solver's file operations): a detached
    /// overlay mount for overlay snapshots, the copied root for copy ones.
    /// Nothing is mounted anywhere: use it only as a directory descriptor
    /// (`openat`-style calls, or `/proc/self/fd/N/...` paths from this
    /// process). Writes land in the snapshot as a sandbox's would; drop the
    /// descriptor before [`Snapshot::commit`]. Fails on kernels without the
    /// new mount API's `lowerdir+` (use a copy snapshotter there).
    pub fn open_root(&mut self) -> Result<OwnedFd> {
        match self.rootfs_source()? {
            RootfsSource::Detached(fd) => Ok(fd),
            RootfsSource::Legacy(_) => Err(Error::Snapshot(
                "this kernel cannot build a detached overlay (no lowerdir+): \
                 use KILN_SNAPSHOTTER=copy"
                    .into(),
            )),
        }
    }

    /// Where the sandbox attaches its root: the scratch directory itself,
    /// covered only inside the sandbox's own mount namespace.
    pub(crate) fn mount_point(&self) -> PathBuf {
        self.scratch.clone()
    }

    /// A root filesystem for one sandbox run.
    pub(crate) fn rootfs_source(&mut self) -> Result<RootfsSource> {
        match &mut self.backend {
            Backend::Overlay {
                upper,
                work,
                lowers,
                detached,
                legacy,
            } => {
                if let Some(l) = legacy {
                    return Ok(RootfsSource::Legacy(l.clone()));
                }
                if let Some(fd) = detached.take() {
                    return Ok(RootfsSource::Detached(fd));
                }
                // Another run on the same snapshot: the previous overlay is
                // gone (its sandbox ended), but a volatile overlay leaves a
                // marker in its workdir that refuses a second mount. Start
                // from an empty workdir; the upperdir carries on.
                remove_all(work)?;
                std::fs::create_dir(&*work).ctx("create", &*work)?;
                match overlay::build_detached(lowers, upper, work) {
                    Ok(fd) => Ok(RootfsSource::Detached(fd)),
                    Err(overlay::BuildError::Unsupported(m) | overlay::BuildError::Refused(m)) => {
                        Err(Error::Snapshot(m))
                    }
                }
            }
            Backend::Copy { rootfs, .. } => {
                let fd = rustix::mount::open_tree(
                    CWD,
                    rootfs.as_path(),
                    OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                )
                .ctx("bind", rootfs.as_path())?;
                Ok(RootfsSource::Detached(fd))
            }
        }
    }

    /// Finishes the snapshot and returns the new layer directory, in overlay
    /// upperdir format, inside the scratch directory (`<scratch>/upper`),
    /// synced to disk: rename it into the store, or write it as a tar with
    /// [`crate::diff::write_layer`] against [`Snapshot::lowers`]. Everything
    /// else in the scratch directory is removed.
    pub fn commit(self) -> Result<PathBuf> {
        let upper = self.commit_unsynced()?;
        // The overlay is mounted `volatile` (no sync when it goes away), so
        // the layer is made durable here, once, and only when it is kept.
        let dir = std::fs::File::open(&upper).ctx("open", &upper)?;
        rustix::fs::syncfs(&dir).ctx("sync the filesystem of", &upper)?;
        Ok(upper)
    }

    /// [`Snapshot::commit`] without making the layer durable: for a caller
    /// that syncs it itself (the store's `commit_layer_dir` does, with an
    /// fsync per file for small layers instead of a `syncfs` of the whole
    /// filesystem).
    pub fn commit_unsynced(mut self) -> Result<PathBuf> {
        let upper = self.scratch.join("upper");
        match &mut self.backend {
            Backend::Overlay { work, detached, .. } => {
                detached.take();
                remove_all(work)?;
            }
            Backend::Copy { rootfs, mark } => {
                copy::commit(&self.lowers, rootfs, &upper, *mark)?;
                remove_all(rootfs)?;
            }
        }
        for name in ["empty", ".copied"] {
            remove_all(&self.scratch.join(name))?;
        }
        Ok(upper)
    }

    /// Throws the snapshot away: removes the scratch directory and
    /// everything in it (`kiln run --rm`, a failed step).
    pub fn discard(mut self) -> Result<()> {
        if let Backend::Overlay { detached, .. } = &mut self.backend {
            detached.take();
        }
        remove_all(&self.scratch)
    }
}

fn remove_all(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx("stat", p),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => std::fs::remove_file(p).ctx("remove", p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "".parse::<SnapshotterKind>().unwrap(),
            SnapshotterKind::Auto
        );
        assert_eq!(
            "copy".parse::<SnapshotterKind>().unwrap(),
            SnapshotterKind::Copy
        );
        assert_eq!(
            "overlay".parse::<SnapshotterKind>().unwrap(),
            SnapshotterKind::Overlay
        );
        assert!("zfs".parse::<SnapshotterKind>().is_err());
    }
}
