//! Layer directory → OCI layer tar.
//!
//! [`write_layer`] streams a layer directory in overlayfs upperdir format
//! (the result of a RUN, or any layer of the store) to a `Write` as an
//! uncompressed OCI layer:
//!
//! - a 0:0 character device becomes a `.wh.NAME` whiteout — but only when
//!   the lower chain has something to delete (overlayfs sometimes leaves
//!   whiteouts for paths created and removed in the same step);
//! - a directory marked opaque gets a `.wh..wh..opq` entry right after it,
//!   again only when the lower chain has that directory;
//! - entries identical to the lower chain (directories copied up only
//!   because something inside them changed, files copied up without a
//!   change) are left out, except as the parent of an entry that is written;
//! - modes, ownership, extended attributes (as PAX `SCHILY.xattr.*`, minus
//!   overlayfs' own `trusted.overlay.*`), symlinks, device nodes and fifos
//!   are kept; hard links within the layer are written as tar hard links;
//!   sockets are skipped;
//! - entries are written depth-first in bytewise name order, timestamps in
//!   whole seconds, no user or group names, no access or change times, so
//!   the same directory always gives the same bytes; with
//!   [`DiffOptions::clamp_mtime`] (`SOURCE_DATE_EPOCH`) no timestamp is
//!   later than the given time.
//!
//! File contents are streamed; memory use does not depend on file sizes.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::compare::same_entry;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{is_opaque, is_whiteout, lstat_opt, sorted_entries, xattrs};
use crate::layers::{LowerDir, LowerView};

/// The prefix of a whiteout entry's file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the entry that marks its directory opaque.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How to write a layer tar.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Clamp every timestamp to at most this many seconds since the epoch
    /// (`SOURCE_DATE_EPOCH`), for reproducible layers.
    pub clamp_mtime: Option<i64>,
}

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// Tar entries (files, directories, links, whiteouts; not PAX headers).
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
}

/// Writes layer directory `layer` as an OCI layer tar to `out`, comparing
/// against `lowers` (the parent chain, topmost first; empty for a base
/// layer). Returns `out` and a summary. The tar is uncompressed; wrap `out`
/// in an encoder to compress it.
pub fn write_layer<W: Write>(
    layer: &Path,
    lowers: &[PathBuf],
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
    let root = lstat_opt(layer)?.ok_or_else(|| {
        Error::io(
            "read layer directory",
            layer,
            std::io::ErrorKind::NotFound.into(),
        )
    })?;
    if !root.is_dir() {
        return Err(Error::Invalid(format!(
            "layer {} is not a directory",
            layer.display()
        )));
    }
    let view = LowerView::new(lowers);
    let mut w = TarWriter::new(out, opts.clamp_mtime);
    let mut walker = Walker {
        layer,
        view,
        pending: Vec::new(),
    };
    let lower = view.open_dir(Path::new(""), view.root())?;
    walker.walk(&mut w, Path::new(""), &lower)?;
    w.finish()
}

struct Walker<'a> {
    layer: &'a Path,
    view: LowerView<'a>,
    /// Directories not yet written because they did not change; written
    /// as soon as something inside them is.
    pending: Vec<PathBuf>,
}

impl Walker<'_> {
    fn flush<W: Write>(&mut self, w: &mut TarWriter<W>) -> Result<()> {
        for rel in std::mem::take(&mut self.pending) {
            let full = self.layer.join(&rel);
            let meta = std::fs::symlink_metadata(&full).ctx("stat", &full)?;
            w.entry(&rel, &full, &meta)?;
        }
        Ok(())
    }

    fn walk<W: Write>(
        &mut self,
        w: &mut TarWriter<W>,
        rel_dir: &Path,
        lower: &LowerDir,
    ) -> Result<()> {
        let dir = self.layer.join(rel_dir);
        for name in sorted_entries(&dir)? {
            let rel = rel_dir.join(&name);
            let full = dir.join(&name);
            let meta = std::fs::symlink_metadata(&full).ctx("stat", &full)?;
            let old = lower.child(&name)?;
            if is_whiteout(&meta) {
                if old.is_some() {
                    self.flush(w)?;
                    w.whiteout(rel_dir, &name)?;
                }
                continue;
            }
            if meta.file_type().is_socket() {
                continue;
            }
            if !meta.is_dir() {
                if let Some(old) = &old
                    && same_entry(&old.path, &old.meta, &full, &meta)?
                {
                    continue;
                }
                self.flush(w)?;
                w.entry(&rel, &full, &meta)?;
                continue;
            }
            let opaque = old.is_some() && is_opaque(&full)?;
            let child_lower = match &old {
                Some(o) if o.meta.is_dir() && !opaque => self.view.open_dir(&rel, o.range)?,
                _ => LowerDir::empty(),
            };
            let unchanged = match &old {
                Some(o) if o.meta.is_dir() && !opaque => {
                    same_entry(&o.path, &o.meta, &full, &meta)?
                }
                _ => false,
            };
            if unchanged {
                let mark = self.pending.len();
                self.pending.push(rel.clone());
                self.walk(w, &rel, &child_lower)?;
                self.pending.truncate(mark);
            } else {
                self.flush(w)?;
                w.entry(&rel, &full, &meta)?;
                if opaque {
                    w.opaque_marker(&rel)?;
                }
                self.walk(w, &rel, &child_lower)?;
            }
        }
        Ok(())
    }
}

/// Writes tar headers the way the differ wants them (see the module doc).
struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    clamp: Option<i64>,
    /// (dev, ino) → tar path of the first entry written for that inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    summary: DiffSummary,
}

fn tar_err(e: std::io::Error) -> Error {
    Error::os("write layer tar", e)
}

impl<W: Write> TarWriter<W> {
    fn new(out: W, clamp: Option<i64>) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        TarWriter {
            builder,
            clamp,
            links: HashMap::new(),
            summary: DiffSummary::default(),
        }
    }

    fn mtime(&self, t: i64) -> u64 {
        let t = match self.clamp {
            Some(c) if t > c => c,
            _ => t,
        };
        t.max(0) as u64
    }

    fn entry(&mut self, rel: &Path, full: &Path, meta: &Metadata) -> Result<()> {
        let mut name = rel.as_os_str().as_bytes().to_vec();
        let ft = meta.file_type();
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(self.mtime(meta.mtime()));
        header.set_size(0);
        let mut content: Option<File> = None;
        if ft.is_dir() {
            name.push(b'/');
            header.set_entry_type(tar::EntryType::Directory);
        } else if ft.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            let target = std::fs::read_link(full).ctx("read link", full)?;
            set_link(&mut header, &mut pax, target.as_os_str().as_bytes())?;
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            match self.links.get(&key) {
                Some(first) if meta.nlink() > 1 => {
                    header.set_entry_type(tar::EntryType::Link);
                    let first = first.clone();
                    set_link(&mut header, &mut pax, &first)?;
                }
                _ => {
                    if meta.nlink() > 1 {
                        self.links.insert(key, name.clone());
                    }
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(meta.size());
                    content = Some(File::open(full).ctx("open", full)?);
                }
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            header.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            header
                .set_device_major(rustix::fs::major(rdev))
                .map_err(tar_err)?;
            header
                .set_device_minor(rustix::fs::minor(rdev))
                .map_err(tar_err)?;
        } else if ft.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
        } else {
            return Ok(());
        }
        // A hard link's xattrs are its inode's, already on the first entry.
        let attrs = if header.entry_type() == tar::EntryType::Link {
            Vec::new()
        } else {
            xattrs(full)?
        };
        for (k, v) in attrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(&k);
            pax.push((key, v));
        }
        self.append(header, name, pax, content, meta.size())
    }

    fn whiteout(&mut self, rel_dir: &Path, name: &OsStr) -> Result<()> {
        let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        self.empty_marker(&rel_dir.join(wh))
    }

    fn opaque_marker(&mut self, rel_dir: &Path) -> Result<()> {
        self.empty_marker(&rel_dir.join(OPAQUE_MARKER))
    }

    /// Whiteouts and opaque markers: empty regular files, mode 0, owned by
    /// root, timestamp 0 (they describe a deletion, which has no time of
    /// its own that would be reproducible).
    fn empty_marker(&mut self, rel: &Path) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        self.append(
            header,
            rel.as_os_str().as_bytes().to_vec(),
            Vec::new(),
            None,
            0,
        )
    }

    fn append(
        &mut self,
        mut header: tar::Header,
        name: Vec<u8>,
        mut pax: Vec<(Vec<u8>, Vec<u8>)>,
        content: Option<File>,
        size: u64,
    ) -> Result<()> {
        if header.set_path(OsStr::from_bytes(&name)).is_err() {
            // ustar's 100+155 byte name/prefix split cannot hold it: PAX
            // `path`, and a shortened name for readers that ignore PAX.
            header
                .set_path(OsStr::from_bytes(&truncate(&name, 99)))
                .map_err(tar_err)?;
            pax.insert(0, (b"path".to_vec(), name.clone()));
        }
        if !pax.is_empty() {
            self.pax_header(&name, &header, &pax)?;
        }
        header.set_cksum();
        match content {
            Some(f) => {
                let mut reader = Exact {
                    inner: f.take(size),
                    left: size,
                };
                self.builder.append(&header, &mut reader).map_err(tar_err)?;
                if reader.left != 0 {
                    return Err(Error::Invalid(format!(
                        "{} changed size while being written to the layer",
                        String::from_utf8_lossy(&name)
                    )));
                }
                self.summary.content_bytes += size;
            }
            None => self
                .builder
                .append(&header, std::io::empty())
                .map_err(tar_err)?,
        }
        self.summary.entries += 1;
        Ok(())
    }

    fn pax_header(
        &mut self,
        name: &[u8],
        entry: &tar::Header,
        records: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        let mut data = Vec::new();
        for (k, v) in records {
            data.extend_from_slice(&pax_record(k, v));
        }
        let base = name
            .trim_ascii_end()
            .strip_suffix(b"/")
            .unwrap_or(name)
            .rsplit(|b| *b == b'/')
            .next()
            .unwrap_or(b"");
        let mut pax_name = b"PaxHeaders.0/".to_vec();
        pax_name.extend_from_slice(base);
        let pax_name = truncate(&pax_name, 99);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path(OsStr::from_bytes(&pax_name)).map_err(tar_err)?;
        h.set_mode(0o644);
        h.set_mtime(entry.mtime().unwrap_or(0));
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..]).map_err(tar_err)
    }

    fn finish(self) -> Result<(W, DiffSummary)> {
        let summary = self.summary;
        let mut out = self.builder.into_inner().map_err(tar_err)?;
        out.flush().map_err(tar_err)?;
        Ok((out, summary))
    }
}

/// A reader that counts down what is left, so a file that shrank while
/// being copied is detected instead of producing a corrupt tar.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn set_link(
    header: &mut tar::Header,
    pax: &mut Vec<(Vec<u8>, Vec<u8>)>,
    target: &[u8],
) -> Result<()> {
    if target.len() > 100 || header.set_link_name_literal(target).is_err() {
        header
            .set_link_name_literal(truncate(target, 100))
            .map_err(tar_err)?;
        pax.push((b"linkpath".to_vec(), target.to_vec()));
    }
    Ok(())
}

fn truncate(b: &[u8], n: usize) -> Vec<u8> {
    b[..b.len().min(n)].to_vec()
}

/// One PAX record: `"<len> <key>=<value>\n"`, where len counts itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    debug_assert_eq!(out.len(), len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
        // 98 + 2 digits = 100: the length grows a digit.
        let v = vec![b'x'; 91];
        let r = pax_record(b"path", &v);
        assert_eq!(r.len(), 101);
        assert!(r.starts_with(b"101 path="));
    }
}
