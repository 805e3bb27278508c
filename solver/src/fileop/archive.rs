//! ADD of local tar archives: detection by content and extraction.
//!
//! Like BuildKit (moby's `DecompressStream` then one `tar.Next()`), a file is
//! an archive when, after optional gzip, bzip2, xz or zstd decompression
//! (recognised by magic bytes, never by name), its first tar header reads.
//! Extraction keeps the archive's modes, owners (unless `--chown`), times and
//! xattrs (best effort), and resolves every path inside the destination
//! root: `..` and absolute names cannot leave the extraction directory.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::root::{RootDir, fchown, split_parent};
use super::{Error, Result};
use crate::context::gopath;

fn decompressed(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut r = BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
    let head = r.fill_buf()?.to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}

/// Whether a local file is a (possibly compressed) tar archive.
pub fn is_archive(path: &Path) -> bool {
    let Ok(r) = decompressed(path) else {
        return false;
    };
    let mut a = tar::Archive::new(r);
    matches!(a.entries().map(|mut e| e.next()), Ok(Some(Ok(_))))
}

fn ts(sec: i64) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: 0,
    }
}

/// Extracts `src` into the directory `dest` (root-relative), creating it.
/// `owner` overrides the archive's ownership (`--chown`); `mtime` overrides
/// its times.
pub fn extract(
    src: &Path,
    root: &RootDir,
    dest: &str,
    owner: Option<(u32, u32)>,
    mtime: Option<(i64, i64)>,
) -> Result<()> {
    let bad = |reason: String| Error::Archive {
        path: src.to_path_buf(),
        reason,
    };
    let dest = root.resolve_for_create(dest)?;
    root.mkdir_all(&dest, 0o755, owner, None)?;
    let mut archive = tar::Archive::new(decompressed(src).map_err(|e| Error::io(src, e))?);
    let mut dir_times: Vec<(String, Timestamps)> = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let cleaned = gopath::clean(&format!("/{name}"));
        let rel = cleaned.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        if gopath::clean(&name).starts_with("../") || gopath::clean(&name) == ".." {
            return Err(bad(format!("entry {name:?} points outside the archive")));
        }
        let path = format!("{dest}/{rel}").trim_start_matches('/').to_string();
        let (parent, base) = split_parent(&path);
        root.mkdir_all(parent, 0o755, owner, None)?;
        let dir = root.open_dir(parent)?;
        let h = entry.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) =
            owner.unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
        let when = mtime.map(|m| m.0).unwrap_or(h.mtime().unwrap_or(0) as i64);
        let t = Timestamps {
            last_access: ts(when),
            last_modification: ts(when),
        };
        let ioe = |e: Errno| Error::io(&root.display(&path), e.into());
        let et = h.entry_type();
        if !et.is_dir() {
            match rustix::fs::statat(&dir, base, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & 0o170000 == 0o040000 => {
                    return Err(Error::CannotReplaceDir {
                        path: root.display(&path),
                    });
                }
                Ok(_) => rustix::fs::unlinkat(&dir, base, AtFlags::empty()).map_err(ioe)?,
                Err(_) => {}
            }
        }
        if et.is_dir() {
            match rustix::fs::mkdirat(&dir, base, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(ioe(e)),
            }
            let fd = rustix::fs::openat(
                &dir,
                base,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(ioe)?;
            fchown(&fd, uid, gid).map_err(ioe)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(ioe)?;
            dir_times.push((path.clone(), t));
        } else if et.is_file() || et == tar::EntryType::Continuous {
            let out = rustix::fs::openat(
                &dir,
                base,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(ioe)?;
            let mut f = std::fs::File::from(out);
            std::io::copy(&mut entry, &mut f).map_err(|e| bad(format!("{name}: {e}")))?;
            fchown(&f, uid, gid).map_err(ioe)?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).map_err(ioe)?;
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    if let Some(k) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.".as_slice()) {
                        let _ = rustix::fs::fsetxattr(
                            &f,
                            k,
                            ext.value_bytes(),
                            rustix::fs::XattrFlags::empty(),
                        );
                    }
                }
            }
            rustix::fs::futimens(&f, &t).map_err(ioe)?;
        } else if et.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default();
            rustix::fs::symlinkat(target.as_slice(), &dir, base).map_err(ioe)?;
            rustix::fs::chownat(
                &dir,
                base,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(ioe)?;
            rustix::fs::utimensat(&dir, base, &t, AtFlags::SYMLINK_NOFOLLOW).map_err(ioe)?;
        } else if et.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default();
            let tname = String::from_utf8_lossy(&target).into_owned();
            if gopath::clean(&tname).starts_with("../") {
                return Err(bad(format!(
                    "hard link {name:?} points outside the archive"
                )));
            }
            let tpath = format!(
                "{dest}/{}",
                gopath::clean(&format!("/{tname}")).trim_start_matches('/')
            );
            let tpath = tpath.trim_start_matches('/');
            let (tp, tb) = split_parent(tpath);
            let tdir = root.open_dir(tp)?;
            rustix::fs::linkat(&tdir, tb, &dir, base, AtFlags::empty()).map_err(ioe)?;
        } else if et.is_character_special() || et.is_block_special() || et.is_fifo() {
            let ft = if et.is_character_special() {
                rustix::fs::FileType::CharacterDevice
            } else if et.is_block_special() {
                rustix::fs::FileType::BlockDevice
            } else {
                rustix::fs::FileType::Fifo
            };
            let dev = rustix::fs::makedev(
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            rustix::fs::mknodat(&dir, base, ft, Mode::from_raw_mode(mode), dev).map_err(ioe)?;
            rustix::fs::chownat(
                &dir,
                base,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(ioe)?;
        }
        // Other types (PAX globals, GNU long names) are handled by the tar reader.
    }
    for (p, t) in dir_times.iter().rev() {
        let (parent, base) = split_parent(p);
        let dir = root.open_dir(parent)?;
        rustix::fs::utimensat(&dir, base, t, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io(&root.display(p), e.into()))?;
    }
    Ok(())
}
