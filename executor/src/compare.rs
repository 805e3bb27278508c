//! "Did this entry change?" — the comparison both differs use.
//!
//! It follows containerd/BuildKit (`sameDirent`): type and permission bits,
//! owner and device number must match; so must the extended attributes (all
//! of them except overlayfs' own — BuildKit only compares
//! `security.capability`, which misses an xattr-only change); for
//! non-directories the size and the modification time too. When both
//! timestamps have zero nanoseconds (typically: unpacked from a tar, which
//! keeps whole seconds) a same-second change cannot be ruled out, so the
//! contents (or symlink targets) are compared. A directory's mtime is not
//! compared: it changes whenever an entry is added or removed, and those
//! entries are diffed on their own.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::fsutil::xattrs;

/// Are `old` (at `old_path`) and `new` (at `new_path`) the same entry?
pub(crate) fn same_entry(
    old_path: &Path,
    old: &Metadata,
    new_path: &Path,
    new: &Metadata,
) -> Result<bool> {
    if old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
    {
        return Ok(false);
    }
    if !old.is_dir() {
        if old.size() != new.size() || old.mtime() != new.mtime() {
            return Ok(false);
        }
        if old.mtime_nsec() != new.mtime_nsec() {
            return Ok(false);
        }
    }
    if xattrs(old_path)? != xattrs(new_path)? {
        return Ok(false);
    }
    if !old.is_dir() && old.mtime_nsec() == 0 {
        if old.file_type().is_symlink() {
            return Ok(std::fs::read_link(old_path).ctx("read link", old_path)?
                == std::fs::read_link(new_path).ctx("read link", new_path)?);
        }
        if old.is_file() && old.size() > 0 {
            return same_content(old_path, new_path);
        }
    }
    Ok(true)
}

/// Compares two regular files byte for byte, streaming.
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = File::open(a).ctx("open", a)?;
    let mut fb = File::open(b).ctx("open", b)?;
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = read_full(&mut fa, &mut ba).ctx("read", a)?;
        let nb = read_full(&mut fb, &mut bb).ctx("read", b)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::set_mtime;

    #[test]
    fn truncated_mtimes_fall_back_to_content() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::write(&a, "hello").unwrap();
        std::fs::write(&b, "hellO").unwrap();
        set_mtime(&a, 1000, 0).unwrap();
        set_mtime(&b, 1000, 0).unwrap();
        let (ma, mb) = (a.metadata().unwrap(), b.metadata().unwrap());
        assert!(!same_entry(&a, &ma, &b, &mb).unwrap());
        std::fs::write(&b, "hello").unwrap();
        set_mtime(&b, 1000, 0).unwrap();
        let mb = b.metadata().unwrap();
        assert!(same_entry(&a, &ma, &b, &mb).unwrap());
    }

    #[test]
    fn nanosecond_mtimes_are_trusted() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::write(&a, "one").unwrap();
        std::fs::write(&b, "two").unwrap();
        set_mtime(&a, 1000, 5).unwrap();
        set_mtime(&b, 1000, 5).unwrap();
        let (ma, mb) = (a.metadata().unwrap(), b.metadata().unwrap());
        // Same metadata and a precise timestamp: treated as unchanged
        // without reading (as containerd does).
        assert!(same_entry(&a, &ma, &b, &mb).unwrap());
        set_mtime(&b, 1000, 6).unwrap();
        let mb = b.metadata().unwrap();
        assert!(!same_entry(&a, &ma, &b, &mb).unwrap());
    }
}
