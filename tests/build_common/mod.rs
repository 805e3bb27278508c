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
