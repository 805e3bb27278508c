//! Hand-made tar archives whose member names are written byte for byte,
//! unchecked: how tests build hostile layers (`../x`, `/etc/passwd`, links
//! pointing outside) that the `tar` crate's own builder would refuse.

use std::io::{self, Write};

/// One member of a raw tar.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The name, exactly as written.
    pub name: Vec<u8>,
    /// Entry type.
    pub kind: tar::EntryType,
    /// Content (regular files).
    pub data: Vec<u8>,
    /// Link target (symlinks, hard links).
    pub link: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// PAX records written before the entry, as (key, value).
    pub pax: Vec<(String, Vec<u8>)>,
}

impl RawEntry {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self::new(name, tar::EntryType::Regular, data, "", 0o644)
    }
    /// A directory.
    pub fn dir(name: &str) -> Self {
        Self::new(name, tar::EntryType::Directory, b"", "", 0o755)
    }
    /// A symlink.
    pub fn symlink(name: &str, target: &str) -> Self {
        Self::new(name, tar::EntryType::Symlink, b"", target, 0o777)
    }
    /// A hard link.
    pub fn hardlink(name: &str, target: &str) -> Self {
        Self::new(name, tar::EntryType::Link, b"", target, 0o644)
    }
    /// Any entry.
    pub fn new(name: &str, kind: tar::EntryType, data: &[u8], link: &str, mode: u32) -> Self {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind,
            data: data.to_vec(),
            link: link.as_bytes().to_vec(),
            mode,
            pax: Vec::new(),
        }
    }
    /// Adds a PAX record (e.g. `SCHILY.xattr.user.k`).
    pub fn with_pax(mut self, key: &str, value: &[u8]) -> Self {
        self.pax.push((key.to_string(), value.to_vec()));
        self
    }
}

fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8], mode: u32) -> tar::Header {
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "raw names are limited to 100 bytes"
    );
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(crate::FIXTURE_MTIME);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name);
    old.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h
}

/// Writes `entries` as a tar (with the end-of-archive marker) to `w`.
pub fn write_raw_tar<W: Write>(mut w: W, entries: &[RawEntry]) -> io::Result<W> {
    let pad = |w: &mut W, n: usize| w.write_all(&vec![0u8; (512 - n % 512) % 512]);
    for e in entries {
        if !e.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &e.pax {
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                body.extend_from_slice(format!("{len} {k}=").as_bytes());
                body.extend_from_slice(v);
                body.push(b'\n');
            }
            let h = raw_header(
                b"PaxHeader",
                tar::EntryType::XHeader,
                body.len() as u64,
                b"",
                0o644,
            );
            w.write_all(h.as_bytes())?;
            w.write_all(&body)?;
            pad(&mut w, body.len())?;
        }
        let h = raw_header(&e.name, e.kind, e.data.len() as u64, &e.link, e.mode);
        w.write_all(h.as_bytes())?;
        w.write_all(&e.data)?;
        pad(&mut w, e.data.len())?;
    }
    w.write_all(&[0u8; 1024])?;
    Ok(w)
}

/// `entries` as tar bytes.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    write_raw_tar(Vec::new(), entries).expect("write to a Vec")
}
