//! The layer tar's bytes: headers, PAX records, file contents, padding.
//!
//! Entries are written straight to the output (512-byte header, contents,
//! zero padding to a 512-byte boundary, two zero blocks at the end: the
//! bytes `tar::Builder::append` would write), with file contents read
//! through one reusable buffer in large reads.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::{DiffSummary, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{XattrSource, xattrs};

/// Tar blocks are this big.
const BLOCK: usize = 512;
/// File contents are read in pieces of at most this size.
const READ_BUF: usize = 256 * 1024;

/// Writes tar entries the way the differ wants them (see the module doc).
pub(super) struct TarWriter<W: Write> {
    out: W,
    /// Reused for file contents (allocated on the first file).
    buf: Vec<u8>,
    clamp: Option<i64>,
    /// (dev, ino) → tar path of the first entry written for that inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    summary: DiffSummary,
}

/// Opens regular file `full` for reading: relative to `dir` (the
/// directory it is in, open) when given.
fn open_file(dir: Option<&File>, full: &Path) -> Result<File> {
    let Some((dir, name)) = dir.zip(full.file_name()) else {
        return File::open(full).ctx("open", full);
    };
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW;
    rustix::fs::openat(dir, name, flags, rustix::fs::Mode::empty())
        .map(File::from)
        .map_err(std::io::Error::from)
        .ctx("open", full)
}

fn tar_err(e: std::io::Error) -> Error {
    Error::os("write layer tar", e)
}

impl<W: Write> TarWriter<W> {
    pub(super) fn new(out: W, clamp: Option<i64>) -> Self {
        TarWriter {
            out,
            buf: Vec::new(),
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

    /// Writes one entry read at `full`; a regular file's contents are
    /// opened relative to `dir` (the directory it is in, open) when given.
    pub(super) fn entry(
        &mut self,
        rel: &Path,
        full: &Path,
        meta: &Metadata,
        dir: Option<&File>,
    ) -> Result<()> {
        let mut name = rel.as_os_str().as_bytes().to_vec();
        let ft = meta.file_type();
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(self.mtime(meta.mtime()));
        header.set_size(0);
        let mut content: Option<(File, &Path)> = None;
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
                    content = Some((open_file(dir, full)?, full));
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
        let attrs = match &content {
            _ if header.entry_type() == tar::EntryType::Link => Vec::new(),
            Some((f, _)) => XattrSource::File(f, full).all()?,
            None => xattrs(full)?,
        };
        for (k, v) in attrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(&k);
            pax.push((key, v));
        }
        self.append(header, name, pax, content, meta.size())
    }

    pub(super) fn whiteout(&mut self, rel_dir: &Path, name: &OsStr) -> Result<()> {
        let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        self.empty_marker(&rel_dir.join(wh))
    }

    pub(super) fn opaque_marker(&mut self, rel_dir: &Path) -> Result<()> {
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
        content: Option<(File, &Path)>,
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
        self.out.write_all(header.as_bytes()).map_err(tar_err)?;
        if let Some((f, full)) = content {
            self.copy_content(f, full, size, &name)?;
            self.summary.content_bytes += size;
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Writes exactly `size` bytes of `f` and the padding after them; a
    /// file that shrank while being read is an error rather than a
    /// corrupt tar (one that grew is cut at `size`).
    fn copy_content(&mut self, mut f: File, full: &Path, size: u64, name: &[u8]) -> Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; READ_BUF];
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(Error::Invalid(format!(
                        "{} changed size while being written to the layer",
                        String::from_utf8_lossy(name)
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).ctx("read", full);
                }
            };
            self.out.write_all(&self.buf[..n]).map_err(tar_err)?;
            left -= n as u64;
        }
        self.pad(size)
    }

    /// Zeros up to the next block boundary after `len` bytes of contents.
    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out
                .write_all(&[0u8; BLOCK][..BLOCK - rem])
                .map_err(tar_err)?;
        }
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
        self.out.write_all(h.as_bytes()).map_err(tar_err)?;
        self.out.write_all(&data).map_err(tar_err)?;
        self.pad(data.len() as u64)
    }

    pub(super) fn finish(self) -> Result<(W, DiffSummary)> {
        let summary = self.summary;
        let mut out = self.out;
        // The end of the archive: two zero blocks.
        out.write_all(&[0u8; 2 * BLOCK]).map_err(tar_err)?;
        out.flush().map_err(tar_err)?;
        Ok((out, summary))
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
