//! The other file actions: mkdir (WORKDIR, RUN mount points), mkfile
//! (`COPY <<EOF` heredocs) and rm — each resolved inside the root.

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::owner::Owner;
use super::root::{RootDir, fchown, split_parent};
use super::{Error, Result};

fn stamps(t: Option<(i64, i64)>) -> Option<Timestamps> {
    t.map(|(s, n)| {
        let ts = Timespec {
            tv_sec: s,
            tv_nsec: n as _,
        };
        Timestamps {
            last_access: ts,
            last_modification: ts,
        }
    })
}

/// Creates a directory (with its parents when `parents`), mode `mode`,
/// owned by `owner` (else 0:0); an existing directory is left alone.
pub fn mkdir(
    root: &RootDir,
    path: &str,
    mode: u32,
    parents: bool,
    owner: Option<Owner>,
    timestamp: Option<(i64, i64)>,
) -> Result<()> {
    let o = owner.map(|o| (o.uid, o.gid));
    if parents {
        root.mkdir_all(path, mode & 0o777, o, stamps(timestamp))?;
        return Ok(());
    }
    let target = root.resolve_for_create(path)?;
    let (parent, name) = split_parent(&target);
    let dir = root.open_dir(parent)?;
    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(mode & 0o777)) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(()),
        Err(e) => return Err(Error::io(&root.display(&target), e.into())),
    }
    let fd = rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(&root.display(&target), e.into()))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
        .map_err(|e| Error::io(&root.display(&target), e.into()))?;
    if let Some((u, g)) = o {
        fchown(&fd, u, g).map_err(|e| Error::io(&root.display(&target), e.into()))?;
    }
    if let Some(t) = stamps(timestamp) {
        rustix::fs::futimens(&fd, &t).map_err(|e| Error::io(&root.display(&target), e.into()))?;
    }
    Ok(())
}

/// Writes a file with `data` (creating or truncating it; a final symlink is
/// followed inside the root, as BuildKit's `os.WriteFile` on a rooted path).
pub fn mkfile(
    root: &RootDir,
    path: &str,
    data: &[u8],
    mode: u32,
    owner: Option<Owner>,
    timestamp: Option<(i64, i64)>,
) -> Result<()> {
    use std::io::Write;
    let target = root.resolve_for_create(path)?;
    let (parent, name) = split_parent(&target);
    let dir = root.open_dir(parent)?;
    let fd = rustix::fs::openat(
        &dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o777),
    )
    .map_err(|e| Error::io(&root.display(&target), e.into()))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)
        .map_err(|e| Error::io(&root.display(&target), e))?;
    if let Some(o) = owner {
        fchown(&f, o.uid, o.gid).map_err(|e| Error::io(&root.display(&target), e.into()))?;
    }
    if let Some(t) = stamps(timestamp) {
        rustix::fs::futimens(&f, &t).map_err(|e| Error::io(&root.display(&target), e.into()))?;
    }
    Ok(())
}

/// Removes a path and everything under it; the final element is not
/// followed. A missing path is an error unless `allow_not_found`.
pub fn rm(root: &RootDir, path: &str, allow_not_found: bool) -> Result<()> {
    let clean = crate::context::gopath::clean(&format!("/{path}"));
    let (parent, name) = split_parent(&clean);
    if name.is_empty() {
        return Err(Error::Invalid("rm: invalid empty path".into()));
    }
    let parent = root.resolve_for_create(parent)?;
    let dir = match root.open_at(&parent, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(d) => d,
        Err(Errno::NOENT) if allow_not_found => return Ok(()),
        Err(Errno::NOENT) => return Err(Error::NotFound { path: clean }),
        Err(e) => return Err(Error::io(&root.display(&parent), e.into())),
    };
    let cname = std::ffi::CString::new(name)
        .map_err(|_| Error::Invalid(format!("rm: bad path {clean:?}")))?;
    match remove_at(&dir, &cname) {
        Ok(()) => Ok(()),
        Err(Errno::NOENT) if allow_not_found => Ok(()),
        Err(Errno::NOENT) => Err(Error::NotFound { path: clean }),
        Err(e) => Err(Error::io(&root.display(&clean), e.into())),
    }
}

fn remove_at(dir: &std::os::fd::OwnedFd, name: &std::ffi::CStr) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        r => return r,
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    let d = rustix::fs::Dir::read_from(&sub)?;
    for e in d {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    for n in names {
        remove_at(&sub, &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}
