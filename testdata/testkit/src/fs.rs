//! Looking at directories from tests: sorted listings, a comparable
//! description of a whole tree, GNU tar in and out, and mounts.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::cli::run_ok;

/// Sorted names in a directory (empty if it does not exist).
pub fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A comparable description of every entry under `root`, by relative
/// path: type, mode, owner, and content digest and mtime (files), link
/// target (symlinks) or device (others).
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if ft.is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap();
                format!(
                    "file {} mtime {}",
                    hex::encode(Sha256::digest(&data)),
                    m.mtime()
                )
            } else {
                format!("special {:o} {}", m.mode() & 0o170000, m.rdev())
            };
            let owner = format!("mode {:o} owner {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
            out.insert(rel, format!("{what} {owner}"));
        }
    }
    out
}

/// Extracts `tar` into `dest` (created if missing) with GNU tar, keeping
/// permissions and owners.
#[track_caller]
pub fn untar(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(dest)
            .args(["--same-owner", "-xpf"])
            .arg(tar),
    );
}

/// Packs the contents of `dir` (as `./…`) into the tar `tar` with GNU tar.
#[track_caller]
pub fn tar_dir(dir: &Path, tar: &Path) {
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg(tar)
            .arg("."),
    );
}

/// Lines of `/proc/self/mountinfo` that mention `p`.
pub fn mounts_mentioning(p: &Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&p))
        .map(str::to_string)
        .collect()
}
