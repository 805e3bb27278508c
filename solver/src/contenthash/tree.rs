//! A read-only, lazily loaded view of a source directory (the build context
//! or another stage's root filesystem), filtered by `.dockerignore`.
//!
//! Directories are listed on first use, their entries `lstat`ed once and kept;
//! digests are memoised per node. Paths are resolved *inside* the root:
//! symlinks are followed as if the root were `/`, and `..` stops at the root.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::header::libc_s;
use super::statcache::{MemoryStatCache, StatCache};
use super::{Digest, Error, Result};
use crate::context::{ContextFilter, MatchInfo, Verdict};

/// The `lstat` fields kiln needs from a source entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: i64,
    /// Access time, seconds.
    pub atime: i64,
    /// Access time, nanoseconds.
    pub atime_nsec: i64,
    /// Status-change time, seconds.
    pub ctime: i64,
    /// Status-change time, nanoseconds.
    pub ctime_nsec: i64,
    /// Inode number.
    pub ino: u64,
    /// Device of the filesystem.
    pub dev: u64,
    /// Device number, for device nodes.
    pub rdev: u64,
    /// Hard link count.
    pub nlink: u64,
}

impl Meta {
    /// From `std::fs::Metadata` of an `lstat`.
    pub fn from_std(m: &std::fs::Metadata) -> Meta {
        Meta {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            atime: m.atime(),
            atime_nsec: m.atime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            ino: m.ino(),
            dev: m.dev(),
            rdev: m.rdev(),
            nlink: m.nlink(),
        }
    }

    /// From a `stat` made with `statat`.
    pub fn from_stat(st: &rustix::fs::Stat) -> Meta {
        Meta {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            atime: st.st_atime,
            atime_nsec: st.st_atime_nsec as i64,
            ctime: st.st_ctime,
            ctime_nsec: st.st_ctime_nsec as i64,
            ino: st.st_ino,
            dev: st.st_dev,
            rdev: st.st_rdev,
            nlink: st.st_nlink,
        }
    }

    /// The file type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & libc_s::S_IFMT
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc_s::S_IFDIR
    }
    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc_s::S_IFLNK
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc_s::S_IFREG
    }
}

/// One visible entry of a [`SourceTree`].
#[derive(Debug)]
pub struct Node {
    rel: Vec<u8>,
    meta: Meta,
    link: Option<Vec<u8>>,
    match_info: MatchInfo,
    children: Mutex<Option<Arc<[Arc<Node>]>>>,
    pub(super) digest: OnceLock<Digest>,
    pub(super) header: OnceLock<Digest>,
}

impl Node {
    /// Path relative to the tree root, slash separated, no leading `/`
    /// (empty for the root).
    pub fn rel(&self) -> &[u8] {
        &self.rel
    }
    /// The last path element (empty for the root).
    pub fn name(&self) -> &[u8] {
        match self.rel.iter().rposition(|&c| c == b'/') {
            Some(i) => &self.rel[i + 1..],
            None => &self.rel,
        }
    }
    /// Its `lstat`.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    /// The symlink target, for symlinks.
    pub fn link_target(&self) -> Option<&[u8]> {
        self.link.as_deref()
    }
}

/// Options of a [`SourceTree`].
#[derive(Clone)]
pub struct SourceOptions {
    /// `.dockerignore` filter (empty for stage sources).
    pub filter: Arc<ContextFilter>,
    /// Treat every entry as owned by 0:0 (the build context: BuildKit's client
    /// zeroes ownership) — affects digests and copies.
    pub zero_owner: bool,
    /// For the build context, BuildKit hashes the root directory's own header
    /// as the empty string; set this to match.
    pub empty_root_header: bool,
    /// Remembers file digests across runs.
    pub stat_cache: Arc<dyn StatCache>,
}

impl SourceOptions {
    /// The options for a build context: filtered, 0:0, empty root header.
    pub fn context(filter: ContextFilter, stat_cache: Arc<dyn StatCache>) -> Self {
        SourceOptions {
            filter: Arc::new(filter),
            zero_owner: true,
            empty_root_header: true,
            stat_cache,
        }
    }

    /// The options for another stage's root filesystem: unfiltered, real
    /// ownership, with an in-memory stat cache.
    pub fn rootfs() -> Self {
        SourceOptions {
            filter: Arc::new(ContextFilter::none()),
            zero_owner: false,
            empty_root_header: false,
            stat_cache: Arc::new(MemoryStatCache::default()),
        }
    }
}

/// A source directory read in place.
pub struct SourceTree {
    root_path: PathBuf,
    root: Arc<Node>,
    pub(super) opts: SourceOptions,
}

impl std::fmt::Debug for SourceTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTree")
            .field("root", &self.root_path)
            .finish_non_exhaustive()
    }
}

const MAX_SYMLINKS: usize = 255;

impl SourceTree {
    /// Opens `root` (which must be a directory).
    pub fn open(root: &Path, opts: SourceOptions) -> Result<SourceTree> {
        let md = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !md.is_dir() {
            return Err(Error::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let root_node = Arc::new(Node {
            rel: Vec::new(),
            meta: Meta::from_std(&md),
            link: None,
            match_info: MatchInfo::default(),
            children: Mutex::new(None),
            digest: OnceLock::new(),
            header: OnceLock::new(),
        });
        Ok(SourceTree {
            root_path: root.to_path_buf(),
            root: root_node,
            opts,
        })
    }

    /// The directory on disk.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// The root node.
    pub fn root(&self) -> &Arc<Node> {
        &self.root
    }

    /// Whether no `.dockerignore` filter hides anything.
    pub fn filter_is_empty(&self) -> bool {
        self.opts.filter.is_empty()
    }

    /// Whether entries count as owned by 0:0.
    pub fn zero_owner(&self) -> bool {
        self.opts.zero_owner
    }

    /// The on-disk path of a node.
    pub fn disk_path(&self, node: &Node) -> PathBuf {
        if node.rel.is_empty() {
            self.root_path.clone()
        } else {
            self.root_path.join(OsStr::from_bytes(&node.rel))
        }
    }

    /// The owner a node counts as having.
    pub fn owner(&self, node: &Node) -> (u32, u32) {
        if self.opts.zero_owner {
            (0, 0)
        } else {
            (node.meta.uid, node.meta.gid)
        }
    }

    /// The visible children of a directory node, sorted by name.
    pub fn children(&self, node: &Node) -> Result<Arc<[Arc<Node>]>> {
        if !node.meta.is_dir() {
            return Ok(Arc::from(Vec::new()));
        }
        let mut guard = node.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let list: Arc<[Arc<Node>]> = Arc::from(self.load_children(node)?);
        *guard = Some(list.clone());
        Ok(list)
    }

    fn load_children(&self, node: &Node) -> Result<Vec<Arc<Node>>> {
        use rustix::fs::{AtFlags, Mode, OFlags};
        let dir = self.disk_path(node);
        // Entries are looked up relative to the open directory: one path
        // component per lookup instead of the whole path.
        let fd = rustix::fs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&dir, e.into()))?;
        let mut names: Vec<Vec<u8>> = Vec::new();
        for e in rustix::fs::Dir::read_from(&fd).map_err(|e| Error::io(&dir, e.into()))? {
            let e = e.map_err(|e| Error::io(&dir, e.into()))?;
            let name = e.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut rel = node.rel.clone();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let path = || dir.join(OsStr::from_bytes(&name));
            let st = match rustix::fs::statat(
                &fd,
                OsStr::from_bytes(&name),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                // Vanished while we listed: it is not part of the source.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(Error::io(&path(), e.into())),
            };
            let meta = Meta::from_stat(&st);
            let (verdict, match_info) =
                self.opts
                    .filter
                    .check(&rel, meta.is_dir(), &node.match_info);
            if verdict == Verdict::SkipDir || (verdict == Verdict::Exclude && !meta.is_dir()) {
                continue;
            }
            let link = if meta.is_symlink() {
                Some(
                    rustix::fs::readlinkat(&fd, OsStr::from_bytes(&name), Vec::new())
                        .map_err(|e| Error::io(&path(), e.into()))?
                        .into_bytes(),
                )
            } else {
                None
            };
            let child = Arc::new(Node {
                rel,
                meta,
                link,
                match_info,
                children: Mutex::new(None),
                digest: OnceLock::new(),
                header: OnceLock::new(),
            });
            if verdict == Verdict::Exclude {
                // An excluded directory exists only through re-included descendants.
                if self.children(&child)?.is_empty() {
                    continue;
                }
            }
            out.push(child);
        }
        Ok(out)
    }

    /// The child of a directory node by name.
    pub fn child(&self, node: &Node, name: &[u8]) -> Result<Option<Arc<Node>>> {
        let c = self.children(node)?;
        Ok(c.binary_search_by(|n| n.name().cmp(name))
            .ok()
            .map(|i| c[i].clone()))
    }

    /// Resolves a slash path inside the root. Intermediate symlinks are always
    /// followed (staying inside the root); the final one only when
    /// `follow_final`. `None` when the path does not exist (or is filtered out).
    pub fn resolve(&self, path: &[u8], follow_final: bool) -> Result<Option<Arc<Node>>> {
        let mut comps: VecDeque<Vec<u8>> = components(path).collect();
        let mut stack: Vec<Arc<Node>> = vec![self.root.clone()];
        let mut hops = 0;
        while let Some(c) = comps.pop_front() {
            if c == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let cur = stack.last().cloned().unwrap_or_else(|| self.root.clone());
            if !cur.meta.is_dir() {
                return Ok(None);
            }
            let Some(child) = self.child(&cur, &c)? else {
                return Ok(None);
            };
            if child.meta.is_symlink() && (!comps.is_empty() || follow_final) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(Error::TooManySymlinks {
                        path: String::from_utf8_lossy(path).into_owned(),
                    });
                }
                let target = child.link.clone().unwrap_or_default();
                if target.starts_with(b"/") {
                    stack.truncate(1);
                }
                for t in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    comps.push_front(t);
                }
            } else {
                stack.push(child);
            }
        }
        Ok(stack.pop())
    }

    /// The xattrs of a node (all of them, unfiltered), read with `llistxattr`.
    pub fn xattrs(&self, node: &Node) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        read_xattrs(&self.disk_path(node))
    }
}

/// Reads every xattr of a path without following a final symlink. Filesystems
/// without xattr support give an empty list.
pub fn read_xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    collect_xattrs(
        path,
        |b| rustix::fs::llistxattr(path, b),
        |n, b| rustix::fs::lgetxattr(path, n, b),
    )
}

/// [`read_xattrs`] of a file already open (no path lookup); `path` names
/// it in errors.
pub fn read_file_xattrs(f: &std::fs::File, path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    collect_xattrs(
        path,
        |b| rustix::fs::flistxattr(f, b),
        |n, b| rustix::fs::fgetxattr(f, n, b),
    )
}

fn collect_xattrs(
    path: &Path,
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&OsStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        match list(&mut buf[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e.into())),
        }
    };
    let mut out = Vec::new();
    for name in buf[..n].split(|&c| c == 0).filter(|s| !s.is_empty()) {
        let mut val = vec![0u8; 256];
        loop {
            match get(OsStr::from_bytes(name), &mut val[..]) {
                Ok(len) => {
                    val.truncate(len);
                    out.push((name.to_vec(), val));
                    break;
                }
                Err(rustix::io::Errno::RANGE) => val.resize(val.len() * 4, 0),
                // Removed meanwhile, or not readable: BuildKit skips it too.
                Err(_) => break,
            }
        }
    }
    Ok(out)
}

/// The non-empty, non-`.` elements of a slash path.
pub(crate) fn components(p: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| c.to_vec())
}
