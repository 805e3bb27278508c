//! Looking into a filesystem made of store layers from kiln's own process
//! (the source of `COPY --from`, the seed of a cache mount), without
//! mounting anything anywhere: an overlay of the layers is built as a
//! detached mount and read through its descriptor (`/proc/self/fd/N/…`).

use std::path::{Path, PathBuf};

use super::Solver;
use super::error::Result;
use super::value::Fs;
use crate::fileop::RootDir;

/// A read-only view of a filesystem; valid while it lives.
pub(crate) struct ReadView {
    // Field order is drop order: the mount goes before its scratch space.
    root: Option<RootDir>,
    plain: Option<PathBuf>,
    _snap: Option<executor::Snapshot>,
    _scratch: Option<tempfile::TempDir>,
}

impl ReadView {
    /// Opens a view of `fs`.
    pub(crate) fn open(s: &Solver, fs: &Fs) -> Result<ReadView> {
        let lowers = fs.lowers(&s.store)?;
        let scratch = s.store.temp_dir()?;
        if lowers.is_empty() {
            let p = scratch.path().to_path_buf();
            return Ok(ReadView {
                root: None,
                plain: Some(p),
                _snap: None,
                _scratch: Some(scratch),
            });
        }
        let mut snap = s
            .snapshotter
            .prepare(&lowers, &scratch.path().join("view"))?;
        let fd = snap.open_root()?;
        let root = RootDir::from_fd(fd, Path::new("<layers>"))?;
        Ok(ReadView {
            root: Some(root),
            plain: None,
            _snap: Some(snap),
            _scratch: Some(scratch),
        })
    }

    /// A path this process can read the filesystem under.
    pub(crate) fn path(&self) -> PathBuf {
        match (&self.plain, &self.root) {
            (Some(p), _) => p.clone(),
            (None, Some(r)) => r.proc_path(),
            (None, None) => PathBuf::from("/nonexistent"),
        }
    }
}
