//! The temporary area and process liveness.
//!
//! Each open [`crate::Store`] that writes gets an *owner* directory
//! `tmp/<owner>/` and holds an exclusive flock on `tmp/<owner>.lock` for as
//! long as it lives. The lock tells every other process whether the owner
//! is still alive: a lock that can be taken belongs to a dead process, so
//! its directory (half-written blobs, half-unpacked layers) is garbage and
//! its leases in the database protect nothing any more.
//!
//! The lock file is created under a dot-name, locked, and only then renamed
//! to its final name, so no other process can ever see it unlocked while
//! its owner lives. Dot-names left behind by a crash in that instant are
//! removed once they are an hour old.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::fsutil::{mkdirs, remove_any};

/// This process's live area under `tmp/`.
#[derive(Debug)]
pub(crate) struct Owner {
    id: String,
    dir: PathBuf,
    lock_path: PathBuf,
    counter: AtomicU64,
    // Held (flocked) for the owner's lifetime; released when dropped.
    _lock: File,
}

impl Owner {
    /// Creates a fresh owner directory under `tmp_root`.
    pub(crate) fn create(tmp_root: &Path) -> Result<Owner> {
        mkdirs(tmp_root)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let id = format!("{}-{:x}", std::process::id(), nanos);
        let pending = tmp_root.join(format!(".{id}.lock"));
        let lock_path = tmp_root.join(format!("{id}.lock"));
        let lock = File::create(&pending).at("create", &pending)?;
        lock.lock().at("lock", &pending)?;
        fs::rename(&pending, &lock_path).at("rename", &lock_path)?;
        let dir = tmp_root.join(&id);
        mkdirs(&dir)?;
        Ok(Owner {
            id,
            dir,
            lock_path,
            counter: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The owner's ID, as recorded in leases.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The owner's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh, unused path inside the owner's directory.
    pub(crate) fn fresh_path(&self, what: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{what}-{n}"))
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Directory first: a lock file without its directory is harmless,
        // a directory without its lock file is cleaned only after an hour.
        let _ = remove_any(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Whether the owner `id` still holds its lock. A missing lock file means
/// the owner is gone.
pub(crate) fn is_alive(tmp_root: &Path, id: &str) -> bool {
    let path = tmp_root.join(format!("{id}.lock"));
    let Ok(f) = File::open(&path) else {
        return false;
    };
    matches!(f.try_lock(), Err(TryLockError::WouldBlock))
}

/// How long a dot-named pending lock file or an owner directory without a
/// lock file may exist before it counts as garbage.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Removes the areas of dead owners under `tmp_root`. Returns their IDs, so
/// that their leases can be dropped too.
pub(crate) fn clean_dead(tmp_root: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(tmp_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at("read directory", tmp_root),
    };
    let mut dead = Vec::new();
    let mut others = Vec::new();
    for entry in entries {
        let entry = entry.at("read directory", tmp_root)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if is_old(&entry.path()) {
                let _ = remove_any(&entry.path());
            }
            continue;
        }
        match name.strip_suffix(".lock") {
            Some(id) => {
                let path = entry.path();
                let Ok(f) = File::open(&path) else { continue };
                if f.try_lock().is_ok() {
                    // We hold the dead owner's lock while removing its area.
                    remove_any(&tmp_root.join(id))?;
                    let _ = fs::remove_file(&path);
                    dead.push(id.to_string());
                }
            }
            None => others.push(name),
        }
    }
    // Directories whose lock file is gone (crash while dropping, or a
    // cleaner removed it): garbage once old enough.
    for name in others {
        let path = tmp_root.join(&name);
        if !tmp_root.join(format!("{name}.lock")).exists() && is_old(&path) {
            remove_any(&path)?;
        }
    }
    Ok(dead)
}

fn is_old(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ORPHAN_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_owner_is_kept_and_dead_one_cleaned() {
        let t = tempfile::tempdir().unwrap();
        let tmp = t.path().join("tmp");
        let a = Owner::create(&tmp).unwrap();
        std::fs::write(a.fresh_path("x"), b"partial").unwrap();
        assert!(is_alive(&tmp, a.id()));
        assert!(clean_dead(&tmp).unwrap().is_empty());
        assert!(a.dir().exists());

        // Simulate a crashed owner: a lock file nobody holds, and its area.
        std::fs::create_dir(tmp.join("999-dead")).unwrap();
        std::fs::write(tmp.join("999-dead/blob-0"), b"half").unwrap();
        std::fs::write(tmp.join("999-dead.lock"), b"").unwrap();
        assert!(!is_alive(&tmp, "999-dead"));
        assert_eq!(clean_dead(&tmp).unwrap(), vec!["999-dead".to_string()]);
        assert!(!tmp.join("999-dead").exists());
        assert!(a.dir().exists());

        let id = a.id().to_string();
        drop(a);
        assert!(!is_alive(&tmp, &id));
        assert!(!tmp.join(&id).exists());
    }
}
