//! Listing a context directory in place, through its filter.

use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::filter::{ContextFilter, Verdict};
use super::pattern::MatchInfo;

/// One visible path of a context.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Relative slash path (raw bytes; Linux paths need not be UTF-8).
    pub rel: Vec<u8>,
    /// The `lstat` of the path.
    pub metadata: Metadata,
}

/// Lists every path of `root` that `filter` lets through, parents before
/// children, siblings in byte order. Symlinks are listed, not followed. An
/// excluded directory appears only when something inside it is re-included.
pub fn walk_context(root: &Path, filter: &ContextFilter) -> io::Result<Vec<WalkEntry>> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    walk_dir(
        root,
        &mut Vec::new(),
        filter,
        &MatchInfo::default(),
        &mut pending,
        &mut out,
    )?;
    Ok(out)
}

fn walk_dir(
    root: &Path,
    rel: &mut Vec<u8>,
    filter: &ContextFilter,
    info: &MatchInfo,
    pending: &mut Vec<WalkEntry>,
    out: &mut Vec<WalkEntry>,
) -> io::Result<()> {
    let dir: PathBuf = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    };
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("reading directory {}: {e}", dir.display()),
            )
        })?
        .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        let path = dir.join(std::ffi::OsStr::from_bytes(&name));
        let md = std::fs::symlink_metadata(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("stat {}: {e}", path.display())))?;
        let is_dir = md.is_dir();
        let (verdict, child_info) = filter.check(rel, is_dir, info);
        match verdict {
            Verdict::SkipDir => {}
            Verdict::Include => {
                out.append(pending);
                out.push(WalkEntry {
                    rel: rel.clone(),
                    metadata: md,
                });
                if is_dir {
                    walk_dir(root, rel, filter, &child_info, pending, out)?;
                }
            }
            Verdict::Exclude => {
                if is_dir {
                    pending.push(WalkEntry {
                        rel: rel.clone(),
                        metadata: md,
                    });
                    let depth = pending.len();
                    walk_dir(root, rel, filter, &child_info, pending, out)?;
                    pending.truncate(depth - 1);
                }
            }
        }
        rel.truncate(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(root: &Path, patterns: &[&str]) -> Vec<String> {
        let f = ContextFilter::new(patterns).unwrap();
        walk_context(root, &f)
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.rel).unwrap())
            .collect()
    }

    #[test]
    fn walks_filtered_context() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "a.txt",
            "b.log",
            "src/main.rs",
            "src/gen/x.log",
            "build/out/bin",
            "build/keep/me",
            "node_modules/m/i.js",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        assert_eq!(
            names(d.path(), &["*.log", "build", "!build/keep", "node_modules"]),
            vec![
                "a.txt",
                "build",
                "build/keep",
                "build/keep/me",
                "src",
                "src/gen",
                "src/gen/x.log",
                "src/main.rs"
            ]
        );
        assert_eq!(
            names(d.path(), &["**/*.log", "src"]),
            vec![
                "a.txt",
                "build",
                "build/keep",
                "build/keep/me",
                "build/out",
                "build/out/bin",
                "node_modules",
                "node_modules/m",
                "node_modules/m/i.js"
            ]
        );
        // An excluded directory with no re-included child does not appear.
        assert_eq!(names(d.path(), &["*", "!a.txt"]), vec!["a.txt"]);
        // Wildcard exceptions are looked for inside excluded directories.
        assert_eq!(
            names(d.path(), &["*", "!**/*.rs"]),
            vec!["src", "src/main.rs"]
        );
    }
}
