//! The merged view of a chain of layer directories, computed in user space.
//!
//! Layer directories are in overlayfs upperdir format (a 0:0 character
//! device hides a path of the layers below; a directory with
//! `trusted.overlay.opaque=y` hides everything below it). This module answers
//! "what does the chain look like at this path" without mounting anything,
//! for the copy snapshotter (which materialises the view) and for both
//! differs (which compare a result against it). It applies the same rules
//! as overlayfs: the topmost layer that has a path wins; a whiteout hides
//! it; a directory is merged with the directories of the layers below until
//! an opaque directory, or a non-directory, stops the merge.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsutil::{is_opaque, is_whiteout, lstat_opt};

/// A chain of layer directories, topmost first (overlay `lowerdir` order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LowerView<'a> {
    layers: &'a [PathBuf],
}

/// A directory of the merged view: where it lives and which layers may
/// contribute entries to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirRange {
    /// The topmost layer that has this directory.
    pub(crate) start: usize,
    /// One past the last layer that may contribute (exclusive).
    pub(crate) end: usize,
}

/// One visible entry of the merged view.
#[derive(Debug)]
pub(crate) struct MergedEntry {
    /// File name.
    pub(crate) name: OsString,
    /// Full path of the entry in the layer it comes from.
    pub(crate) path: PathBuf,
    /// Its metadata (lstat).
    pub(crate) meta: Metadata,
    /// For directories: the layers that contribute to its contents.
    pub(crate) range: DirRange,
}

impl<'a> LowerView<'a> {
    /// A view of `layers` (topmost first). An empty chain is an empty root.
    pub(crate) fn new(layers: &'a [PathBuf]) -> Self {
        LowerView { layers }
    }

    /// The topmost layer directory, if any.
    pub(crate) fn top(&self) -> Option<&'a Path> {
        self.layers.first().map(PathBuf::as_path)
    }

    /// The root directory's range: every layer.
    pub(crate) fn root(&self) -> DirRange {
        DirRange {
            start: 0,
            end: self.layers.len(),
        }
    }

    /// Opens directory `rel` of the merged view, whose range is `range`:
    /// finds the layers in which it is a directory and where the merge
    /// stops (which bounds the ranges of its children).
    pub(crate) fn open_dir(&self, rel: &Path, range: DirRange) -> Result<LowerDir> {
        let mut present = Vec::new();
        let mut stop = range.end;
        for i in range.start..range.end {
            let p = self.layers[i].join(rel);
            match lstat_opt(&p)? {
                None => continue,
                Some(m) if !m.is_dir() => {
                    stop = i;
                    break;
                }
                Some(_) => {
                    let opaque = is_opaque(&p)?;
                    present.push((i, p));
                    if opaque {
                        stop = i + 1;
                        break;
                    }
                }
            }
        }
        Ok(LowerDir {
            layers: present,
            stop,
        })
    }

    /// The visible entries of directory `rel` (whose range is `range`),
    /// sorted by name.
    pub(crate) fn read_dir(&self, rel: &Path, range: DirRange) -> Result<Vec<MergedEntry>> {
        self.open_dir(rel, range)?.entries()
    }

    /// Looks up a relative path from the root.
    #[cfg(test)]
    pub(crate) fn lookup(&self, rel: &Path) -> Result<Option<MergedEntry>> {
        let mut dir = PathBuf::new();
        let mut range = self.root();
        let mut found: Option<MergedEntry> = None;
        for comp in rel.components() {
            let std::path::Component::Normal(name) = comp else {
                continue;
            };
            if let Some(prev) = &found
                && !prev.meta.is_dir()
            {
                return Ok(None);
            }
            match self.open_dir(&dir, range)?.child(name)? {
                None => return Ok(None),
                Some(e) => {
                    range = e.range;
                    dir.push(name);
                    found = Some(e);
                }
            }
        }
        Ok(found)
    }
}

/// A directory of the merged view, opened: the layer directories that
/// contribute to it, topmost first.
#[derive(Debug)]
pub(crate) struct LowerDir {
    /// (layer index, path of this directory in that layer).
    layers: Vec<(usize, PathBuf)>,
    /// Exclusive end of the children's ranges.
    stop: usize,
}

impl LowerDir {
    /// An opened directory with no lower contents (for paths that exist
    /// only in the layer being diffed).
    pub(crate) fn empty() -> Self {
        LowerDir {
            layers: Vec::new(),
            stop: 0,
        }
    }

    /// One child by name: `None` when absent or hidden by a whiteout.
    pub(crate) fn child(&self, name: &OsStr) -> Result<Option<MergedEntry>> {
        for (i, dir) in &self.layers {
            let path = dir.join(name);
            if let Some(meta) = lstat_opt(&path)? {
                if is_whiteout(&meta) {
                    return Ok(None);
                }
                return Ok(Some(MergedEntry {
                    name: name.to_os_string(),
                    path,
                    meta,
                    range: DirRange {
                        start: *i,
                        end: self.stop,
                    },
                }));
            }
        }
        Ok(None)
    }

    /// All visible children, sorted by name.
    pub(crate) fn entries(&self) -> Result<Vec<MergedEntry>> {
        // name → Some(entry) for a visible entry, None for a whiteout.
        let mut seen: BTreeMap<Vec<u8>, Option<MergedEntry>> = BTreeMap::new();
        for (i, dir) in &self.layers {
            for name in crate::fsutil::sorted_entries(dir)? {
                let key = name.as_bytes().to_vec();
                if seen.contains_key(&key) {
                    continue;
                }
                let path = dir.join(&name);
                let Some(meta) = lstat_opt(&path)? else {
                    continue;
                };
                let value = if is_whiteout(&meta) {
                    None
                } else {
                    Some(MergedEntry {
                        name,
                        path,
                        meta,
                        range: DirRange {
                            start: *i,
                            end: self.stop,
                        },
                    })
                };
                seen.insert(key, value);
            }
        }
        Ok(seen.into_values().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::{make_whiteout, set_opaque};
    use std::fs;

    fn names(v: &[MergedEntry]) -> Vec<String> {
        v.iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn merge_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1, l2) = (t.path().join("0"), t.path().join("1"), t.path().join("2"));
        // Bottom layer l2: a/{x,y}, b/z, f.
        fs::create_dir_all(l2.join("a")).unwrap();
        fs::write(l2.join("a/x"), "x").unwrap();
        fs::write(l2.join("a/y"), "y").unwrap();
        fs::create_dir_all(l2.join("b")).unwrap();
        fs::write(l2.join("b/z"), "z").unwrap();
        fs::write(l2.join("f"), "f").unwrap();
        // Middle l1: deletes a/x, makes b opaque with b/new.
        fs::create_dir_all(l1.join("a")).unwrap();
        make_whiteout(&l1.join("a/x")).unwrap();
        fs::create_dir_all(l1.join("b")).unwrap();
        set_opaque(&l1.join("b")).unwrap();
        fs::write(l1.join("b/new"), "n").unwrap();
        // Top l0: replaces f by a directory, adds a/w.
        fs::create_dir_all(l0.join("f")).unwrap();
        fs::create_dir_all(l0.join("a")).unwrap();
        fs::write(l0.join("a/w"), "w").unwrap();
        let layers = vec![l0, l1, l2];
        let v = LowerView::new(&layers);
        let root = v.read_dir(Path::new(""), v.root()).unwrap();
        assert_eq!(names(&root), ["a", "b", "f"]);
        let a = root.iter().find(|e| e.name == "a").unwrap();
        assert_eq!(
            names(&v.read_dir(Path::new("a"), a.range).unwrap()),
            ["w", "y"]
        );
        let b = root.iter().find(|e| e.name == "b").unwrap();
        assert_eq!(
            names(&v.read_dir(Path::new("b"), b.range).unwrap()),
            ["new"]
        );
        let f = root.iter().find(|e| e.name == "f").unwrap();
        assert!(f.meta.is_dir());
        assert!(v.read_dir(Path::new("f"), f.range).unwrap().is_empty());
        assert!(v.lookup(Path::new("a/x")).unwrap().is_none());
        assert!(v.lookup(Path::new("b/z")).unwrap().is_none());
        assert!(v.lookup(Path::new("a/y")).unwrap().is_some());
        assert!(v.lookup(Path::new("f/anything")).unwrap().is_none());
    }

    #[test]
    fn file_in_upper_layer_stops_directory_below() {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1, l2) = (t.path().join("0"), t.path().join("1"), t.path().join("2"));
        fs::create_dir_all(l2.join("d")).unwrap();
        fs::write(l2.join("d/old"), "").unwrap();
        fs::create_dir_all(&l1).unwrap();
        fs::write(l1.join("d"), "now a file").unwrap();
        fs::create_dir_all(l0.join("d")).unwrap();
        fs::write(l0.join("d/new"), "").unwrap();
        let layers = vec![l0, l1, l2];
        let v = LowerView::new(&layers);
        let d = v.lookup(Path::new("d")).unwrap().unwrap();
        assert_eq!(
            names(&v.read_dir(Path::new("d"), d.range).unwrap()),
            ["new"]
        );
    }
}
