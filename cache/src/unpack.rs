//! Unpacking a layer tar into a directory in overlayfs upperdir format,
//! refusing anything that could escape or corrupt it.
//!
//! The format (see ARCHITECTURE.md): a `.wh.NAME` entry becomes a
//! character device 0:0 named `NAME`; `.wh..wh..opq` in a directory sets
//! `trusted.overlay.opaque=y` on it; other `.wh..wh.*` (aufs metadata) are
//! ignored. Ownership, modes (including set-id bits), mtimes, device nodes
//! and `SCHILY.xattr.*` extended attributes are restored (this needs root).
//!
//! Refused, with an error naming the entry: absolute names, names with a
//! `..` component, any entry whose parent is a symlink or not a directory
//! (a write through a symlink), hard links whose target is absolute, has
//! `..`, goes through a symlink, or is not a file already unpacked from
//! this same tar, unknown entry types, overlay's own xattrs, and a stream
//! that ends without the tar end-of-archive marker (a truncated tar).
//!
//! The destination is a private, fresh directory inside the store's
//! temporary area, so checking with `lstat` before each creation is enough:
//! nobody else writes there while we do.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

use crate::blobs::COPY_BUF;
use crate::error::{Error, IoContext, Result};
use crate::scan::{clean_entry_name, truncated};

/// The xattr overlayfs reads to make a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Counts the bytes pulled through it, to find the end of the tar.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// Unpacks the layer tar `r` into the empty directory `dest`. `layer`
/// names the layer in errors. Reads `r` to its very end (so that a caller
/// hashing the stream sees all of it).
pub(crate) fn unpack_layer(r: &mut dyn Read, dest: &Path, layer: &str) -> Result<()> {
    let mut u = Unpacker {
        dest,
        layer,
        known_dirs: HashSet::new(),
        dirs: Vec::new(),
        buf: vec![0u8; COPY_BUF],
    };
    let mut archive = tar::Archive::new(Counting { inner: r, n: 0 });
    let mut last_end = 0u64;
    let mut entries = archive.entries().map_err(|e| u.invalid(e))?;
    for entry in &mut entries {
        let mut entry = entry.map_err(|e| u.invalid(truncated(e)))?;
        last_end = entry.raw_file_position() + round512(entry.header().entry_size().unwrap_or(0));
        u.entry(&mut entry)?;
    }
    let mut inner = archive.into_inner();
    // The end-of-archive marker is two zero blocks; tar stops at the
    // first, which must have been read.
    let consumed = inner.n;
    io::copy(&mut inner, &mut io::sink()).map_err(|e| u.invalid(truncated(e)))?;
    if consumed < last_end + 512 {
        return Err(Error::InvalidLayer {
            layer: layer.to_string(),
            reason: "truncated tar: the stream ends without an end-of-archive marker".into(),
        });
    }
    u.finish_dirs()
}

fn round512(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

struct Unpacker<'a> {
    dest: &'a Path,
    layer: &'a str,
    /// Relative directories known to be real directories we created.
    known_dirs: HashSet<PathBuf>,
    /// Directories whose mode and mtime are applied at the end.
    dirs: Vec<(PathBuf, u32, i64)>,
    buf: Vec<u8>,
}

/// What to restore on an entry after creating it.
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn invalid(&self, e: impl std::fmt::Display) -> Error {
        Error::InvalidLayer {
            layer: self.layer.to_string(),
            reason: e.to_string(),
        }
    }

    fn hostile(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::HostileEntry {
            layer: self.layer.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let rel = self.clean(&raw_name, &raw_name)?;
        let Some(rel) = rel else {
            return Ok(()); // the root directory itself: nothing to create
        };
        let name = rel
            .file_name()
            .expect("cleaned paths have a name")
            .as_bytes()
            .to_vec();
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        self.ensure_parent(&parent, &raw_name)?;

        if let Some(rest) = name.strip_prefix(b".wh.") {
            if rest == b".wh..opq" {
                let dir = self.dest.join(&parent);
                rustix::fs::lsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .at("set opaque xattr on", &dir)?;
            } else if rest.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk etc.): not content.
            } else if rest.is_empty() {
                return Err(self.hostile(&raw_name, "whiteout without a name"));
            } else {
                let target = parent.join(OsStr::from_bytes(rest));
                self.clear(&target)?;
                let p = self.dest.join(&target);
                rustix::fs::mknodat(
                    CWD,
                    &p,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .at("create whiteout", &p)?;
            }
            return Ok(());
        }

        let meta = self.meta(entry)?;
        let path = self.dest.join(&rel);
        match kind {
            tar::EntryType::Directory => {
                let existing_dir = fs::symlink_metadata(&path)
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
                if !existing_dir {
                    self.clear(&rel)?;
                    fs::create_dir(&path).at("create directory", &path)?;
                }
                self.known_dirs.insert(rel.clone());
                self.restore_owner_xattrs(&path, &meta)?;
                self.dirs.push((rel, meta.mode, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.clear(&rel)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .mode(0o600)
                    .open(&path)
                    .at("create", &path)?;
                self.copy_content(entry, &mut f, &path)?;
                drop(f);
                self.restore(&path, &meta, true)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile(&raw_name, "symlink without a target"))?
                    .into_owned();
                self.clear(&rel)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .at("create symlink", &path)?;
                self.restore(&path, &meta, false)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile(&raw_name, "hard link without a target"))?
                    .into_owned();
                let trel = self
                    .clean(&target, &raw_name)?
                    .ok_or_else(|| self.hostile(&raw_name, "hard link to the root directory"))?;
                self.check_link_target(&trel, &raw_name)?;
                if trel == rel {
                    return Ok(());
                }
                self.clear(&rel)?;
                let tpath = self.dest.join(&trel);
                fs::hard_link(&tpath, &path).at("create hard link", &path)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.clear(&rel)?;
                rustix::fs::mknodat(
                    CWD,
                    &path,
                    ft,
                    Mode::from_raw_mode(meta.mode & 0o7777),
                    rustix::fs::makedev(major, minor),
                )
                .at("create device node", &path)?;
                self.restore(&path, &meta, true)?;
            }
            other => {
                return Err(
                    self.hostile(&raw_name, format!("unsupported tar entry type {other:?}"))
                );
            }
        }
        Ok(())
    }

    /// Normalises an entry name (see [`clean_entry_name`]).
    fn clean(&self, name: &[u8], entry: &[u8]) -> Result<Option<PathBuf>> {
        clean_entry_name(name).map_err(|r| self.hostile(entry, r))
    }

    /// Makes sure every component of `parent` is a real directory,
    /// creating missing ones (0755, root-owned, as docker does).
    fn ensure_parent(&mut self, parent: &Path, entry: &[u8]) -> Result<()> {
        if parent.as_os_str().is_empty() || self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut cur = PathBuf::new();
        for comp in parent.components() {
            cur.push(comp);
            if self.known_dirs.contains(&cur) {
                continue;
            }
            let p = self.dest.join(&cur);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.hostile(
                        entry,
                        format!("would be written through the symlink {}", cur.display()),
                    ));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.hostile(
                        entry,
                        format!("parent {} is not a directory", cur.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&p).at("create directory", &p)?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).at("chmod", &p)?;
                }
                Err(e) => return Err(Error::io("stat", &p, e)),
            }
            self.known_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// A hard link target must be a non-directory unpacked earlier from
    /// this tar, reached without symlinks.
    fn check_link_target(&mut self, trel: &Path, entry: &[u8]) -> Result<()> {
        let mut cur = PathBuf::new();
        if let Some(parent) = trel.parent() {
            for comp in parent.components() {
                cur.push(comp);
                match fs::symlink_metadata(self.dest.join(&cur)) {
                    Ok(m) if m.is_dir() => {}
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(self.hostile(
                            entry,
                            format!(
                                "hard link target goes through the symlink {}",
                                cur.display()
                            ),
                        ));
                    }
                    _ => {
                        return Err(self.hostile(
                            entry,
                            format!("hard link target {} is not in this layer", trel.display()),
                        ));
                    }
                }
            }
        }
        match fs::symlink_metadata(self.dest.join(trel)) {
            Ok(m) if m.is_dir() => Err(self.hostile(entry, "hard link to a directory")),
            Ok(m) if m.file_type().is_char_device() && is_whiteout(&m) => Err(self.hostile(
                entry,
                format!("hard link target {} is a whiteout", trel.display()),
            )),
            Ok(_) => Ok(()),
            Err(_) => Err(self.hostile(
                entry,
                format!("hard link target {} is not in this layer", trel.display()),
            )),
        }
    }

    /// Removes whatever is at `rel` (a later entry replaces an earlier one).
    fn clear(&mut self, rel: &Path) -> Result<()> {
        let p = self.dest.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&p).at("remove", &p)?;
                // Forget every known directory at or below `rel`.
                self.known_dirs.retain(|d| !d.starts_with(rel));
                self.dirs.retain(|(d, _, _)| !d.starts_with(rel));
            }
            Ok(_) => fs::remove_file(&p).at("remove", &p)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &p, e)),
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = entry.header();
        let name = entry.path_bytes().into_owned();
        let bad = |what: &str, e: io::Error| self.hostile(&name, format!("bad {what}: {e}"));
        let mut meta = Meta {
            uid: h.uid().map_err(|e| bad("uid", e))?,
            gid: h.gid().map_err(|e| bad("gid", e))?,
            mode: h.mode().map_err(|e| bad("mode", e))?,
            mtime: h.mtime().map_err(|e| bad("mtime", e))? as i64,
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(|e| self.invalid(e))? {
            for ext in exts {
                let ext = ext.map_err(|e| self.invalid(e))?;
                let key = ext.key_bytes();
                if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                    if attr.starts_with(b"trusted.overlay.") {
                        return Err(self.hostile(&name, "carries an overlayfs xattr"));
                    }
                    meta.xattrs.push((
                        OsString::from_vec(attr.to_vec()),
                        ext.value_bytes().to_vec(),
                    ));
                } else if key == b"uid" || key == b"gid" {
                    let v = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| self.hostile(&name, "bad pax uid/gid"))?;
                    if key == b"uid" {
                        meta.uid = v;
                    } else {
                        meta.gid = v;
                    }
                } else if key == b"mtime"
                    && let Some(secs) = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|s| s.split('.').next())
                        .and_then(|s| s.parse::<i64>().ok())
                {
                    meta.mtime = secs;
                }
            }
        }
        Ok(meta)
    }

    fn copy_content<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        f: &mut File,
        path: &Path,
    ) -> Result<()> {
        use std::io::Write;
        let (want, mut got) = (entry.size(), 0u64);
        loop {
            let k = match entry.read(&mut self.buf) {
                Ok(0) if got == want => return Ok(()),
                Ok(0) => {
                    return Err(Error::InvalidLayer {
                        layer: self.layer.to_string(),
                        reason: format!(
                            "truncated tar: {} ends after {got} of its {want} bytes",
                            path.display()
                        ),
                    });
                }
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::InvalidLayer {
                        layer: self.layer.to_string(),
                        reason: format!("reading {}: {e} (truncated tar?)", path.display()),
                    });
                }
            };
            got += k as u64;
            f.write_all(&self.buf[..k]).at("write", path)?;
        }
    }

    fn restore_owner_xattrs(&self, path: &Path, meta: &Meta) -> Result<()> {
        let uid = u32::try_from(meta.uid).ok();
        let gid = u32::try_from(meta.gid).ok();
        std::os::unix::fs::lchown(path, uid, gid).at("chown", path)?;
        for (name, value) in &meta.xattrs {
            match rustix::fs::lsetxattr(path, name.as_os_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    tracing::warn!(
                        "{}: xattr {:?} not supported here; skipped",
                        path.display(),
                        name
                    );
                }
                Err(e) => return Err(Error::io("set xattr on", path, e.into())),
            }
        }
        Ok(())
    }

    /// Ownership, xattrs, mode (after chown, which clears set-id bits)
    /// and mtime.
    fn restore(&self, path: &Path, meta: &Meta, chmod: bool) -> Result<()> {
        self.restore_owner_xattrs(path, meta)?;
        if chmod {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode & 0o7777))
                .at("chmod", path)?;
        }
        set_mtime(path, meta.mtime)
    }

    /// Directory modes and mtimes, deepest first, once nothing more is
    /// created inside them.
    fn finish_dirs(&mut self) -> Result<()> {
        self.dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, mode, mtime) in &self.dirs {
            let p = self.dest.join(rel);
            fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o7777)).at("chmod", &p)?;
            set_mtime(&p, *mtime)?;
        }
        Ok(())
    }
}

fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).at("set mtime of", path)
}

/// Whether metadata describes an overlay whiteout (char device 0:0).
pub(crate) fn is_whiteout(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use testkit::rawtar::{RawEntry as E, raw_tar};

    fn unpack(entries: &[E]) -> (tempfile::TempDir, Result<()>) {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("layer");
        fs::create_dir(&dest).unwrap();
        let tar = raw_tar(entries);
        let r = unpack_layer(&mut &tar[..], &dest, "test-layer");
        (t, r)
    }

    #[test]
    fn unpacks_into_upperdir_format() {
        let (t, r) = unpack(&[
            E::dir("etc/"),
            E::file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            E::new("bin/tool", tar::EntryType::Regular, b"#!", "", 0o4755),
            E::symlink("bin/sh", "/bin/busybox"),
            E::hardlink("etc/passwd-", "etc/passwd"),
            E::file("gone/.wh.old", b""),
            E::dir("opaque/"),
            E::file("opaque/.wh..wh..opq", b""),
            E::file("x/.wh..wh.plnk", b""),
            E::file("attrs", b"a").with_pax("SCHILY.xattr.user.k", b"v"),
            E::new("fifo", tar::EntryType::Fifo, b"", "", 0o600),
        ]);
        r.unwrap();
        let d = t.path().join("layer");
        assert_eq!(
            fs::read(d.join("etc/passwd")).unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        let m = fs::metadata(d.join("bin/tool")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755, "set-uid bit kept");
        assert_eq!(m.mtime(), testkit::FIXTURE_MTIME as i64);
        assert_eq!(
            fs::read_link(d.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            fs::metadata(d.join("etc/passwd-")).unwrap().ino(),
            fs::metadata(d.join("etc/passwd")).unwrap().ino()
        );
        let wh = fs::symlink_metadata(d.join("gone/old")).unwrap();
        assert!(is_whiteout(&wh), "whiteout is a 0:0 char device");
        let mut buf = [0u8; 4];
        let n = rustix::fs::lgetxattr(d.join("opaque"), OPAQUE_XATTR, &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"y");
        assert!(!d.join("opaque/.wh..wh..opq").exists());
        assert!(!d.join("x/.wh..wh.plnk").exists());
        let n = rustix::fs::lgetxattr(d.join("attrs"), "user.k", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"v");
        assert!(
            fs::symlink_metadata(d.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    /// Hostile layers, shared with the scanner's tests.
    pub(crate) fn hostile_cases() -> Vec<(&'static str, Vec<E>, &'static str)> {
        vec![
            ("dotdot", vec![E::file("../escape", b"x")], "'..'"),
            (
                "dotdot-inner",
                vec![E::file("a/../../escape", b"x")],
                "'..'",
            ),
            ("absolute", vec![E::file("/etc/evil", b"x")], "absolute"),
            (
                "write-through-symlink",
                vec![E::symlink("link", "/tmp"), E::file("link/evil", b"x")],
                "through the symlink link",
            ),
            (
                "write-through-relative-symlink",
                vec![
                    E::dir("a/"),
                    E::symlink("a/up", "../.."),
                    E::file("a/up/evil", b"x"),
                ],
                "through the symlink a/up",
            ),
            (
                "hardlink-outside",
                vec![E::hardlink("h", "../../etc/passwd")],
                "'..'",
            ),
            (
                "hardlink-absolute",
                vec![E::hardlink("h", "/etc/passwd")],
                "absolute",
            ),
            (
                "hardlink-missing",
                vec![E::hardlink("h", "etc/passwd")],
                "not in this layer",
            ),
            (
                "hardlink-through-symlink",
                vec![E::symlink("l", "/etc"), E::hardlink("h", "l/passwd")],
                "through the symlink l",
            ),
            (
                "overlay-xattr",
                vec![E::dir("d/").with_pax("SCHILY.xattr.trusted.overlay.opaque", b"y")],
                "overlayfs xattr",
            ),
        ]
    }

    #[test]
    fn refuses_hostile_entries() {
        for (name, entries, want) in hostile_cases() {
            let (t, r) = unpack(&entries);
            let e = r.expect_err(name).to_string();
            assert!(e.contains(want) && e.contains("test-layer"), "{name}: {e}");
            assert!(
                !t.path().join("escape").exists() && !Path::new("/tmp/evil").exists(),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_truncated_tars() {
        let tar = raw_tar(&[E::file("a", &[1u8; 3000]), E::file("b", b"x")]);
        for cut in [100, 1024, 2000, tar.len() - 1024] {
            let t = tempfile::tempdir().unwrap();
            let e = unpack_layer(&mut &tar[..cut], t.path(), "L")
                .unwrap_err()
                .to_string();
            assert!(e.contains("truncated"), "cut {cut}: {e}");
        }
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let (t, r) = unpack(&[
            E::dir("a/"),
            E::file("a/f", b"1"),
            E::file("a", b"now a file"),
            E::file("b", b"1"),
            E::dir("b/"),
        ]);
        r.unwrap();
        let d = t.path().join("layer");
        assert_eq!(fs::read(d.join("a")).unwrap(), b"now a file");
        assert!(d.join("b").is_dir());
    }
}
