//! `kiln export`: an image's flattened root filesystem as one tar.
//!
//! The image's layers are unpacked (lazily, once) and their directories
//! merged the way overlayfs merges lowerdirs: for every name the topmost
//! layer that has it wins; a whiteout (char device 0:0) hides it; a
//! directory continues into lower layers until one is opaque or has a
//! non-directory of that name. Hard links within a layer stay hard links.
//! Overlay's own `trusted.overlay.*` xattrs are never written.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::blobs::COPY_BUF;
use crate::error::{Error, IoContext, Result};
use crate::records::Image;
use crate::store::Store;
use crate::unpack::{OPAQUE_XATTR, is_whiteout};

/// Writes the flattened root filesystem of `img` to `w` as a tar.
pub fn export(store: &Store, img: &Image, w: impl Write) -> Result<()> {
    let mut layers = Vec::new();
    for d in img.layers.iter().rev() {
        layers.push(store.unpacked_dir(d)?);
    }
    let mut root_stack = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        root_stack.push(i);
        if is_opaque(l)? {
            break;
        }
    }
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut x = Exporter {
        b,
        layers,
        links: HashMap::new(),
    };
    x.walk(Path::new(""), &root_stack)?;
    x.b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::stream("write export tar", e))
}

struct Exporter<W: Write> {
    b: tar::Builder<W>,
    /// Unpacked layer directories, top first.
    layers: Vec<PathBuf>,
    /// (dev, inode) → the first path written for a multiply linked file.
    links: HashMap<(u64, u64), PathBuf>,
}

fn is_opaque(p: &Path) -> Result<bool> {
    let mut buf = [0u8; 4];
    match rustix::fs::lgetxattr(p, OPAQUE_XATTR, &mut buf[..]) {
        Ok(n) => Ok(&buf[..n] == b"y"),
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(Error::io("read xattr of", p, e.into())),
    }
}

fn out(e: io::Error) -> Error {
    Error::stream("write export tar", e)
}

impl<W: Write> Exporter<W> {
    /// Writes the children of `rel`, merged from the layers in `stack`
    /// (indices, top first, in which `rel` is a directory).
    fn walk(&mut self, rel: &Path, stack: &[usize]) -> Result<()> {
        let mut names: BTreeMap<OsString, usize> = BTreeMap::new();
        for (pos, &i) in stack.iter().enumerate() {
            let dir = self.layers[i].join(rel);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) => return Err(Error::io("read directory", &dir, e)),
            };
            for e in rd {
                let e = e.at("read directory", &dir)?;
                names.entry(e.file_name()).or_insert(pos);
            }
        }
        for (name, pos) in names {
            let i = stack[pos];
            let child = rel.join(&name);
            let p = self.layers[i].join(&child);
            let m = fs::symlink_metadata(&p).at("stat", &p)?;
            if is_whiteout(&m) {
                continue;
            }
            if m.is_dir() {
                self.entry(&child, &p, &m)?;
                let mut below = vec![i];
                if !is_opaque(&p)? {
                    for &j in &stack[pos + 1..] {
                        let q = self.layers[j].join(&child);
                        match fs::symlink_metadata(&q) {
                            Ok(qm) if qm.is_dir() => {
                                below.push(j);
                                if is_opaque(&q)? {
                                    break;
                                }
                            }
                            Ok(_) => break,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(Error::io("stat", &q, e)),
                        }
                    }
                }
                self.walk(&child, &below)?;
            } else {
                self.entry(&child, &p, &m)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, p: &Path, m: &fs::Metadata) -> Result<()> {
        let ft = m.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(m.uid() as u64);
        h.set_gid(m.gid() as u64);
        h.set_mtime(m.mtime().max(0) as u64);
        h.set_size(0);
        self.xattrs(p)?;
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let mut name = rel.as_os_str().as_bytes().to_vec();
            name.push(b'/');
            self.b
                .append_data(
                    &mut h,
                    Path::new(std::ffi::OsStr::from_bytes(&name)),
                    io::empty(),
                )
                .map_err(out)
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = fs::read_link(p).at("read link", p)?;
            self.b.append_link(&mut h, rel, &target).map_err(out)
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    let first = first.clone();
                    return self.b.append_link(&mut h, rel, &first).map_err(out);
                }
                self.links.insert(key, rel.to_path_buf());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            let f = fs::File::open(p).at("open", p)?;
            self.b
                .append_data(&mut h, rel, BufReader::with_capacity(COPY_BUF, f))
                .map_err(|e| Error::stream(format!("export {}", p.display()), e))
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            if !ft.is_fifo() {
                let dev = m.rdev();
                h.set_device_major(rustix::fs::major(dev)).map_err(out)?;
                h.set_device_minor(rustix::fs::minor(dev)).map_err(out)?;
            }
            self.b.append_data(&mut h, rel, io::empty()).map_err(out)
        } else {
            tracing::debug!("export: skipping socket {}", p.display());
            Ok(())
        }
    }

    /// Writes a PAX header with the entry's xattrs, if it has any.
    fn xattrs(&mut self, p: &Path) -> Result<()> {
        let attrs = read_xattrs(p)?;
        if attrs.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        for (k, v) in attrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(&k);
            pax_record(&mut records, &key, &v);
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(records.len() as u64);
        h.set_path("PaxHeader").map_err(out)?;
        h.set_cksum();
        self.b.append(&h, &records[..]).map_err(out)
    }
}

/// Appends one `LEN key=value\n` PAX record (LEN counts itself).
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The extended attributes of `p` except overlayfs's own, sorted.
pub(crate) fn read_xattrs(p: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(p, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::RANGE) => {
            names = vec![0u8; 65536];
            rustix::fs::llistxattr(p, &mut names[..]).at("list xattrs of", p)?
        }
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list xattrs of", p, e.into())),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let key = std::ffi::OsStr::from_bytes(name);
        let mut value = vec![0u8; 65536];
        let k = rustix::fs::lgetxattr(p, key, &mut value[..]).at("read xattr of", p)?;
        value.truncate(k);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::pax_record;

    #[test]
    fn pax_lengths_count_themselves() {
        for (k, v) in [
            (&b"a"[..], &b"b"[..]),
            (b"SCHILY.xattr.user.x", &[7u8; 95][..]),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, k, v);
            let s = String::from_utf8_lossy(&out);
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{s}");
        }
    }
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use crate::testutil::{image, store};
    use std::io::Read;
    use testkit::rawtar::{RawEntry as E, raw_tar};

    fn listing(tar: &[u8]) -> Vec<(String, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let what = match e.header().entry_type() {
                    tar::EntryType::Directory => "dir".to_string(),
                    tar::EntryType::Symlink => {
                        format!("-> {}", e.link_name().unwrap().unwrap().display())
                    }
                    tar::EntryType::Link => {
                        format!("=> {}", e.link_name().unwrap().unwrap().display())
                    }
                    _ => {
                        let mut s = String::new();
                        e.read_to_string(&mut s).unwrap();
                        s
                    }
                };
                (name, what)
            })
            .collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_are_applied() {
        let (_t, s) = store();
        let lower = raw_tar(&[
            E::dir("a/"),
            E::file("a/1", b"a1"),
            E::file("a/2", b"a2"),
            E::dir("b/"),
            E::file("b/old", b"old"),
            E::file("c", b"file c"),
            E::dir("d/"),
            E::file("d/keep", b"k"),
            E::hardlink("a/2-link", "a/2"),
        ]);
        let upper = raw_tar(&[
            E::file("a/.wh.1", b""),
            E::dir("b/"),
            E::file("b/.wh..wh..opq", b""),
            E::file("b/new", b"new"),
            E::dir("c/"),
            E::file("c/inside", b"now a dir"),
            E::symlink("d/link", "keep"),
            E::file(".wh.gone", b""),
        ]);
        let img = image(&s, &[lower, upper], &["t:1"], "2023-01-01T00:00:00Z");
        let mut out = Vec::new();
        export(&s, &img, &mut out).unwrap();
        let got = listing(&out);
        let want: Vec<(String, String)> = [
            ("a/", "dir"),
            ("a/2", "a2"),
            ("a/2-link", "=> a/2"),
            ("b/", "dir"),
            ("b/new", "new"),
            ("c/", "dir"),
            ("c/inside", "now a dir"),
            ("d/", "dir"),
            ("d/keep", "k"),
            ("d/link", "-> keep"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
