//! Shared helpers of the store integration tests: an isolated state
//! directory, running the real `kiln` binary, fixture archives, and
//! comparing root filesystems.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::{Digest as _, Sha256};

/// A temporary directory with a fresh state directory inside.
pub(crate) struct Kiln {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl Kiln {
    pub(crate) fn new() -> Kiln {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        Kiln { dir, root }
    }

    /// A path inside the test's temporary directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kiln --root ROOT ARGS…`, not yet run.
    pub(crate) fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run kiln");
        assert!(
            out.status.success(),
            "kiln {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and expects failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out: Output = self.cmd(args).output().expect("run kiln");
        assert!(
            !out.status.success(),
            "kiln {args:?} should have failed; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Names of the blob files in the store.
    pub(crate) fn blobs(&self) -> Vec<String> {
        ls(&self.root.join("blobs/sha256"))
    }

    /// Names under `layers/`.
    pub(crate) fn layer_dirs(&self) -> Vec<String> {
        ls(&self.root.join("layers"))
    }

    /// Everything under `tmp/` (per-process areas of live or dead processes).
    pub(crate) fn tmp_entries(&self) -> Vec<String> {
        ls(&self.root.join("tmp"))
    }

    /// Asserts every blob hashes to its name.
    pub(crate) fn assert_blobs_intact(&self) {
        for name in self.blobs() {
            let data = std::fs::read(self.root.join("blobs/sha256").join(&name)).unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(&data)),
                name,
                "blob {name} is corrupt"
            );
        }
    }
}

/// Sorted names in a directory (empty if missing).
pub(crate) fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Fails loudly when a tool the tests need is missing (`.ci/install-deps`
/// installs it).
pub(crate) fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} is not installed: run .ci/install-deps");
}

/// Runs a command and expects success; returns stdout.
pub(crate) fn sh(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A comparable description of every entry under `root`: type, mode,
/// owner, and content digest or link target (and mtime for files).
pub(crate) fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
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
            out.insert(
                rel,
                format!(
                    "{what} mode {:o} owner {}:{}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    out
}

/// Extracts a tar with GNU tar, keeping permissions and owners.
pub(crate) fn untar(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    sh(std::process::Command::new("tar")
        .arg("-C")
        .arg(dest)
        .args(["--same-owner", "-xpf"])
        .arg(tar));
}
