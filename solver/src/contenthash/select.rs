//! What a COPY/ADD selects from a source, and the digest of that selection.
//!
//! One enumeration serves both the cache key and the copy engine, so the key
//! covers exactly what is copied: the matches of the source path (Go
//! `filepath.Match` per element when it has wildcards, symlinks followed),
//! then, inside each match, the entries that the include/exclude patterns
//! let through (fsutil's copy rules: an excluded directory is entered only if
//! an exception or an include pattern could pick something inside it, and a
//! directory that is not itself selected appears only as the parent of
//! something that is).

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::tree::{Node, SourceTree};
use super::{Digest, Error, Result};
use crate::context::{MatchInfo, PatternMatcher, contains_wildcards, go_match, gopath};

/// The source side of one COPY/ADD source (BuildKit's `FileActionCopy`
/// fields that concern reading).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The source path as written; a leading `/` and `..` stay inside the
    /// root, a trailing `/` is ignored.
    pub path: String,
    /// Follow symlinks in the path, including the final element (Dockerfile
    /// COPY/ADD: always).
    pub follow_links: bool,
    /// Treat `*`, `?`, `[` as wildcards (Dockerfile COPY/ADD: always).
    pub allow_wildcard: bool,
    /// Include patterns, relative to each match (used by `--parents`).
    pub include: Vec<String>,
    /// Exclude patterns, relative to each match (`--exclude`).
    pub exclude: Vec<String>,
    /// Paths that must be selected, else "not found" (`--parents` without
    /// wildcards).
    pub required: Vec<String>,
}

impl Selection {
    /// The selection BuildKit's Dockerfile frontend builds for a local COPY/ADD
    /// source: wildcards on, symlinks followed, `--exclude` patterns, and for
    /// `--parents` the `/./` pivot (`a/./b/c` copies `b/c` from `a`).
    pub fn dockerfile(src: &str, parents: bool, exclude: &[String]) -> Selection {
        let mut sel = Selection {
            path: src.to_string(),
            follow_links: true,
            allow_wildcard: true,
            exclude: exclude.to_vec(),
            ..Selection::default()
        };
        if parents {
            let (base, pattern) = match src.split_once("/./") {
                Some((b, p)) => (b.to_string(), p.to_string()),
                None => ("/".to_string(), src.to_string()),
            };
            let pattern = gopath::clean(&format!("/{pattern}"));
            let pattern = pattern.trim_start_matches('/').to_string();
            if !contains_wildcards(&base) && !contains_wildcards(&pattern) {
                sel.required = vec![gopath::clean(&format!("/{base}/{pattern}"))];
            }
            sel.include = vec![pattern];
            sel.path = base;
        }
        sel
    }

    /// The path cleaned and made relative to the root (`""` is the root).
    pub fn clean_path(&self) -> String {
        gopath::clean(&format!("/{}", self.path))
            .trim_start_matches('/')
            .to_string()
    }
}

/// One match of a source path.
#[derive(Debug, Clone)]
pub struct SourceMatch {
    /// The path as named (before following a final symlink), relative to the
    /// root, e.g. `src/main.rs`; BuildKit uses its base name for the
    /// destination.
    pub named: String,
    /// The entry it resolves to.
    pub node: Arc<Node>,
}

/// One entry selected inside a match.
#[derive(Debug, Clone)]
pub struct SelectedEntry {
    /// Path relative to the match (empty for the match itself).
    pub rel: Vec<u8>,
    /// The source entry.
    pub node: Arc<Node>,
}

impl SourceTree {
    /// The matches of a selection's path, in walk order. A plain path that
    /// does not exist is an error naming it; a wildcard may match nothing.
    pub fn matches(&self, sel: &Selection) -> Result<Vec<SourceMatch>> {
        let path = sel.clean_path();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let first_wild = if sel.allow_wildcard {
            comps.iter().position(|c| contains_wildcards(c))
        } else {
            None
        };
        let Some(fw) = first_wild else {
            let node = self
                .resolve(path.as_bytes(), sel.follow_links)?
                .ok_or_else(|| Error::not_found(&path))?;
            return Ok(vec![SourceMatch { named: path, node }]);
        };
        let d1 = comps[..fw].join("/");
        let pattern: Vec<&str> = comps[fw..].to_vec();
        for p in &pattern {
            go_match(p.as_bytes(), b"").map_err(|_| Error::BadWildcard {
                pattern: sel.path.clone(),
            })?;
        }
        let base = self
            .resolve(d1.as_bytes(), true)?
            .ok_or_else(|| Error::not_found(&d1))?;
        let mut out = Vec::new();
        self.match_level(&base, &d1, &pattern, sel.follow_links, &mut out)?;
        Ok(out)
    }

    fn match_level(
        &self,
        dir: &Arc<Node>,
        named: &str,
        pattern: &[&str],
        follow: bool,
        out: &mut Vec<SourceMatch>,
    ) -> Result<()> {
        if !dir.meta().is_dir() {
            return Ok(());
        }
        for child in self.children(dir)?.iter() {
            let Ok(true) = go_match(pattern[0].as_bytes(), child.name()) else {
                continue;
            };
            let name = String::from_utf8_lossy(child.name());
            let child_named = if named.is_empty() {
                name.into_owned()
            } else {
                format!("{named}/{name}")
            };
            if pattern.len() == 1 {
                let node = if follow && child.meta().is_symlink() {
                    match self.resolve(child_named.as_bytes(), true)? {
                        Some(n) => n,
                        None => return Err(Error::not_found(&child_named)),
                    }
                } else {
                    child.clone()
                };
                out.push(SourceMatch {
                    named: child_named,
                    node,
                });
            } else if child.meta().is_dir() {
                self.match_level(child, &child_named, &pattern[1..], follow, out)?;
            }
        }
        Ok(())
    }

    /// The entries of one match that include/exclude patterns select, parents
    /// before children; directories that are only parents of selected
    /// entries come right before their first selected descendant.
    pub fn selected_entries(
        &self,
        m: &SourceMatch,
        include: Option<&PatternMatcher>,
        exclude: Option<&PatternMatcher>,
    ) -> Result<Vec<SelectedEntry>> {
        let mut out = vec![SelectedEntry {
            rel: Vec::new(),
            node: m.node.clone(),
        }];
        if m.node.meta().is_dir() {
            let mut pending = Vec::new();
            self.select_dir(
                &m.node,
                &[],
                include,
                exclude,
                &MatchInfo::default(),
                &MatchInfo::default(),
                &mut pending,
                &mut out,
            )?;
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn select_dir(
        &self,
        dir: &Arc<Node>,
        rel: &[u8],
        include: Option<&PatternMatcher>,
        exclude: Option<&PatternMatcher>,
        inc_info: &MatchInfo,
        exc_info: &MatchInfo,
        pending: &mut Vec<SelectedEntry>,
        out: &mut Vec<SelectedEntry>,
    ) -> Result<()> {
        let exclusions = exclude.is_some_and(|e| e.exclusions());
        for child in self.children(dir)?.iter() {
            let mut crel = rel.to_vec();
            if !crel.is_empty() {
                crel.push(b'/');
            }
            crel.extend_from_slice(child.name());
            let (mut selected, ci) = match include {
                Some(m) => m.matches_using_parent(&crel, inc_info),
                None => (true, MatchInfo::default()),
            };
            let (excluded, ce) = match exclude {
                Some(m) => m.matches_using_parent(&crel, exc_info),
                None => (false, MatchInfo::default()),
            };
            if excluded {
                selected = false;
            }
            if !selected && include.is_none() && !exclusions {
                continue;
            }
            let is_dir = child.meta().is_dir();
            if !selected && !is_dir {
                continue;
            }
            let entry = SelectedEntry {
                rel: crel.clone(),
                node: child.clone(),
            };
            if selected {
                out.append(pending);
                out.push(entry);
                if is_dir {
                    self.select_dir(child, &crel, include, exclude, &ci, &ce, pending, out)?;
                }
            } else if !excluded || exclusions {
                pending.push(entry);
                let depth = pending.len();
                self.select_dir(child, &crel, include, exclude, &ci, &ce, pending, out)?;
                pending.truncate(depth - 1);
            }
        }
        Ok(())
    }

    /// The cache-key digest of a selection: it covers the names, modes,
    /// ownership, xattrs and content of exactly the selected entries, and
    /// nothing else (not mtimes, not unselected files).
    ///
    /// A plain path without patterns gives the digest of what it names; with
    /// wildcards or patterns, the digest of the (path, digest) list of the
    /// selected entries — or the single entry's digest when there is exactly
    /// one with the path's base name, or the empty digest when nothing
    /// matched.
    pub fn selection_digest(&self, sel: &Selection) -> Result<Digest> {
        let include = compile(&sel.include)?;
        let exclude = compile(&sel.exclude)?;
        let matches = self.matches(sel)?;
        let path = sel.clean_path();
        let wildcard = sel.allow_wildcard && contains_wildcards(&path);
        if !wildcard && include.is_none() && exclude.is_none() {
            let m = &matches[0];
            return self.digest(&m.node);
        }
        // (key path relative to the non-wildcard prefix, node, whole digest?)
        let prefix_len = if wildcard {
            let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
            let fw = comps
                .iter()
                .position(|c| contains_wildcards(c))
                .unwrap_or(comps.len());
            comps[..fw].join("/").len()
        } else {
            path.len()
        };
        let mut entries: Vec<(String, Arc<Node>, bool)> = Vec::new();
        for m in &matches {
            let named_rel = m
                .named
                .get(prefix_len..)
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string();
            if include.is_none() && exclude.is_none() {
                entries.push((named_rel, m.node.clone(), true));
                continue;
            }
            for e in self.selected_entries(m, include.as_ref(), exclude.as_ref())? {
                let mut k = named_rel.clone();
                if !e.rel.is_empty() {
                    if !k.is_empty() {
                        k.push('/');
                    }
                    k.push_str(&String::from_utf8_lossy(&e.rel));
                }
                entries.push((k, e.node, false));
            }
        }
        for req in &sel.required {
            let req = req.trim_start_matches('/');
            let rel_req = req.get(prefix_len..).unwrap_or(req).trim_start_matches('/');
            if !entries.iter().any(|(k, _, _)| k.starts_with(rel_req)) {
                return Err(Error::not_found(req));
            }
        }
        if entries.is_empty() {
            return Ok(Digest::empty());
        }
        let files: Vec<Arc<Node>> = entries
            .iter()
            .filter(|(_, n, whole)| *whole || n.meta().is_file())
            .map(|(_, n, _)| n.clone())
            .collect();
        self.prefetch(&files)?;
        let digest_of = |n: &Arc<Node>, whole: bool| {
            if whole || n.meta().is_file() {
                self.digest(n)
            } else {
                self.header_digest(n)
            }
        };
        if entries.len() == 1 && gopath::base(&path) == gopath::base(&matches[0].named) {
            return digest_of(&entries[0].1, entries[0].2);
        }
        let mut h = Sha256::new();
        for (k, n, whole) in &entries {
            let key: Vec<u8> = if k.is_empty() {
                vec![0]
            } else {
                k.bytes().map(|c| if c == b'/' { 0 } else { c }).collect()
            };
            h.update(&key);
            h.update(digest_of(n, *whole)?.as_str());
        }
        Ok(Digest::from_hasher(h))
    }
}

fn compile(patterns: &[String]) -> Result<Option<PatternMatcher>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Ok(Some(PatternMatcher::new(patterns)?))
}
