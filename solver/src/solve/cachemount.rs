//! Persistent cache directories for `RUN --mount=type=cache`.
//!
//! Each cache id gets a directory under the store's `cache-mounts/`, named
//! by a hash of the id, and a lock file beside it. Sharing follows
//! BuildKit: `shared` steps use the directory at the same time (shared
//! flock), `locked` steps take it one at a time (exclusive flock, waiting),
//! and a `private` step that finds it in use gets a directory of its own
//! (`<hash>-1`, `<hash>-2`, … — whichever is free). A new directory is
//! created with the mount's mode and owner (BuildKit: 0755, 0:0), seeded
//! from `from=` when given, under an exclusive lock and then renamed into
//! place, so a crash never leaves a half-made cache.

use std::fs::{File, TryLockError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};
use crate::llb::CacheSharing;

/// A cache directory in use; the lock is released when dropped.
#[derive(Debug)]
pub(crate) struct CacheDir {
    pub(crate) path: PathBuf,
    _lock: File,
}

/// Fills a freshly created cache directory.
pub(crate) type Seed<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// How to create a cache directory that does not exist yet.
pub(crate) struct NewCache<'a> {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Fills a fresh directory (the `from=` seed).
    pub(crate) seed: Option<Seed<'a>>,
}

fn name_of(id: &str) -> String {
    hex::encode(&Sha256::digest(id.as_bytes())[..16])
}

fn open_lock(p: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map_err(|e| Error::io(p, e))
}

/// Acquires the cache directory for `id` under `root` (the store's
/// `cache-mounts/`).
pub(crate) fn acquire(
    root: &Path,
    id: &str,
    sharing: CacheSharing,
    new: &NewCache<'_>,
) -> Result<CacheDir> {
    let base = name_of(id);
    match sharing {
        CacheSharing::Shared | CacheSharing::Locked => {
            let dir = root.join(&base);
            let lock_path = root.join(format!("{base}.lock"));
            let lock = open_lock(&lock_path)?;
            ensure(&dir, &lock, &lock_path, new)?;
            if sharing == CacheSharing::Shared {
                lock.lock_shared().map_err(|e| Error::io(&lock_path, e))?;
            } else {
                lock.lock().map_err(|e| Error::io(&lock_path, e))?;
            }
            Ok(CacheDir {
                path: dir,
                _lock: lock,
            })
        }
        CacheSharing::Private => {
            for n in 0.. {
                let name = if n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                };
                let lock_path = root.join(format!("{name}.lock"));
                let lock = open_lock(&lock_path)?;
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => continue,
                    Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
                }
                let dir = root.join(&name);
                if !dir.is_dir() {
                    create(&dir, new)?;
                }
                return Ok(CacheDir {
                    path: dir,
                    _lock: lock,
                });
            }
            unreachable!("the loop only ends by returning")
        }
    }
}

/// Creates `dir` if missing, under an exclusive lock (released after).
fn ensure(dir: &Path, lock: &File, lock_path: &Path, new: &NewCache<'_>) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    lock.lock().map_err(|e| Error::io(lock_path, e))?;
    let r = if dir.is_dir() {
        Ok(())
    } else {
        create(dir, new)
    };
    lock.unlock().map_err(|e| Error::io(lock_path, e))?;
    r
}

fn create(dir: &Path, new: &NewCache<'_>) -> Result<()> {
    let tmp = dir.with_extension("new");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    if let Some(seed) = new.seed {
        seed(&tmp)?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(new.mode & 0o7777))
        .map_err(|e| Error::io(&tmp, e))?;
    std::os::unix::fs::chown(&tmp, Some(new.uid), Some(new.gid)).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewCache<'static> {
        NewCache {
            mode: 0o755,
            uid: 0,
            gid: 0,
            seed: None,
        }
    }

    #[test]
    fn sharing_modes() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), "/go/pkg", CacheSharing::Shared, &new()).unwrap();
        let b = acquire(d.path(), "/go/pkg", CacheSharing::Shared, &new()).unwrap();
        assert_eq!(a.path, b.path, "shared: the same directory at once");
        drop((a, b));
        let p1 = acquire(d.path(), "x", CacheSharing::Private, &new()).unwrap();
        let p2 = acquire(d.path(), "x", CacheSharing::Private, &new()).unwrap();
        assert_ne!(p1.path, p2.path, "private: a second user gets its own");
        drop(p2);
        let p3 = acquire(d.path(), "x", CacheSharing::Private, &new()).unwrap();
        assert_ne!(p1.path, p3.path);
        drop((p1, p3));
        let l1 = acquire(d.path(), "y", CacheSharing::Locked, &new()).unwrap();
        let root = d.path().to_path_buf();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = released.clone();
        let t = std::thread::spawn(move || {
            let _l2 = acquire(&root, "y", CacheSharing::Locked, &new()).unwrap();
            r2.load(std::sync::atomic::Ordering::SeqCst)
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        released.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(l1);
        assert!(
            t.join().unwrap(),
            "locked: the second user waited for the first"
        );
    }

    #[test]
    fn new_directories_take_mode_owner_and_seed() {
        let d = tempfile::tempdir().unwrap();
        let seed = |p: &Path| -> Result<()> {
            std::fs::write(p.join("seeded"), "s").map_err(|e| Error::io(p, e))
        };
        let c = acquire(
            d.path(),
            "z",
            CacheSharing::Shared,
            &NewCache {
                mode: 0o700,
                uid: 1000,
                gid: 1000,
                seed: Some(&seed),
            },
        )
        .unwrap();
        let md = std::fs::metadata(&c.path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (md.mode() & 0o7777, md.uid(), md.gid()),
            (0o700, 1000, 1000)
        );
        assert!(c.path.join("seeded").exists());
    }
}
