//! Small filesystem helpers for atomic writes and removals.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::error::{IoContext, Result};

/// fsyncs a directory, so that a rename into it survives a power loss.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at("fsync", dir)
}

/// Removes a file or a whole tree; a missing path is not an error.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("remove", path),
        _ => Ok(()),
    }
}

/// Creates `dir` and its parents.
pub(crate) fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at("create directory", dir)
}

/// Whether a rename failed because the destination already exists (a
/// directory that is not empty, or a concurrent writer won).
pub(crate) fn is_exists_error(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let raw = e.raw_os_error();
    raw == Some(Errno::NOTEMPTY.raw_os_error())
        || raw == Some(Errno::EXIST.raw_os_error())
        || e.kind() == io::ErrorKind::AlreadyExists
        || e.kind() == io::ErrorKind::DirectoryNotEmpty
}
