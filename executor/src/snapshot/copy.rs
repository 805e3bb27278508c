//! The copy snapshotter, for where overlayfs is missing or not permitted.
//!
//! [`materialize`] copies the merged view of the parent chain into a plain
//! directory (contents, modes, owners, xattrs, nanosecond mtimes, hard
//! links, device nodes); the sandbox runs on that copy. [`commit`] then
//! walks the copy against the chain and turns what changed into a layer
//! directory in the same overlay upperdir format the overlay snapshotter
//! produces (0:0 whiteouts for deletions), by *renaming* changed entries
//! out of the copy — no data is copied twice — so one tar writer
//! ([`crate::diff`]) serves both snapshotters.
//!
//! To avoid reading every unchanged file (tar-unpacked lowers have
//! whole-second mtimes, which would force a content comparison), the copy
//! records a ctime mark when it is complete: a file whose ctime is older
//! than the mark has not been touched since, because ctime cannot be set
//! from user space. Only touched files are compared.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode};

use crate::compare::same_entry;
use crate::error::{IoContext, Result};
use crate::fsutil::{apply_metadata, make_whiteout, sorted_entries, xattrs};
use crate::layers::{DirRange, LowerDir, LowerView};

/// A point in ctime: (seconds, nanoseconds).
pub(crate) type Mark = (i64, i64);

/// Copies the merged view of `lowers` into `dest` (created); returns the
/// ctime mark taken after the copy was complete, using `marker` (a path in
/// the same filesystem that does not exist yet) to read the kernel's clock.
pub(crate) fn materialize(lowers: &[PathBuf], dest: &Path, marker: &Path) -> Result<Mark> {
    let view = LowerView::new(lowers);
    std::fs::create_dir(dest).ctx("create", dest)?;
    let mut links = HashMap::new();
    copy_dir(&view, Path::new(""), view.root(), dest, &mut links)?;
    if let Some(root) = view.lookup_root()? {
        finish_dir(&root.0, &root.1, dest)?;
    }
    std::fs::write(marker, b"").ctx("create", marker)?;
    let m = std::fs::symlink_metadata(marker).ctx("stat", marker)?;
    Ok((m.ctime(), m.ctime_nsec()))
}

fn copy_dir(
    view: &LowerView<'_>,
    rel: &Path,
    range: DirRange,
    dest_root: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    for e in view.read_dir(rel, range)? {
        let dst = dest_root.join(rel).join(&e.name);
        if e.meta.is_dir() {
            std::fs::create_dir(&dst).ctx("create", &dst)?;
            copy_dir(view, &rel.join(&e.name), e.range, dest_root, links)?;
            finish_dir(&e.path, &e.meta, &dst)?;
        } else {
            copy_entry(&e.path, &e.meta, &dst, links)?;
        }
    }
    Ok(())
}

/// Metadata of a directory goes on after its contents, so that the copy
/// keeps the original mtime.
fn finish_dir(src: &Path, meta: &Metadata, dst: &Path) -> Result<()> {
    apply_metadata(dst, meta, &xattrs(src)?)
}

/// Copies one non-directory entry, keeping hard links that share an inode
/// in the source as hard links in the copy.
fn copy_entry(
    src: &Path,
    meta: &Metadata,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_socket() {
        return Ok(());
    }
    if !ft.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = links.get(&key) {
            return std::fs::hard_link(first, dst).ctx("hard link", dst);
        }
        links.insert(key, dst.to_path_buf());
    }
    if ft.is_file() {
        std::fs::copy(src, dst).ctx("copy to", dst)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).ctx("read link", src)?;
        std::os::unix::fs::symlink(&target, dst).ctx("create symlink", dst)?;
    } else {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::Fifo
        };
        rustix::fs::mknodat(CWD, dst, kind, Mode::from_raw_mode(0o600), meta.rdev())
            .ctx("create device node", dst)?;
    }
    apply_metadata(dst, meta, &xattrs(src)?)
}

/// Moves what changed in `rootfs` (relative to `lowers`) into a new layer
/// directory `upper` in overlay upperdir format. `mark` is what
/// [`materialize`] returned. Consumes `rootfs` partially; the caller
/// removes what is left.
pub(crate) fn commit(lowers: &[PathBuf], rootfs: &Path, upper: &Path, mark: Mark) -> Result<()> {
    let view = LowerView::new(lowers);
    let root_meta = std::fs::symlink_metadata(rootfs).ctx("stat", rootfs)?;
    std::fs::create_dir(upper).ctx("create", upper)?;
    let mut c = Committer {
        rootfs,
        upper,
        mark,
        stack: vec![(
            PathBuf::new(),
            root_meta.clone(),
            rootfs.to_path_buf(),
            true,
        )],
        created: Vec::new(),
    };
    let lower = view.open_dir(Path::new(""), view.root())?;
    c.walk(&view, Path::new(""), &lower)?;
    // Directory metadata last: moving entries in changed their mtimes.
    for (path, meta, src) in c.created.iter().rev() {
        apply_metadata(path, meta, &xattrs(src)?)?;
    }
    apply_metadata(upper, &root_meta, &xattrs(rootfs)?)?;
    Ok(())
}

struct Committer<'a> {
    rootfs: &'a Path,
    upper: &'a Path,
    mark: Mark,
    /// The directories on the current walk path: (rel, metadata taken
    /// before anything moved out of it, path in rootfs, exists in upper).
    stack: Vec<(PathBuf, Metadata, PathBuf, bool)>,
    /// Directories created in upper: (path, metadata to give it, source).
    created: Vec<(PathBuf, Metadata, PathBuf)>,
}

impl Committer<'_> {
    /// Creates the directories of the current walk path in upper.
    fn ensure_parents(&mut self) -> Result<()> {
        for (rel, meta, src, exists) in self.stack.iter_mut() {
            if !*exists {
                let p = self.upper.join(&*rel);
                std::fs::create_dir(&p).ctx("create", &p)?;
                self.created.push((p, meta.clone(), src.clone()));
                *exists = true;
            }
        }
        Ok(())
    }

    fn touched(&self, meta: &Metadata) -> bool {
        (meta.ctime(), meta.ctime_nsec()) >= self.mark
    }

    fn walk(&mut self, view: &LowerView<'_>, rel: &Path, lower: &LowerDir) -> Result<()> {
        let dir = self.rootfs.join(rel);
        let news = sorted_entries(&dir)?;
        let olds = lower.entries()?;
        let mut oi = olds.iter().peekable();
        let mut ni = news.iter().peekable();
        loop {
            use std::cmp::Ordering::*;
            use std::os::unix::ffi::OsStrExt;
            let ord = match (oi.peek(), ni.peek()) {
                (None, None) => break,
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (Some(o), Some(n)) => o.name.as_bytes().cmp(n.as_bytes()),
            };
            match ord {
                Less => {
                    let o = oi.next().expect("peeked");
                    self.ensure_parents()?;
                    make_whiteout(&self.upper.join(rel).join(&o.name))?;
                }
                Greater => {
                    let n = ni.next().expect("peeked");
                    self.ensure_parents()?;
                    self.take(&rel.join(n))?;
                }
                Equal => {
                    let o = oi.next().expect("peeked");
                    let n = ni.next().expect("peeked");
                    let child = rel.join(n);
                    let path = self.rootfs.join(&child);
                    let meta = std::fs::symlink_metadata(&path).ctx("stat", &path)?;
                    if meta.is_dir() && o.meta.is_dir() {
                        let changed =
                            self.touched(&meta) && !same_entry(&o.path, &o.meta, &path, &meta)?;
                        self.stack.push((child.clone(), meta, path, false));
                        if changed {
                            self.ensure_parents()?;
                        }
                        let sub = view.open_dir(&child, o.range)?;
                        self.walk(view, &child, &sub)?;
                        self.stack.pop();
                    } else if self.touched(&meta) && !same_entry(&o.path, &o.meta, &path, &meta)? {
                        self.ensure_parents()?;
                        self.take(&child)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves a new or changed entry (a whole subtree for a directory) into
    /// upper.
    fn take(&mut self, rel: &Path) -> Result<()> {
        let from = self.rootfs.join(rel);
        let to = self.upper.join(rel);
        std::fs::rename(&from, &to).ctx("move into the layer", &to)
    }
}

impl LowerView<'_> {
    /// The root directory of the merged view as (path in its topmost
    /// layer, metadata), if there is any layer.
    pub(crate) fn lookup_root(&self) -> Result<Option<(PathBuf, Metadata)>> {
        let Some(top) = self.top() else {
            return Ok(None);
        };
        let meta = std::fs::symlink_metadata(top).ctx("stat", top)?;
        Ok(Some((top.to_path_buf(), meta)))
    }
}
