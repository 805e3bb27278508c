//! Shared helpers of the `build_*` and `run_*` integration tests: an
//! isolated state directory with the testkit busybox image loaded, a build
//! context directory, and running the real `kiln` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory holding a fresh state directory (`root/`) with
/// `busybox:latest` loaded, and a build context (`ctx/`).
pub(crate) struct Kiln {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) ctx: PathBuf,
}

impl Kiln {
    /// A fresh state directory with the busybox fixture loaded.
    pub(crate) fn new() -> Kiln {
        let k = Kiln::empty();
        let archive = k.dir.path().join("busybox.tar");
        testkit::write_docker_archive(
            &archive,
            &[testkit::FixtureImage::busybox("busybox:latest")],
            testkit::ArchiveStyle::Docker25,
            false,
        )
        .expect("write busybox archive");
        k.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
        k
    }

    /// A fresh state directory with nothing loaded.
    pub(crate) fn empty() -> Kiln {
        testkit::require_busybox();
        let dir = tempfile::Builder::new()
            .prefix("kiln-test-")
            .tempdir_in(test_tmp())
            .expect("tempdir");
        let root = dir.path().join("root");
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        Kiln { dir, root, ctx }
    }

    /// A path inside the test's temporary directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file (and its parents) into the build context.
    pub(crate) fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// `kiln --root ROOT ARGS…`, not yet run, in the context directory.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.ctx)
            .stdin(Stdio::null())
            .env_remove("KILN_ROOT")
            .env_remove("BUILDKIT_PROGRESS");
        c
    }

    /// Runs and returns the output.
    pub(crate) fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run kiln")
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and expects failure; returns (exit code, stderr).
    pub(crate) fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "kiln {args:?} should have failed; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kiln run --rm IMAGE sh -c SCRIPT`, expecting success; its stdout.
    pub(crate) fn sh(&self, image: &str, script: &str) -> String {
        self.ok(&["run", "--rm", image, "sh", "-c", script])
    }

    /// Lines of `/proc/self/mountinfo` that mention the state directory.
    pub(crate) fn mounts_under_root(&self) -> Vec<String> {
        mounts_mentioning(&self.root)
    }

    /// Entries under the store's `tmp/` (live or dead processes' areas).
    pub(crate) fn tmp_entries(&self) -> Vec<String> {
        ls(&self.root.join("tmp"))
    }
}

/// Lines of `/proc/self/mountinfo` mentioning `p`.
pub(crate) fn mounts_mentioning(p: &Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&p))
        .map(str::to_string)
        .collect()
}

/// Sorted names in a directory (empty if it does not exist).
pub(crate) fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Where test directories go: beside the target directory when possible
/// (a real disk with overlayfs support), else the system temp dir.
pub(crate) fn test_tmp() -> PathBuf {
    let base = std::env::var_os("KILN_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// One entry of an exported filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FsEntry {
    pub(crate) kind: char,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    /// File content, or symlink target.
    pub(crate) data: Vec<u8>,
}

impl Kiln {
    /// Copies `testdata/dockerfiles/<case>/` into the context directory.
    pub(crate) fn with_case(case: &str) -> Kiln {
        let k = Kiln::new();
        k.add_case(case);
        k
    }

    /// Copies a testdata case into the context directory.
    pub(crate) fn add_case(&self, case: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/dockerfiles")
            .join(case);
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.display()))
            .arg(&self.ctx)
            .status()
            .unwrap();
        assert!(st.success(), "copy {}", src.display());
    }

    /// `kiln build --progress=plain ARGS… CTX`, expecting success;
    /// returns stderr (the progress).
    pub(crate) fn build(&self, args: &[&str]) -> String {
        let out = self.build_output(args);
        assert!(
            out.status.success(),
            "kiln build {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kiln build --progress=plain ARGS… CTX`, whatever happens.
    pub(crate) fn build_output(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = vec!["build", "--progress=plain"];
        a.extend_from_slice(args);
        let ctx = self.ctx.to_str().unwrap().to_string();
        a.push(&ctx);
        self.output(&a)
    }

    /// The flattened filesystem of an image, from `kiln export`.
    pub(crate) fn files(&self, image: &str) -> std::collections::BTreeMap<String, FsEntry> {
        let tar_path = self.path("export.tar");
        self.ok(&["export", "-o", tar_path.to_str().unwrap(), image]);
        let mut ar = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
        let mut out = std::collections::BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let h = e.header().clone();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                tar::EntryType::Regular => 'f',
                _ => '?',
            };
            let mut data = Vec::new();
            if kind == 'f' {
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            } else if kind == 'l' || kind == 'h' {
                data = h
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
                    .into_bytes();
            }
            out.insert(
                path,
                FsEntry {
                    kind,
                    mode: h.mode().unwrap() & 0o7777,
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    data,
                },
            );
        }
        out
    }

    /// The content of one file of an image.
    pub(crate) fn file(&self, image: &str, path: &str) -> String {
        self.sh(image, &format!("cat {path}"))
    }

    /// `kiln inspect IMAGE` as JSON.
    pub(crate) fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    /// The image config blob as stored (exactly the bytes).
    pub(crate) fn config_json(&self, image: &str) -> serde_json::Value {
        let id = self.inspect(image)["Id"].as_str().unwrap().to_string();
        let hex = id.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(self.root.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    }
}

/// Step lines of plain progress: (name, outcome) where outcome is
/// `CACHED`, `DONE` or `ERROR`, in order of first appearance.
pub(crate) fn steps(progress: &str) -> Vec<(String, String)> {
    let mut names: std::collections::BTreeMap<String, String> = Default::default();
    let mut order: Vec<String> = Vec::new();
    let mut out: std::collections::BTreeMap<String, String> = Default::default();
    for line in progress.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((n, text)) = rest.split_once(' ') else {
            continue;
        };
        if !names.contains_key(n) {
            names.insert(n.to_string(), text.to_string());
            order.push(n.to_string());
            continue;
        }
        if text == "CACHED" || text.starts_with("DONE") || text.starts_with("ERROR") {
            let o = text.split([' ', ':']).next().unwrap().to_string();
            out.insert(n.to_string(), o);
        }
    }
    order
        .into_iter()
        .map(|n| (names[&n].clone(), out.get(&n).cloned().unwrap_or_default()))
        .collect()
}

/// Outcome of the step whose name contains `needle`.
pub(crate) fn outcome(progress: &str, needle: &str) -> String {
    steps(progress)
        .into_iter()
        .find(|(n, _)| n.contains(needle))
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("no step {needle:?} in:\n{progress}"))
}
