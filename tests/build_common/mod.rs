//! Shared helpers of the `build_*` and `run_*` integration tests:
//! testkit's [`testkit::cli::Kiln`] runner with a build context directory
//! (`ctx/`, where commands run) and the busybox fixture loaded, builds
//! with plain progress, what the resulting images hold, and reading the
//! progress's step outcomes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::cli::run_ok;
use testkit::{ArchiveStyle, FixtureImage};

/// A state directory (testkit's runner, for this crate's `kiln` binary)
/// and a build context `ctx/` beside it, where commands run.
pub(crate) struct Kiln {
    kiln: testkit::cli::Kiln,
    pub(crate) ctx: PathBuf,
}

impl Deref for Kiln {
    type Target = testkit::cli::Kiln;
    fn deref(&self) -> &testkit::cli::Kiln {
        &self.kiln
    }
}

impl Kiln {
    /// A fresh state directory with the busybox fixture loaded as
    /// `busybox:latest`.
    #[track_caller]
    pub(crate) fn new() -> Kiln {
        let k = Kiln::empty();
        k.load(
            &[FixtureImage::busybox("busybox:latest")],
            ArchiveStyle::Docker25,
        );
        k
    }

    /// A fresh state directory with nothing loaded.
    pub(crate) fn empty() -> Kiln {
        testkit::require_busybox();
        let kiln = testkit::cli::Kiln::new(env!("CARGO_BIN_EXE_kiln"));
        let ctx = kiln.path("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        Kiln {
            kiln: kiln.in_dir(&ctx),
            ctx,
        }
    }

    /// [`Kiln::new`] with `testdata/dockerfiles/<case>/` copied into the
    /// context directory.
    pub(crate) fn with_case(case: &str) -> Kiln {
        let k = Kiln::new();
        k.add_case(case);
        k
    }

    /// Sets `key=value` for every run.
    pub(crate) fn var(self, key: &str, value: &str) -> Kiln {
        Kiln {
            kiln: self.kiln.var(key, value),
            ctx: self.ctx,
        }
    }

    /// Copies a testdata case into the context directory.
    #[track_caller]
    pub(crate) fn add_case(&self, case: &str) {
        self.add_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/dockerfiles")
                .join(case),
        );
    }

    /// Copies the contents of `src` into the context directory (`cp -a`).
    #[track_caller]
    pub(crate) fn add_dir(&self, src: &Path) {
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", src.display()))
                .arg(&self.ctx),
        );
    }

    /// Writes a file (and its parents) into the build context.
    pub(crate) fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// `kiln build --progress=plain ARGS… CTX`, not yet run.
    pub(crate) fn build_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&["build", "--progress=plain"]);
        c.args(args).arg(&self.ctx);
        c
    }

    /// `kiln build --progress=plain ARGS… CTX`, expecting success;
    /// returns stderr (the progress).
    #[track_caller]
    pub(crate) fn build(&self, args: &[&str]) -> String {
        let out = run_ok(&mut self.build_cmd(args));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kiln build --progress=plain ARGS… CTX`, whatever happens.
    pub(crate) fn build_output(&self, args: &[&str]) -> Output {
        self.build_cmd(args).output().expect("run kiln build")
    }

    /// `kiln build --progress=plain ARGS… CTX`, expecting failure;
    /// returns stderr.
    #[track_caller]
    pub(crate) fn build_fails(&self, args: &[&str]) -> String {
        let out = testkit::cli::run_fails(&mut self.build_cmd(args));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kiln run --rm IMAGE sh -c SCRIPT`, expecting success; its stdout.
    #[track_caller]
    pub(crate) fn sh(&self, image: &str, script: &str) -> String {
        self.ok(&["run", "--rm", image, "sh", "-c", script])
    }

    /// The content of one file of an image.
    #[track_caller]
    pub(crate) fn file(&self, image: &str, path: &str) -> String {
        self.sh(image, &format!("cat {path}"))
    }

    /// The flattened filesystem of an image, from `kiln export` (kept as
    /// `export.tar` in the test's directory).
    pub(crate) fn files(&self, image: &str) -> BTreeMap<String, FsEntry> {
        let tar_path = self.path("export.tar");
        self.ok(&["export", "-o", tar_path.to_str().unwrap(), image]);
        let mut ar = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
        let mut out = BTreeMap::new();
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

/// Step lines of plain progress: (name, outcome) where outcome is
/// `CACHED`, `DONE` or `ERROR`, in order of first appearance.
pub(crate) fn steps(progress: &str) -> Vec<(String, String)> {
    let mut names: BTreeMap<String, String> = Default::default();
    let mut order: Vec<String> = Vec::new();
    let mut out: BTreeMap<String, String> = Default::default();
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

/// Steps of plain progress that are Dockerfile steps (not `[internal]`
/// or the CLI's own), with their outcome.
pub(crate) fn dockerfile_steps(progress: &str) -> Vec<(String, String)> {
    steps(progress)
        .into_iter()
        .filter(|(n, _)| n.starts_with('[') && !n.starts_with("[internal]"))
        .collect()
}

/// Asserts every Dockerfile step of the progress was `CACHED`.
#[track_caller]
pub(crate) fn assert_all_cached(progress: &str) {
    for (step, outcome) in dockerfile_steps(progress) {
        assert_eq!(outcome, "CACHED", "{step}:\n{progress}");
    }
}
