//! The overlay snapshotter: the parent chain as `lowerdir`s, a fresh
//! `upperdir` and `workdir` in the scratch directory.
//!
//! Mount options keep the upperdir usable as a plain layer directory later
//! (a future `lowerdir`, or a tar): `index=off` (no hard-link index tied to
//! this mount's lowers), `redirect_dir=off` (a renamed directory is copied,
//! not recorded as a redirect xattr pointing into the lowers),
//! `metacopy=off` (a chmod copies the data up, so the upper file is
//! complete), and `xino=off` — the layers all live on the store's one
//! filesystem, where overlayfs already reports the real, unique inode
//! numbers, so xino has nothing to add and only fails on filesystems with
//! 64-bit inode numbers. The new-API mount is also `volatile`: unmounting
//! a writable overlay otherwise syncs the *whole* upper filesystem (tens of
//! milliseconds on a busy disk, for every step, kept or not); the sync is
//! done by `Snapshot::commit` instead, only for layers that are kept.
//!
//! The mount is built with the new mount API (`fsopen`/`fsconfig`/
//! `fsmount`) as a *detached* mount: it appears in no mount table until the
//! sandbox helper attaches it inside its own private mount namespace, and
//! it vanishes when that namespace does. Each lower is passed with its own
//! `lowerdir+` call (Linux ≥ 6.8), so the length of the chain is not
//! limited by the one-page mount-option string (overlayfs still allows at
//! most 500 layers). On older kernels the sandbox helper falls back to
//! `mount(2)` with paths made relative to their common ancestor (after a
//! `chdir` there); a chain whose options still exceed a page cannot be
//! mounted and the `auto` snapshotter uses the copy snapshotter instead.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
use serde::{Deserialize, Serialize};

/// Options every overlay mount gets (see the module doc).
pub(crate) const OPTIONS: [(&str, &str); 4] = [
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
    ("xino", "off"),
];

/// The largest option string `mount(2)` accepts (one page, with its NUL).
const MAX_LEGACY_DATA: usize = 4095;

/// Why an overlay could not be built with the new mount API.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// This kernel has no `lowerdir+` (Linux < 6.8) or no `fsopen`.
    Unsupported(String),
    /// The kernel refused the mount (message from the fs context).
    Refused(String),
}

/// Builds the overlay as a detached mount (new mount API).
pub(crate) fn build_detached(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<OwnedFd, BuildError> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| BuildError::Unsupported(format!("fsopen(overlay): {e}")))?;
    let explain = |what: String, e: rustix::io::Errno| format!("{what}: {e}{}", fs_log(fs.as_fd()));
    for (i, lower) in lowers.iter().enumerate() {
        if let Err(e) = rustix::mount::fsconfig_set_string(&fs, "lowerdir+", lower.as_path()) {
            let log = fs_log(fs.as_fd());
            let msg = format!("lowerdir+ {}: {e}{log}", lower.display());
            // An unknown key on the first lower means an old kernel.
            if i == 0 && e == rustix::io::Errno::INVAL && log.contains("Unknown parameter") {
                return Err(BuildError::Unsupported(msg));
            }
            return Err(BuildError::Refused(msg));
        }
    }
    let set = |k: &str, v: &Path| {
        rustix::mount::fsconfig_set_string(&fs, k, v)
            .map_err(|e| BuildError::Refused(explain(format!("{k} {}", v.display()), e)))
    };
    set("upperdir", upper)?;
    set("workdir", work)?;
    for (k, v) in OPTIONS {
        set(k, Path::new(v))?;
    }
    // No sync of the whole upper filesystem when the sandbox ends:
    // `Snapshot::commit` syncs the layers that are kept; discarded ones
    // never cost a sync.
    rustix::mount::fsconfig_set_flag(&fs, "volatile")
        .map_err(|e| BuildError::Refused(explain("volatile".into(), e)))?;
    rustix::mount::fsconfig_create(&fs)
        .map_err(|e| BuildError::Refused(explain("creating the overlay".into(), e)))?;
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| BuildError::Refused(explain("fsmount".into(), e)))
}

/// Reads the messages the kernel left in an fs context (`e overlayfs: …`).
fn fs_log(fd: std::os::fd::BorrowedFd<'_>) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf[..n]);
        out.push_str(" (");
        out.push_str(line.trim());
        out.push(')');
    }
    out
}

/// A `mount(2)` overlay for kernels without `lowerdir+`: the option string
/// with paths relative to `cwd`, where the helper must `chdir` first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LegacyMount {
    /// The directory the paths in `data` are relative to.
    pub(crate) cwd: PathBuf,
    /// The option string.
    pub(crate) data: String,
}

/// Builds the legacy option string, or says why it cannot.
pub(crate) fn legacy(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<LegacyMount, String> {
    let mut all: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    all.push(upper);
    all.push(work);
    let cwd = common_ancestor(&all);
    let rel = |p: &Path| -> Result<String, String> {
        let r = p.strip_prefix(&cwd).unwrap_or(p);
        let s = std::str::from_utf8(r.as_os_str().as_bytes())
            .map_err(|_| format!("{} is not UTF-8", p.display()))?;
        let s = if s.is_empty() { "." } else { s };
        Ok(escape(s))
    };
    let lower_list = lowers
        .iter()
        .map(|l| rel(l))
        .collect::<Result<Vec<_>, _>>()?
        .join(":");
    let mut data = format!(
        "lowerdir={lower_list},upperdir={},workdir={}",
        rel(upper)?,
        rel(work)?
    );
    for (k, v) in OPTIONS {
        data.push_str(&format!(",{k}={v}"));
    }
    if data.len() > MAX_LEGACY_DATA {
        return Err(format!(
            "the overlay options for {} layers are {} bytes, more than mount(2) accepts ({MAX_LEGACY_DATA}) on a kernel without `lowerdir+`",
            lowers.len(),
            data.len()
        ));
    }
    Ok(LegacyMount { cwd, data })
}

/// Overlayfs splits options on `,` and lowerdirs on `:`; both can be
/// escaped with a backslash.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn common_ancestor(paths: &[&Path]) -> PathBuf {
    let mut common: PathBuf = match paths.first() {
        Some(p) => p.parent().unwrap_or(p).to_path_buf(),
        None => return PathBuf::from("/"),
    };
    for p in &paths[1..] {
        while !p.starts_with(&common) {
            if !common.pop() {
                return PathBuf::from("/");
            }
        }
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_options_use_short_relative_paths() {
        let lowers: Vec<PathBuf> = (0..3)
            .map(|i| PathBuf::from(format!("/var/lib/kiln/layers/{i}/fs")))
            .collect();
        let m = legacy(
            &lowers,
            Path::new("/var/lib/kiln/tmp/x/upper"),
            Path::new("/var/lib/kiln/tmp/x/work"),
        )
        .unwrap();
        assert_eq!(m.cwd, PathBuf::from("/var/lib/kiln"));
        assert_eq!(
            m.data,
            "lowerdir=layers/0/fs:layers/1/fs:layers/2/fs,upperdir=tmp/x/upper,workdir=tmp/x/work,index=off,redirect_dir=off,metacopy=off,xino=off"
        );
    }

    #[test]
    fn legacy_options_escape_separators() {
        let m = legacy(
            &[PathBuf::from("/s/a:b,c")],
            Path::new("/s/u"),
            Path::new("/s/w"),
        )
        .unwrap();
        assert!(m.data.starts_with("lowerdir=a\\:b\\,c,"), "{}", m.data);
    }

    #[test]
    fn legacy_options_refuse_more_than_a_page() {
        let lowers: Vec<PathBuf> = (0..400)
            .map(|i| PathBuf::from(format!("/store/layers/{i:064}")))
            .collect();
        let err = legacy(&lowers, Path::new("/store/u"), Path::new("/store/w")).unwrap_err();
        assert!(err.contains("more than mount(2) accepts"), "{err}");
    }
}
