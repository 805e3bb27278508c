//! The build context as the solver sees it: read in place through one
//! [`SourceTree`] per build (filtered by `.dockerignore`, ownership 0:0,
//! file digests remembered in the store's stat cache), opened by the
//! `Local` vertex and shared by every COPY and bind mount that reads it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::error::{Error, Result};
use super::record::SourceDigest;
use super::statcache::StoreStatCache;
use crate::contenthash::{Selection, SourceOptions, SourceTree};
use crate::context::ContextFilter;
use crate::llb::LocalSource;

/// Per-file digests are recorded for sources with at most this many files.
const MAX_RECORDED_FILES: usize = 256;

pub(crate) struct Context {
    dir: Option<PathBuf>,
    stat_cache: Arc<StoreStatCache>,
    tree: OnceLock<Arc<SourceTree>>,
    empty: OnceLock<tempfile::TempDir>,
}

impl Context {
    pub(crate) fn new(dir: Option<PathBuf>, stat_cache: Arc<StoreStatCache>) -> Context {
        Context {
            dir,
            stat_cache,
            tree: OnceLock::new(),
            empty: OnceLock::new(),
        }
    }

    /// Starts saving the file digests hashed so far to the stat cache, in
    /// the background: call it once the cache lookups that depend on them
    /// are done (a write transaction would hold them up).
    pub(crate) fn save_stat_cache(&self) {
        self.stat_cache.save_in_background();
    }

    /// Opens the context for a `Local` vertex.
    pub(crate) fn open(&self, l: &LocalSource) -> Result<()> {
        if l.name != "context" {
            return Err(Error::Unsupported(format!(
                "named build context {:?}",
                l.name
            )));
        }
        if self.tree.get().is_some() {
            return Ok(());
        }
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let t = match self.empty.get() {
                    Some(t) => t,
                    None => {
                        let t =
                            tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                        self.empty.get_or_init(|| t)
                    }
                };
                t.path().to_path_buf()
            }
        };
        let filter = ContextFilter::new(&l.exclude_patterns)?;
        let tree = SourceTree::open(
            &dir,
            SourceOptions::context(filter, self.stat_cache.clone()),
        )?;
        let _ = self.tree.set(Arc::new(tree));
        Ok(())
    }

    /// The context's source tree (after [`Context::open`]).
    pub(crate) fn tree(&self) -> Result<Arc<SourceTree>> {
        self.tree
            .get()
            .cloned()
            .ok_or_else(|| Error::Invalid("the build context was not loaded".into()))
    }

    /// The directory the context is read from.
    pub(crate) fn dir(&self) -> Result<PathBuf> {
        Ok(self.tree()?.root_path().to_path_buf())
    }

    /// Whether `.dockerignore` hides anything.
    pub(crate) fn is_filtered(&self) -> Result<bool> {
        Ok(!self.tree()?.filter_is_empty())
    }

    /// The digest of one selection, for a cache key, with per-file detail
    /// for small sources.
    pub(crate) fn source_digest(&self, what: String, sel: &Selection) -> Result<SourceDigest> {
        let tree = self.tree()?;
        let digest = tree.selection_digest(sel)?;
        let files = small_listing(&tree, sel).unwrap_or_default();
        Ok(SourceDigest {
            what,
            digest: digest.as_str().to_string(),
            files,
        })
    }
}

/// (path, digest) of every file of a small selection, or `None` when it
/// is large or uses patterns.
fn small_listing(tree: &SourceTree, sel: &Selection) -> Option<Vec<(String, String)>> {
    if !sel.include.is_empty() || !sel.exclude.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let mut stack: Vec<(String, Arc<crate::contenthash::Node>)> = tree
        .matches(sel)
        .ok()?
        .into_iter()
        .map(|m| (m.named, m.node))
        .collect();
    while let Some((path, node)) = stack.pop() {
        if out.len() > MAX_RECORDED_FILES {
            return None;
        }
        if node.meta().is_dir() {
            for c in tree.children(&node).ok()?.iter() {
                let p = format!("{path}/{}", String::from_utf8_lossy(c.name()));
                stack.push((p, c.clone()));
            }
        } else {
            let d = tree.digest(&node).ok()?;
            out.push((
                path.trim_start_matches('/').to_string(),
                d.as_str().to_string(),
            ));
        }
    }
    out.sort();
    Some(out)
}
