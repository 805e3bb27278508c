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
//! [`write_stack_layer`] writes the same tar for the *merged view* of a
//! stack of layer directories — what an overlay mount of them shows, with
//! no whiteouts or opaque markers of its own — without mounting anything:
//! it merges the directories in user space (see `crate::layers`) and reads
//! each file from the layer it comes from. A delta copy's image layer is
//! such a stack (a thin layer of changes over the previous copy).
//!
//! File contents are streamed; memory use does not depend on file sizes.

mod tarwriter;

use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::compare::same_entry;
use crate::error::{Error, Result};
use crate::fsutil::{is_opaque, is_whiteout, lstat_opt, sorted_entries_with_meta};
use crate::layers::{DirRange, LowerDir, LowerView};
use tarwriter::TarWriter;

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
    require_dir(layer)?;
    walk_layer(Upper::Dir(layer), lowers, out, opts)
}

/// Writes the merged view of `stack` (layer directories in upperdir
/// format, topmost first) as an OCI layer tar to `out`, comparing against
/// `lowers` — the same bytes [`write_layer`] gives for an overlay mount of
/// `stack`, without the mount. Entries the stack's whiteouts hide are
/// left out (not deleted from `lowers`: the view has no whiteouts).
pub fn write_stack_layer<W: Write>(
    stack: &[PathBuf],
    lowers: &[PathBuf],
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
    if stack.is_empty() {
        return Err(Error::Invalid(
            "a layer stack needs at least one layer".into(),
        ));
    }
    for dir in stack {
        require_dir(dir)?;
    }
    walk_layer(Upper::Stack(LowerView::new(stack)), lowers, out, opts)
}

fn require_dir(layer: &Path) -> Result<()> {
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
    Ok(())
}

fn walk_layer<W: Write>(
    upper: Upper<'_>,
    lowers: &[PathBuf],
    out: W,
    opts: &DiffOptions,
) -> Result<(W, DiffSummary)> {
    let view = LowerView::new(lowers);
    let mut w = TarWriter::new(out, opts.clamp_mtime);
    let mut walker = Walker {
        upper,
        view,
        pending: Vec::new(),
    };
    let lower = view.open_dir(Path::new(""), view.root())?;
    let root = match &walker.upper {
        Upper::Dir(_) => None,
        Upper::Stack(v) => Some(v.root()),
    };
    walker.walk(&mut w, Path::new(""), root, &lower)?;
    w.finish()
}

/// What is being written as a layer.
enum Upper<'a> {
    /// One layer directory, whiteouts and opaque markers included.
    Dir(&'a Path),
    /// The merged view of a stack of layer directories.
    Stack(LowerView<'a>),
}

/// One entry of a directory being written.
struct UpperEntry {
    name: std::ffi::OsString,
    /// Where its metadata and contents are read.
    full: PathBuf,
    meta: Metadata,
    /// For [`Upper::Stack`] directories: the layers that make it up.
    range: Option<DirRange>,
}

impl Upper<'_> {
    /// The entries of directory `rel` (`range`: its layers, for a stack),
    /// sorted by name, and for [`Upper::Dir`] the directory, open: its
    /// files are opened relative to it.
    fn entries(
        &self,
        rel: &Path,
        range: Option<DirRange>,
    ) -> Result<(Option<std::fs::File>, Vec<UpperEntry>)> {
        match (self, range) {
            (Upper::Dir(layer), _) => {
                let dir = layer.join(rel);
                let (open, entries) = sorted_entries_with_meta(&dir)?;
                let entries = entries
                    .into_iter()
                    .map(|(name, meta)| UpperEntry {
                        full: dir.join(&name),
                        name,
                        meta,
                        range: None,
                    })
                    .collect();
                Ok((Some(open), entries))
            }
            (Upper::Stack(view), Some(range)) => Ok((
                None,
                view.read_dir(rel, range)?
                    .into_iter()
                    .map(|e| UpperEntry {
                        name: e.name,
                        full: e.path,
                        meta: e.meta,
                        range: Some(e.range),
                    })
                    .collect(),
            )),
            (Upper::Stack(_), None) => Err(Error::Invalid(format!(
                "no layers for directory {} of a stack",
                rel.display()
            ))),
        }
    }

    /// Is this directory marked opaque? Never in a merged view (overlayfs
    /// hides its own xattrs there).
    fn is_opaque(&self, full: &Path) -> Result<bool> {
        match self {
            Upper::Dir(_) => is_opaque(full),
            Upper::Stack(_) => Ok(false),
        }
    }
}

struct Walker<'a> {
    upper: Upper<'a>,
    view: LowerView<'a>,
    /// Directories not yet written because they did not change; written
    /// as soon as something inside them is: (path in the tar, where to
    /// read it, its metadata).
    pending: Vec<(PathBuf, PathBuf, Metadata)>,
}

impl Walker<'_> {
    fn flush<W: Write>(&mut self, w: &mut TarWriter<W>) -> Result<()> {
        for (rel, full, meta) in std::mem::take(&mut self.pending) {
            w.entry(&rel, &full, &meta, None)?;
        }
        Ok(())
    }

    fn walk<W: Write>(
        &mut self,
        w: &mut TarWriter<W>,
        rel_dir: &Path,
        range: Option<DirRange>,
        lower: &LowerDir,
    ) -> Result<()> {
        let (dir, entries) = self.upper.entries(rel_dir, range)?;
        for e in entries {
            let UpperEntry {
                name,
                full,
                meta,
                range,
            } = e;
            let rel = rel_dir.join(&name);
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
                w.entry(&rel, &full, &meta, dir.as_ref())?;
                continue;
            }
            let opaque = old.is_some() && self.upper.is_opaque(&full)?;
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
                self.pending.push((rel.clone(), full, meta));
                self.walk(w, &rel, range, &child_lower)?;
                self.pending.truncate(mark);
            } else {
                self.flush(w)?;
                w.entry(&rel, &full, &meta, dir.as_ref())?;
                if opaque {
                    w.opaque_marker(&rel)?;
                }
                self.walk(w, &rel, range, &child_lower)?;
            }
        }
        Ok(())
    }
}
