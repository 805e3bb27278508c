//! COPY/ADD into a destination root: planning, then writing.
//!
//! [`plan_copy`] decides, without writing, what a copy produces — following
//! fsutil's `Copy` (BuildKit's copy backend) rule by rule: the destination's
//! missing parents are created (mode 0755 or a numeric `--chmod`, owned by
//! `--chown`), a directory source copies its contents, a file onto an existing
//! directory lands inside it, a trailing `/` makes the destination a
//! directory, an existing top-level directory keeps its mode and owner but
//! takes the source's times, nested existing directories take the source's
//! metadata, existing files and symlinks are replaced, a directory is never
//! replaced by a file. [`execute`] then writes the plan: directories first,
//! regular files in parallel with `copy_file_range`, hard links last,
//! directory times at the end, never an fsync (the store makes the layer
//! durable). The plan's entries are the copy's [`Manifest`], which
//! [`delta_copy`](super::delta_copy) compares to write only what changed.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::chmod::Chmod;
use super::owner::Owner;
use super::root::{RootDir, fchown, is_dir, split_parent};
use super::{Error, Result, archive};
use crate::contenthash::{Digest, Node, Selection, SourceTree, read_file_xattrs, read_xattrs};
use crate::context::PatternMatcher;

/// How to copy (BuildKit's `FileActionCopy` fields that concern writing).
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Absolute destination path inside the root; a trailing `/` means "into
    /// this directory". The caller joins a relative Dockerfile dest to
    /// WORKDIR first.
    pub dest: String,
    /// A directory source copies its contents (Dockerfile: always).
    pub dir_contents_only: bool,
    /// `--chown`, resolved with [`ChownSpec::resolve`](super::ChownSpec::resolve).
    pub owner: Option<Owner>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// Fixed times for everything written (seconds, nanoseconds), e.g. from
    /// `SOURCE_DATE_EPOCH`; `None` keeps the sources' times.
    pub timestamp: Option<(i64, i64)>,
    /// ADD: extract local tar archives (plain, gzip, bzip2, xz, zstd) found by
    /// content instead of copying them.
    pub unpack: bool,
    /// Leave the source digests of regular files out of the manifest, for
    /// [`DeferredDigests::fill`] later: the copy then neither hashes nor
    /// waits for hashes (the caller hashes them beside it). A delta copy
    /// with a previous manifest to compare against hashes regardless.
    pub defer_file_digests: bool,
}

/// The type of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (`link` holds the target).
    Symlink,
    /// A hard link to another entry of this copy (`link` holds its path).
    Hardlink,
    /// A character or block device or a FIFO (`rdev`, type in `mode`).
    Special,
    /// A tar archive extracted by ADD (its content is not itemised).
    Archive,
}

/// One path a copy wrote, with everything that decides its bytes on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path inside the root, resolved, without a leading `/`.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Permission and special bits (for `Special`, the type bits too).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time written (seconds, nanoseconds); `None`: left as
    /// created.
    pub mtime: Option<(i64, i64)>,
    /// Digest of the source entry (header and content for files, header for
    /// the rest); `None` for directories the copy made as parents.
    pub source: Option<Digest>,
    /// Symlink target or hard-link target path.
    pub link: Option<String>,
    /// Device number.
    pub rdev: u64,
}

/// What a copy wrote, in creation order (parents first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The entries.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// JSON bytes, for the store.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    /// Parses [`to_json`](Self::to_json) output.
    pub fn from_json(b: &[u8]) -> Result<Manifest> {
        serde_json::from_slice(b).map_err(|e| Error::Invalid(format!("bad copy manifest: {e}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create the entry (the path is free, or `replace` frees it).
    Create,
    /// An existing directory takes the new owner, mode, xattrs and times.
    Update,
    /// An existing top-level directory only takes the new times.
    TimesOnly,
}

/// One planned write.
#[derive(Debug, Clone)]
pub(crate) struct PlanEntry {
    pub(crate) m: ManifestEntry,
    pub(crate) action: Action,
    pub(crate) replace: bool,
    pub(crate) src: Option<PathBuf>,
    pub(crate) atime: Option<(i64, i64)>,
    /// A regular file whose source digest is deferred (`m.source` is
    /// `None`): its node.
    pub(crate) hash_later: Option<Arc<Node>>,
}

/// A planned copy.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub(crate) entries: Vec<PlanEntry>,
}

impl Plan {
    /// The manifest the copy will produce.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            entries: self.entries.iter().map(|e| e.m.clone()).collect(),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether the copy writes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The digests [`manifest`](Self::manifest) leaves out.
    pub fn deferred(&self) -> DeferredDigests {
        DeferredDigests(
            self.entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.hash_later.clone().map(|n| (i, n)))
                .collect(),
        )
    }
}

/// The regular files of a manifest whose source digests a copy with
/// [`CopyOptions::defer_file_digests`] left out: (entry index, source).
#[derive(Debug, Clone, Default)]
pub struct DeferredDigests(Vec<(usize, Arc<Node>)>);

impl DeferredDigests {
    /// Fills the digests into `m` (the manifest they were left out of),
    /// hashing only what the tree has not hashed by now.
    pub fn fill(self, tree: &SourceTree, m: &mut Manifest) -> Result<()> {
        let nodes: Vec<Arc<Node>> = self.0.iter().map(|(_, n)| n.clone()).collect();
        tree.prefetch(&nodes)?;
        for (i, n) in self.0 {
            let entry = m.entries.get_mut(i).ok_or_else(|| {
                Error::Invalid(format!("deferred digest for missing manifest entry {i}"))
            })?;
            entry.source = Some(tree.digest(&n)?);
        }
        Ok(())
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

struct Planner<'a> {
    root: &'a RootDir,
    tree: &'a SourceTree,
    opts: &'a CopyOptions,
    new_dirs: HashSet<String>,
    planned: HashMap<String, usize>,
    links: HashMap<(u64, u64), String>,
    out: Vec<PlanEntry>,
    superseded: HashSet<usize>,
}

#[derive(Clone, Copy)]
enum Existing {
    Missing,
    Dir,
    Other,
}

impl Planner<'_> {
    /// What is at `path` (no final symlink followed), counting planned writes.
    fn lstat(&self, path: &str) -> Result<(Existing, Option<rustix::fs::Stat>)> {
        if let Some(&i) = self.planned.get(path) {
            let k = if self.out[i].m.kind == Kind::Dir {
                Existing::Dir
            } else {
                Existing::Other
            };
            return Ok((k, None));
        }
        let (parent, _) = split_parent(path);
        if self.new_dirs.contains(parent) {
            return Ok((Existing::Missing, None));
        }
        Ok(match self.root.lstat(path)? {
            None => (Existing::Missing, None),
            Some(st) if is_dir(&st) => (Existing::Dir, Some(st)),
            Some(st) => (Existing::Other, Some(st)),
        })
    }

    fn push(&mut self, e: PlanEntry) {
        if e.action == Action::Create && e.m.kind == Kind::Dir {
            self.new_dirs.insert(e.m.path.clone());
        }
        self.planned.insert(e.m.path.clone(), self.out.len());
        self.out.push(e);
    }

    /// Plans `mkdir -p` of a (resolved) directory path.
    fn mkdir_all(&mut self, path: &str) -> Result<()> {
        let mut cur = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur = join(&cur, c);
            match self.lstat(&cur)?.0 {
                Existing::Dir => {}
                Existing::Other => {
                    // A symlink to a directory is fine: the path was resolved.
                    match self.root.resolve(&cur)? {
                        Some((_, st)) if is_dir(&st) => {}
                        _ => {
                            return Err(Error::NotADirectory {
                                path: self.root.display(&cur),
                            });
                        }
                    }
                }
                Existing::Missing => {
                    let o = self.opts.owner.unwrap_or(Owner { uid: 0, gid: 0 });
                    self.push(PlanEntry {
                        m: ManifestEntry {
                            path: cur.clone(),
                            kind: Kind::Dir,
                            mode: Chmod::parent_dir_mode(self.opts.chmod.as_ref()),
                            uid: o.uid,
                            gid: o.gid,
                            mtime: self.opts.timestamp,
                            source: None,
                            link: None,
                            rdev: 0,
                        },
                        action: Action::Create,
                        replace: false,
                        src: None,
                        atime: self.opts.timestamp,
                        hash_later: None,
                    });
                }
            }
        }
        Ok(())
    }

    fn entry_for(&mut self, node: &Arc<Node>, path: String) -> Result<PlanEntry> {
        let meta = node.meta();
        let (uid, gid) = match self.opts.owner {
            Some(o) => (o.uid, o.gid),
            None => self.tree.owner(node),
        };
        let mode = match (&self.opts.chmod, meta.is_symlink()) {
            (_, true) => 0o777,
            (Some(c), false) => c.apply(meta.mode),
            (None, false) => meta.mode & 0o7777,
        };
        let (mtime, atime) = match self.opts.timestamp {
            Some(t) => (Some(t), Some(t)),
            None => (
                Some((meta.mtime, meta.mtime_nsec)),
                Some((meta.atime, meta.atime_nsec)),
            ),
        };
        let mut m = ManifestEntry {
            path,
            kind: Kind::Dir,
            mode,
            uid,
            gid,
            mtime,
            source: None,
            link: None,
            rdev: 0,
        };
        let mut src = None;
        let mut hash_later = None;
        if meta.is_dir() {
            m.source = Some(self.tree.header_digest(node)?);
        } else if meta.is_file() {
            if self.opts.defer_file_digests {
                hash_later = Some(node.clone());
            } else {
                m.source = Some(self.tree.digest(node)?);
            }
            if meta.nlink > 1 {
                if let Some(first) = self.links.get(&(meta.dev, meta.ino)) {
                    m.kind = Kind::Hardlink;
                    m.link = Some(first.clone());
                } else {
                    self.links.insert((meta.dev, meta.ino), m.path.clone());
                }
            }
            if m.kind != Kind::Hardlink {
                m.kind = Kind::File;
                src = Some(self.tree.disk_path(node));
            }
        } else if meta.is_symlink() {
            m.kind = Kind::Symlink;
            m.link =
                Some(String::from_utf8_lossy(node.link_target().unwrap_or_default()).into_owned());
            m.source = Some(self.tree.header_digest(node)?);
        } else {
            m.kind = Kind::Special;
            m.mode = (meta.mode & 0o170000) | (mode & 0o7777);
            m.rdev = meta.rdev;
            m.source = Some(self.tree.header_digest(node)?);
        }
        if m.kind == Kind::Dir && src.is_none() {
            src = Some(self.tree.disk_path(node));
        }
        Ok(PlanEntry {
            m,
            action: Action::Create,
            replace: false,
            src,
            atime,
            hash_later,
        })
    }
}

/// Plans copying one source selection into `root` without writing anything.
/// `root` is the destination as it is before the copy (for a delta copy: the
/// base the previous copy was made on).
pub fn plan_copy(
    tree: &SourceTree,
    sel: &Selection,
    opts: &CopyOptions,
    root: &RootDir,
) -> Result<Plan> {
    let include = compile(&sel.include)?;
    let exclude = compile(&sel.exclude)?;
    let matches = tree.matches(sel)?;
    let mut p = Planner {
        root,
        tree,
        opts,
        new_dirs: HashSet::new(),
        planned: HashMap::new(),
        links: HashMap::new(),
        out: Vec::new(),
        superseded: HashSet::new(),
    };
    let dest = if opts.dest.starts_with('/') {
        opts.dest.clone()
    } else {
        format!("/{}", opts.dest)
    };
    let into_dir = dest.ends_with('/') || dest.ends_with("/.");
    let clean_dest = crate::context::gopath::clean(&dest);
    let ensure = if into_dir {
        clean_dest.clone()
    } else {
        crate::context::gopath::dir(&clean_dest)
    };
    let ensure = root.resolve_for_create(&ensure)?;
    p.mkdir_all(&ensure)?;
    let dst = root.resolve_for_create(&clean_dest)?;

    // Hash all selected files up front, in parallel.
    let mut selections = Vec::new();
    for m in &matches {
        let entries = tree.selected_entries(m, include.as_ref(), exclude.as_ref())?;
        let files: Vec<Arc<Node>> = entries
            .iter()
            .filter(|e| e.node.meta().is_file())
            .map(|e| e.node.clone())
            .collect();
        if !opts.defer_file_digests {
            tree.prefetch(&files)?;
        }
        selections.push(entries);
    }

    for (m, entries) in matches.iter().zip(selections) {
        let src_is_dir = m.node.meta().is_dir();
        if opts.unpack && m.node.meta().is_file() && archive::is_archive(&tree.disk_path(&m.node)) {
            p.mkdir_all(&dst)?;
            let o = opts.owner;
            p.push(PlanEntry {
                m: ManifestEntry {
                    path: dst.clone(),
                    kind: Kind::Archive,
                    mode: 0,
                    uid: o.map(|o| o.uid).unwrap_or(0),
                    gid: o.map(|o| o.gid).unwrap_or(0),
                    mtime: opts.timestamp,
                    source: Some(tree.digest(&m.node)?),
                    link: None,
                    rdev: 0,
                },
                action: Action::Create,
                replace: false,
                src: Some(tree.disk_path(&m.node)),
                atime: None,
                hash_later: None,
            });
            continue;
        }
        // fsutil's prepareTargetDir: stat (following symlinks) the destination.
        let dest_state = match p.planned.get(&dst) {
            Some(&i) => Some(p.out[i].m.kind == Kind::Dir),
            None if p.new_dirs.contains(split_parent(&dst).0) => None,
            None => root.resolve(&dst)?.map(|(_, st)| is_dir(&st)),
        };
        let mut d = dst.clone();
        if (!opts.dir_contents_only && src_is_dir && dest_state.is_some())
            || (!src_is_dir && dest_state == Some(true))
        {
            d = join(&d, crate::context::gopath::base(&m.named));
        }
        let target = if opts.dir_contents_only && src_is_dir && dest_state.is_none() {
            d.clone()
        } else {
            split_parent(&d).0.to_string()
        };
        p.mkdir_all(&target)?;

        for e in entries {
            let rel = String::from_utf8_lossy(&e.rel).into_owned();
            let path = join(&d, &rel);
            let (existing, st) = p.lstat(&path)?;
            let mut pe = p.entry_for(&e.node, path.clone())?;
            let is_dir_src = e.node.meta().is_dir();
            match (is_dir_src, existing) {
                (true, Existing::Missing) => {}
                (true, Existing::Other) => {
                    return Err(Error::CannotCopyToNonDir {
                        path: root.display(&path),
                    });
                }
                (true, Existing::Dir) => {
                    if rel.is_empty() {
                        pe.action = Action::TimesOnly;
                        match (st, p.planned.get(&path)) {
                            (_, Some(&i)) => {
                                let prev = p.out[i].m.clone();
                                pe.m.mode = prev.mode;
                                pe.m.uid = prev.uid;
                                pe.m.gid = prev.gid;
                            }
                            (Some(st), None) => {
                                pe.m.mode = st.st_mode & 0o7777;
                                pe.m.uid = st.st_uid;
                                pe.m.gid = st.st_gid;
                            }
                            (None, None) => {}
                        }
                    } else {
                        pe.action = Action::Update;
                    }
                }
                (false, Existing::Dir) => {
                    return Err(Error::CannotReplaceDir {
                        path: root.display(&path),
                    });
                }
                (false, Existing::Other) => pe.replace = true,
                (false, Existing::Missing) => {}
            }
            if let Some(&i) = p.planned.get(&path) {
                // A later source overwrites an earlier one at the same path.
                if pe.m.kind == Kind::Dir && pe.action != Action::Create {
                    // keep the directory's first creation; update its metadata
                    p.out[i].m.mtime = pe.m.mtime;
                    if pe.action == Action::Update {
                        p.out[i].m.mode = pe.m.mode;
                        p.out[i].m.uid = pe.m.uid;
                        p.out[i].m.gid = pe.m.gid;
                        p.out[i].m.source = pe.m.source.clone();
                    }
                    continue;
                }
                p.superseded.insert(i);
                pe.replace = false;
            }
            p.push(pe);
        }
    }
    let superseded = std::mem::take(&mut p.superseded);
    let out = p
        .out
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !superseded.contains(i))
        .map(|(_, e)| e)
        .collect();
    Ok(Plan { entries: out })
}

fn compile(patterns: &[String]) -> Result<Option<PatternMatcher>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        PatternMatcher::new(patterns).map_err(crate::contenthash::Error::from)?,
    ))
}

/// Plans and writes a copy; returns its manifest.
pub fn copy(
    tree: &SourceTree,
    sel: &Selection,
    opts: &CopyOptions,
    root: &RootDir,
) -> Result<Manifest> {
    let plan = plan_copy(tree, sel, opts, root)?;
    execute(&plan, root)?;
    Ok(plan.manifest())
}

fn ts(t: (i64, i64)) -> Timespec {
    Timespec {
        tv_sec: t.0,
        tv_nsec: t.1 as _,
    }
}

fn times(e: &PlanEntry) -> Option<Timestamps> {
    e.m.mtime.map(|m| Timestamps {
        last_access: ts(e.atime.unwrap_or(m)),
        last_modification: ts(m),
    })
}

fn io_err(root: &RootDir, path: &str, e: Errno) -> Error {
    Error::io(&root.display(path), e.into())
}

fn copy_xattrs(src: Option<&PathBuf>, fd: &OwnedFd) {
    let Some(src) = src else { return };
    let Ok(list) = read_xattrs(src) else { return };
    set_xattrs(&list, src, fd);
}

/// Copies the xattrs of `input` (open, at `src`) to `fd`.
fn copy_file_xattrs(input: &std::fs::File, src: &std::path::Path, fd: &OwnedFd) {
    let Ok(list) = read_file_xattrs(input, src) else {
        return;
    };
    set_xattrs(&list, src, fd);
}

fn set_xattrs(list: &[(Vec<u8>, Vec<u8>)], src: &std::path::Path, fd: &OwnedFd) {
    for (k, v) in list {
        if let Err(e) = rustix::fs::fsetxattr(fd, k.as_slice(), v, rustix::fs::XattrFlags::empty())
        {
            tracing::debug!(
                "xattr {} on copy of {}: {e}",
                String::from_utf8_lossy(k),
                src.display()
            );
        }
    }
}

/// Writes a plan into `root`.
pub fn execute(plan: &Plan, root: &RootDir) -> Result<()> {
    let entries = &plan.entries;
    // 1. Directories, in order (parents first).
    for e in entries.iter().filter(|e| e.m.kind == Kind::Dir) {
        write_dir(root, e)?;
    }
    // 2. Files, symlinks, devices, archives — grouped by parent, in parallel.
    let mut groups: Vec<Vec<&PlanEntry>> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !matches!(e.m.kind, Kind::Dir | Kind::Hardlink))
    {
        match groups.last_mut() {
            Some(g) if split_parent(&g[0].m.path).0 == split_parent(&e.m.path).0 => g.push(e),
            _ => groups.push(vec![e]),
        }
    }
    groups.par_iter().try_for_each(|g| -> Result<()> {
        let parent = split_parent(&g[0].m.path).0;
        let dir = root.open_dir(parent)?;
        for e in g {
            write_leaf(root, &dir, e)?;
        }
        Ok(())
    })?;
    // 3. Hard links.
    for e in entries.iter().filter(|e| e.m.kind == Kind::Hardlink) {
        let (parent, name) = split_parent(&e.m.path);
        let dir = root.open_dir(parent)?;
        let to = e.m.link.as_deref().unwrap_or_default();
        let (tparent, tname) = split_parent(to);
        let tdir = root.open_dir(tparent)?;
        if e.replace {
            let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
        }
        rustix::fs::linkat(&tdir, tname, &dir, name, AtFlags::empty())
            .map_err(|er| io_err(root, &e.m.path, er))?;
    }
    // 4. Directory times, children before parents.
    for e in entries.iter().rev().filter(|e| e.m.kind == Kind::Dir) {
        if let Some(t) = times(e) {
            let (parent, name) = split_parent(&e.m.path);
            let dir = root.open_dir(parent)?;
            let name = if name.is_empty() { "." } else { name };
            rustix::fs::utimensat(&dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|er| io_err(root, &e.m.path, er))?;
        }
    }
    Ok(())
}

fn write_dir(root: &RootDir, e: &PlanEntry) -> Result<()> {
    let (parent, name) = split_parent(&e.m.path);
    let dir = root.open_dir(parent)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = if name.is_empty() {
        root.open_dir("")?
    } else {
        if e.action == Action::Create {
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(er) => return Err(io_err(root, &e.m.path, er)),
            }
        }
        rustix::fs::openat(&dir, name, flags, Mode::empty()).map_err(|er| match er {
            Errno::NOTDIR | Errno::LOOP => Error::CannotCopyToNonDir {
                path: root.display(&e.m.path),
            },
            er => io_err(root, &e.m.path, er),
        })?
    };
    if e.action != Action::TimesOnly {
        fchown(&fd, e.m.uid, e.m.gid).map_err(|er| io_err(root, &e.m.path, er))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(e.m.mode & 0o7777))
            .map_err(|er| io_err(root, &e.m.path, er))?;
        if e.m.source.is_some() {
            copy_xattrs(e.src.as_ref(), &fd);
        }
    }
    Ok(())
}

fn write_leaf(root: &RootDir, dir: &OwnedFd, e: &PlanEntry) -> Result<()> {
    let (_, name) = split_parent(&e.m.path);
    if e.replace {
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(er) => return Err(io_err(root, &e.m.path, er)),
        }
    }
    match e.m.kind {
        Kind::File => {
            let src = e
                .src
                .as_ref()
                .ok_or_else(|| Error::Invalid("file entry without source".into()))?;
            let input = std::fs::File::open(src).map_err(|er| Error::io(src, er))?;
            let out = rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|er| io_err(root, &e.m.path, er))?;
            copy_data(&input, &out).map_err(|er| Error::io(&root.display(&e.m.path), er))?;
            fchown(&out, e.m.uid, e.m.gid).map_err(|er| io_err(root, &e.m.path, er))?;
            rustix::fs::fchmod(&out, Mode::from_raw_mode(e.m.mode & 0o7777))
                .map_err(|er| io_err(root, &e.m.path, er))?;
            copy_file_xattrs(&input, src, &out);
            if let Some(t) = times(e) {
                rustix::fs::futimens(&out, &t).map_err(|er| io_err(root, &e.m.path, er))?;
            }
        }
        Kind::Symlink => {
            let target = e.m.link.as_deref().unwrap_or_default();
            rustix::fs::symlinkat(target, dir, name).map_err(|er| io_err(root, &e.m.path, er))?;
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(e.m.uid)),
                Some(rustix::fs::Gid::from_raw(e.m.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|er| io_err(root, &e.m.path, er))?;
            if let Some(t) = times(e) {
                rustix::fs::utimensat(dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|er| io_err(root, &e.m.path, er))?;
            }
        }
        Kind::Special => {
            let ft = rustix::fs::FileType::from_raw_mode(e.m.mode);
            rustix::fs::mknodat(
                dir,
                name,
                ft,
                Mode::from_raw_mode(e.m.mode & 0o7777),
                e.m.rdev,
            )
            .map_err(|er| io_err(root, &e.m.path, er))?;
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(e.m.uid)),
                Some(rustix::fs::Gid::from_raw(e.m.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|er| io_err(root, &e.m.path, er))?;
            rustix::fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(e.m.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|er| io_err(root, &e.m.path, er))?;
            if let Some(t) = times(e) {
                rustix::fs::utimensat(dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|er| io_err(root, &e.m.path, er))?;
            }
        }
        Kind::Archive => {
            let src = e
                .src
                .as_ref()
                .ok_or_else(|| Error::Invalid("archive entry without source".into()))?;
            let owner = (e.m.uid, e.m.gid);
            archive::extract(
                src,
                root,
                &e.m.path,
                (owner != (0, 0)).then_some(owner),
                e.m.mtime,
            )?;
        }
        Kind::Dir | Kind::Hardlink => {}
    }
    Ok(())
}

/// Copies a whole file with `copy_file_range` (reflinks or in-kernel copy),
/// falling back to read/write where the kernel refuses.
fn copy_data(input: &std::fs::File, out: &OwnedFd) -> std::io::Result<()> {
    let mut first = true;
    loop {
        match rustix::fs::copy_file_range(input, None, out, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => first = false,
            Err(
                Errno::XDEV
                | Errno::NOSYS
                | Errno::INVAL
                | Errno::OPNOTSUPP
                | Errno::PERM
                | Errno::IO,
            ) if first => {
                let mut w = std::fs::File::from(out.try_clone()?);
                let mut r = input;
                std::io::copy(&mut r, &mut w)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}
