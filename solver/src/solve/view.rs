//! Looking into a filesystem made of store layers from kiln's own process
//! (the source of `COPY --from`, the seed of a cache mount, the base a
//! delta copy is planned against), without mounting anything anywhere: an
//! overlay of the layers is built as a detached mount and used through its
//! descriptor (`openat`-style, or `/proc/self/fd/N/…` paths).

use std::path::{Path, PathBuf};

use super::Solver;
use super::error::{Error, Result};
use super::value::Fs;
use crate::fileop::RootDir;

/// A view of a filesystem; valid while it lives. Never write to it.
pub(crate) struct ReadView {
    // Field order is drop order: the mount goes before its scratch space.
    root: RootDir,
    plain: Option<PathBuf>,
    _snap: Option<executor::Snapshot>,
    _scratch: tempfile::TempDir,
}

impl ReadView {
    /// Opens a view of `fs`.
    pub(crate) fn open(s: &Solver, fs: &Fs) -> Result<ReadView> {
        let lowers = fs.lowers(&s.store)?;
        Self::of_dirs(s, &lowers)
    }

    /// Opens a view of layer directories stacked topmost first.
    pub(crate) fn of_dirs(s: &Solver, lowers: &[PathBuf]) -> Result<ReadView> {
        let scratch = s.store.temp_dir()?;
        if lowers.is_empty() {
            let p = scratch.path().join("empty");
            std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
            return Ok(ReadView {
                root: RootDir::open(&p)?,
                plain: Some(p),
                _snap: None,
                _scratch: scratch,
            });
        }
        let mut snap = s
            .snapshotter
            .prepare(lowers, &scratch.path().join("view"))?;
        let fd = snap.open_root()?;
        let root = RootDir::from_fd(fd, Path::new("<layers>"))?;
        Ok(ReadView {
            root,
            plain: None,
            _snap: Some(snap),
            _scratch: scratch,
        })
    }

    /// A path this process can read the filesystem under.
    pub(crate) fn path(&self) -> PathBuf {
        match &self.plain {
            Some(p) => p.clone(),
            None => self.root.proc_path(),
        }
    }

    /// The root, for resolving paths inside it.
    pub(crate) fn root(&self) -> &RootDir {
        &self.root
    }
}
