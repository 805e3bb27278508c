//! A destination root filesystem, with every path resolved inside it.
//!
//! All lookups go through `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! on a descriptor of the root, so symlinks in the destination (`/etc -> /`,
//! `a -> ../../..`) are followed as if the root were `/` and can never lead
//! outside it. Entries are then created with `*at` calls on the resolved
//! parent directory and never through a final symlink.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Error, Result};

/// An open destination root.
#[derive(Debug)]
pub struct RootDir {
    path: PathBuf,
    canonical: PathBuf,
    fd: OwnedFd,
}

/// What is at a path, without following a final symlink.
pub(crate) type Stat = rustix::fs::Stat;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl RootDir {
    /// Opens a root directory.
    pub fn open(path: &Path) -> Result<RootDir> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let fd = rustix::fs::open(
            &canonical,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(path, e.into()))?;
        Ok(RootDir {
            path: path.to_path_buf(),
            canonical,
            fd,
        })
    }

    /// Wraps a descriptor of a root directory that may have no path at all
    /// (a detached overlay mount of a build step's snapshot). `display` is
    /// only used in messages.
    pub fn from_fd(fd: OwnedFd, display: &Path) -> Result<RootDir> {
        let canonical = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .map_err(|e| Error::io(display, e))?;
        Ok(RootDir {
            path: display.to_path_buf(),
            canonical,
            fd,
        })
    }

    /// A path under which this process can open the root's entries
    /// (`/proc/self/fd/N/.`: the trailing `.` makes even `lstat` see the
    /// directory rather than the descriptor's magic link), valid as long as
    /// the `RootDir` lives.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/self/fd/{}/.",
            std::os::fd::AsRawFd::as_raw_fd(&self.fd)
        ))
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of a root-relative path (for messages only: never
    /// open it directly).
    pub fn display(&self, rel: &str) -> PathBuf {
        self.path.join(rel.trim_start_matches('/'))
    }

    fn rel_of(&self, fd: &OwnedFd) -> Result<String> {
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .map_err(|e| Error::io(Path::new("/proc/self/fd"), e))?;
        let rel = link
            .strip_prefix(&self.canonical)
            .map_err(|_| Error::Escape { path: link.clone() })?;
        Ok(rel.to_string_lossy().into_owned())
    }

    /// Opens a root-relative path (symlinks followed inside the root) with
    /// the given flags.
    pub fn open_at(&self, rel: &str, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }

    /// Opens a directory for `*at` calls.
    pub fn open_dir(&self, rel: &str) -> Result<OwnedFd> {
        self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| Error::io(&self.display(rel), e.into()))
    }

    /// Resolves a path fully (final symlink followed); `None` if missing.
    /// Returns the resolved root-relative path and its stat.
    pub fn resolve(&self, rel: &str) -> Result<Option<(String, Stat)>> {
        match self.open_at(rel, OFlags::PATH) {
            Ok(fd) => {
                let st =
                    rustix::fs::fstat(&fd).map_err(|e| Error::io(&self.display(rel), e.into()))?;
                Ok(Some((self.rel_of(&fd)?, st)))
            }
            Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => Ok(None),
            Err(e) => Err(Error::io(&self.display(rel), e.into())),
        }
    }

    /// `lstat` of a path whose parent is resolved inside the root; `None`
    /// if missing.
    pub fn lstat(&self, rel: &str) -> Result<Option<Stat>> {
        let (parent, name) = split_parent(rel);
        if name.is_empty() {
            return Ok(self.resolve("")?.map(|(_, st)| st));
        }
        let dir = match self.open_at(parent, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(Error::io(&self.display(parent), e.into())),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io(&self.display(rel), e.into())),
        }
    }

    /// Resolves where `rel` is or would be: the longest existing prefix is
    /// resolved (symlinks followed inside the root), the rest appended.
    pub fn resolve_for_create(&self, rel: &str) -> Result<String> {
        let comps: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for i in (0..=comps.len()).rev() {
            let prefix = comps[..i].join("/");
            if let Some((resolved, st)) = self.resolve(&prefix)? {
                if i < comps.len() && !is_dir(&st) {
                    return Err(Error::NotADirectory {
                        path: self.display(&prefix),
                    });
                }
                let mut out = resolved;
                for c in &comps[i..] {
                    if *c == ".." {
                        out = match out.rfind('/') {
                            Some(p) => out[..p].to_string(),
                            None => String::new(),
                        };
                        continue;
                    }
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(c);
                }
                return Ok(out);
            }
        }
        Ok(comps.join("/"))
    }

    /// `mkdir -p` inside the root: creates each missing element with `mode`,
    /// then chowns it to `owner` and sets its times when given (BuildKit's
    /// `MkdirAll`). Returns the created paths (resolved), parents first.
    pub fn mkdir_all(
        &self,
        rel: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
        times: Option<rustix::fs::Timestamps>,
    ) -> Result<Vec<String>> {
        let target = self.resolve_for_create(rel)?;
        let comps: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
        let mut created = Vec::new();
        let mut cur = String::new();
        let mut dir = self.open_dir("")?;
        for c in comps {
            let next = if cur.is_empty() {
                c.to_string()
            } else {
                format!("{cur}/{c}")
            };
            match rustix::fs::mkdirat(&dir, c, Mode::from_raw_mode(mode & 0o7777)) {
                Ok(()) => {
                    let fd = rustix::fs::openat(
                        &dir,
                        c,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| Error::io(&self.display(&next), e.into()))?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))
                        .map_err(|e| Error::io(&self.display(&next), e.into()))?;
                    if let Some((u, g)) = owner {
                        fchown(&fd, u, g).map_err(|e| Error::io(&self.display(&next), e.into()))?;
                    }
                    if let Some(t) = &times {
                        rustix::fs::futimens(&fd, t)
                            .map_err(|e| Error::io(&self.display(&next), e.into()))?;
                    }
                    created.push(next.clone());
                    dir = fd;
                }
                Err(Errno::EXIST) => {
                    dir = rustix::fs::openat(
                        &dir,
                        c,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| match e {
                        Errno::NOTDIR | Errno::LOOP => Error::NotADirectory {
                            path: self.display(&next),
                        },
                        e => Error::io(&self.display(&next), e.into()),
                    })?;
                }
                Err(e) => return Err(Error::io(&self.display(&next), e.into())),
            }
            cur = next;
        }
        Ok(created)
    }
}

/// Splits `a/b/c` into (`a/b`, `c`).
pub(crate) fn split_parent(rel: &str) -> (&str, &str) {
    let rel = rel.trim_matches('/');
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// Whether a stat is a directory.
pub(crate) fn is_dir(st: &Stat) -> bool {
    st.st_mode & 0o170000 == 0o040000
}

/// `fchown` with raw ids.
pub(crate) fn fchown<Fd: AsFd>(fd: Fd, uid: u32, gid: u32) -> rustix::io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        let r = RootDir::open(&root).unwrap();
        // /etc -> / : /etc/passwd is <root>/passwd, never the host's.
        assert_eq!(r.resolve_for_create("/etc/passwd").unwrap(), "passwd");
        assert!(r.resolve("/etc/passwd").unwrap().is_none());
        assert_eq!(r.resolve_for_create("up/x").unwrap(), "x");
        assert_eq!(r.resolve_for_create("abs/x/y").unwrap(), "real/x/y");
        let created = r.mkdir_all("/up/a/b", 0o755, Some((7, 8)), None).unwrap();
        assert_eq!(created, vec!["a", "a/b"]);
        assert!(root.join("a/b").is_dir());
        let md = std::fs::metadata(root.join("a/b")).unwrap();
        assert_eq!(
            (
                std::os::unix::fs::MetadataExt::uid(&md),
                std::os::unix::fs::MetadataExt::gid(&md)
            ),
            (7, 8)
        );
        assert!(
            !d.path().join("a").exists(),
            "nothing written outside the root"
        );
    }
}
