//! Checking a layer tar while it streams in, without unpacking it.
//!
//! `load`, `import` and registry pulls store a layer blob in one pass; this
//! scanner reads the same (decompressed) stream as a tar and applies the
//! rules of [`crate::unpack`] against an in-memory map of the entries seen
//! so far, so that a hostile layer is refused before anything refers to
//! it, and without the cost of creating its files. Unpacking checks again
//! against the real filesystem (defence in depth).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What an entry turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Symlink,
    Other,
}

/// Normalises a tar entry name to a relative path, or `None` for the
/// root. Refuses absolute names and `..`.
pub(crate) fn clean_entry_name(name: &[u8]) -> std::result::Result<Option<PathBuf>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let mut out = PathBuf::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("path contains '..'"),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Words an end-of-stream error inside a tar as truncation.
pub(crate) fn truncated(e: io::Error) -> String {
    let msg = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof
        || msg.contains("entire block")
        || msg.contains("unexpected EOF")
    {
        format!("truncated tar ({e})")
    } else {
        e.to_string()
    }
}

/// Remembers the first error of the reader it wraps, so that a failing
/// source is not mistaken for a bad tar.
pub(crate) struct Latch<R> {
    pub(crate) inner: R,
    pub(crate) error: Option<io::Error>,
}

impl<R: Read> Read for Latch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                if self.error.is_none() && e.kind() != io::ErrorKind::Interrupted {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Reads `r` as a layer tar and checks every entry. The returned error
/// names `label` and the offending entry. Does not drain `r` past the end
/// of the tar.
pub(crate) fn scan_layer(r: &mut dyn Read, label: &str) -> Result<()> {
    let mut s = Scanner {
        label,
        seen: HashMap::new(),
        buf: vec![0u8; crate::blobs::COPY_BUF],
    };
    let mut counted = Counted { inner: r, n: 0 };
    let mut archive = tar::Archive::new(&mut counted);
    let mut last_end = 0u64;
    let entries = archive.entries().map_err(|e| s.invalid(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| s.invalid(truncated(e)))?;
        last_end = entry.raw_file_position()
            + entry.header().entry_size().unwrap_or(0).div_ceil(512) * 512;
        s.entry(&mut entry)?;
    }
    if counted.n < last_end + 512 {
        return Err(Error::InvalidLayer {
            layer: label.to_string(),
            reason: "truncated tar: the stream ends without an end-of-archive marker".into(),
        });
    }
    Ok(())
}

struct Counted<'a> {
    inner: &'a mut dyn Read,
    n: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

struct Scanner<'a> {
    label: &'a str,
    seen: HashMap<PathBuf, Kind>,
    /// Read buffer: large, so that a big member streams through the
    /// hashing and writing readers below in few calls.
    buf: Vec<u8>,
}

/// Reads `r` to its end through `buf`; returns the byte count.
pub(crate) fn skip(r: &mut impl Read, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0;
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Scanner<'_> {
    fn invalid(&self, e: impl std::fmt::Display) -> Error {
        Error::InvalidLayer {
            layer: self.label.to_string(),
            reason: e.to_string(),
        }
    }

    fn hostile(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::HostileEntry {
            layer: self.label.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let Some(rel) = clean_entry_name(&raw).map_err(|r| self.hostile(&raw, r))? else {
            return Ok(());
        };
        if let Some(parent) = rel.parent() {
            self.check_parents(parent, &raw, false)?;
        }
        if let Some(exts) = entry.pax_extensions().map_err(|e| self.invalid(e))? {
            for ext in exts {
                let ext = ext.map_err(|e| self.invalid(e))?;
                if ext
                    .key_bytes()
                    .starts_with(b"SCHILY.xattr.trusted.overlay.")
                {
                    return Err(self.hostile(&raw, "carries an overlayfs xattr"));
                }
            }
        }
        let name = rel.file_name().expect("cleaned").as_bytes();
        if name.starts_with(b".wh.") {
            if name == b".wh." {
                return Err(self.hostile(&raw, "whiteout without a name"));
            }
            return Ok(());
        }
        let k = match kind {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                if entry.link_name_bytes().is_none() {
                    return Err(self.hostile(&raw, "symlink without a target"));
                }
                Kind::Symlink
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile(&raw, "hard link without a target"))?
                    .into_owned();
                let t = clean_entry_name(&target)
                    .map_err(|r| self.hostile(&raw, format!("hard link target: {r}")))?
                    .ok_or_else(|| self.hostile(&raw, "hard link to the root directory"))?;
                if let Some(parent) = t.parent() {
                    self.check_parents(parent, &raw, true)?;
                }
                match self.seen.get(&t) {
                    Some(Kind::Dir) => return Err(self.hostile(&raw, "hard link to a directory")),
                    Some(_) => {}
                    None => {
                        return Err(self.hostile(
                            &raw,
                            format!("hard link target {} is not in this layer", t.display()),
                        ));
                    }
                }
                Kind::Other
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::GNUSparse
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Fifo => Kind::Other,
            other => {
                return Err(self.hostile(&raw, format!("unsupported tar entry type {other:?}")));
            }
        };
        // A non-directory replacing a directory hides what was below it.
        if k != Kind::Dir && self.seen.get(&rel) == Some(&Kind::Dir) {
            self.seen.retain(|p, _| !p.starts_with(&rel) || p == &rel);
        }
        self.seen.insert(rel, k);
        // Read through the content so that truncation is noticed.
        let want = entry.size();
        let got = skip(entry, &mut self.buf).map_err(|e| {
            self.invalid(format!(
                "reading {}: {}",
                String::from_utf8_lossy(&raw),
                truncated(e)
            ))
        })?;
        if got != want {
            return Err(self.invalid(format!(
                "truncated tar: {} ends after {got} of its {want} bytes",
                String::from_utf8_lossy(&raw)
            )));
        }
        Ok(())
    }

    /// Every component of `parent` must be a directory or not yet seen
    /// (created implicitly); for hard link targets, it must exist.
    fn check_parents(&mut self, parent: &Path, raw: &[u8], link_target: bool) -> Result<()> {
        let mut cur = PathBuf::new();
        for comp in parent.components() {
            cur.push(comp);
            match self.seen.get(&cur) {
                Some(Kind::Dir) => {}
                Some(Kind::Symlink) if link_target => {
                    return Err(self.hostile(
                        raw,
                        format!(
                            "hard link target goes through the symlink {}",
                            cur.display()
                        ),
                    ));
                }
                Some(Kind::Symlink) => {
                    return Err(self.hostile(
                        raw,
                        format!("would be written through the symlink {}", cur.display()),
                    ));
                }
                Some(Kind::Other) => {
                    return Err(
                        self.hostile(raw, format!("parent {} is not a directory", cur.display()))
                    );
                }
                None if link_target => {
                    return Err(self.hostile(
                        raw,
                        format!("hard link target {} is not in this layer", parent.display()),
                    ));
                }
                None => {
                    self.seen.insert(cur.clone(), Kind::Dir);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::rawtar::{RawEntry as E, raw_tar};

    #[test]
    fn refuses_what_unpack_refuses() {
        for (name, entries, want) in crate::unpack::tests::hostile_cases() {
            let tar = raw_tar(&entries);
            let e = scan_layer(&mut &tar[..], "L").expect_err(name).to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn accepts_ordinary_layers() {
        scan_layer(&mut &testkit::busybox_layer()[..], "busybox").unwrap();
        let tar = raw_tar(&[
            E::dir("a/"),
            E::symlink("a/l", "/etc"),
            E::file("a/l", b"replaces the link"),
            E::file("b/.wh.c", b""),
            E::hardlink("a/h", "a/l"),
        ]);
        scan_layer(&mut &tar[..], "L").unwrap();
    }

    #[test]
    fn truncation_and_garbage() {
        let tar = testkit::busybox_layer();
        assert!(
            scan_layer(&mut &tar[..tar.len() - 1024], "L")
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(scan_layer(&mut &tar[..1000], "L").is_err());
        assert!(scan_layer(&mut &b"{\"json\": true}"[..], "L").is_err());
    }
}
