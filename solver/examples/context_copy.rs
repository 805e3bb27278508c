//! Benchmark driver: hashes a context (as a COPY cache key would) and copies
//! it into a destination root, printing both times on stderr.
//!
//! `context_copy CONTEXT DEST [STATCACHE_FILE]`; with `--delta PREV_MANIFEST
//! BASE UPPER` it performs a delta copy instead.

use std::sync::Arc;
use std::time::Instant;

use solver::contenthash::{FileStatCache, Selection, SourceOptions, SourceTree, StatCache};
use solver::context::{ContextFilter, load_ignore_file};
use solver::fileop::{CopyOptions, Manifest, RootDir, copy, delta_copy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctx = std::path::PathBuf::from(&args[0]);
    let ignore = load_ignore_file(&ctx, None)?;
    let cache: Arc<dyn StatCache> = match args.get(2).filter(|a| !a.starts_with("--")) {
        Some(p) => Arc::new(FileStatCache::open(std::path::Path::new(p))),
        None => Arc::new(solver::contenthash::MemoryStatCache::default()),
    };
    let tree = SourceTree::open(
        &ctx,
        SourceOptions::context(ContextFilter::new(&ignore.patterns)?, cache),
    )?;
    let sel = Selection::dockerfile(".", false, &[]);
    let opts = CopyOptions {
        dest: "/app/".into(),
        dir_contents_only: true,
        ..CopyOptions::default()
    };
    let t = Instant::now();
    let key = tree.selection_digest(&sel)?;
    let hashed = t.elapsed();
    let t = Instant::now();
    if let Some(i) = args.iter().position(|a| a == "--delta") {
        let prev = Manifest::from_json(&std::fs::read(&args[i + 1])?)?;
        let base = RootDir::open(std::path::Path::new(&args[i + 2]))?;
        let upper = RootDir::open(std::path::Path::new(&args[i + 3]))?;
        let r = delta_copy(&tree, &sel, &opts, &base, &prev, &upper)?;
        eprintln!(
            "key {key} hash {hashed:?} delta {:?} written {} deleted {}",
            t.elapsed(),
            r.written,
            r.deleted
        );
    } else {
        let m = copy(
            &tree,
            &sel,
            &opts,
            &RootDir::open(std::path::Path::new(&args[1]))?,
        )?;
        eprintln!(
            "key {key} hash {hashed:?} copy {:?} entries {}",
            t.elapsed(),
            m.entries.len()
        );
        std::fs::write(
            std::path::Path::new(&args[1]).join("../manifest.json"),
            m.to_json(),
        )?;
    }
    Ok(())
}
