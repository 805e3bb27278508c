//! Shared helpers of the executor's integration tests: a busybox base
//! layer, a runtime using the crate's `kiln-sandbox` helper, and a
//! mountinfo snapshot to check that nothing stays mounted.
//!
//! These tests need root, overlayfs and namespaces; when they cannot run
//! they fail with the reason (they never pass silently).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use executor::{
    CaptureSink, Outcome, RunIo, Runtime, SandboxSpec, Snapshot, Snapshotter, SnapshotterKind,
};

/// Fails the test (loudly) when not root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "executor integration tests need root (namespaces, overlayfs, cgroups); run them as root"
    );
}

/// A directory for this test under the target's tmp dir (same filesystem
/// as the layers, as in the store).
///
/// Directories are kept until the next test process starts (so a failing
/// test can be looked at), then removed.
pub fn workdir(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("executor-tests");
        std::fs::create_dir_all(&root).unwrap();
        // Leftovers of test processes that are gone.
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
            if pid.is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let mine = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&mine).unwrap();
        mine
    });
    let d = tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap();
    d.keep()
}

/// The busybox base layer, written once per test process.
pub fn busybox_layer() -> PathBuf {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            require_root();
            let dir = workdir("busybox-layer").join("fs");
            testkit::write_busybox_rootfs(&dir).expect("write busybox rootfs");
            dir
        })
        .clone()
}

/// The runtime, with the crate's own helper binary.
pub fn runtime() -> Runtime {
    Runtime::with_helper(env!("CARGO_BIN_EXE_kiln-sandbox"))
}

/// Prepares a snapshot of `lowers` with the given snapshotter.
pub fn prepare(kind: SnapshotterKind, lowers: &[PathBuf], name: &str) -> Snapshot {
    let scratch = workdir(name).join("scratch");
    let snap = Snapshotter::new(kind)
        .prepare(lowers, &scratch)
        .expect("prepare snapshot");
    if kind != SnapshotterKind::Auto {
        assert_eq!(snap.kind(), kind, "fallback: {:?}", snap.fallback_reason());
    }
    snap
}

/// Runs a shell script in the snapshot; returns the outcome and output.
pub fn sh(snap: &mut Snapshot, script: &str) -> (Outcome, String, String) {
    let mut spec = SandboxSpec::new(["/bin/sh", "-c", script]);
    spec.env.push("PATH=/bin:/sbin:/usr/bin".into());
    run(snap, &spec)
}

/// Runs a spec; returns the outcome and output.
pub fn run(snap: &mut Snapshot, spec: &SandboxSpec) -> (Outcome, String, String) {
    let mut out = CaptureSink::default();
    let outcome = runtime()
        .run(snap, spec, RunIo::new(&mut out))
        .unwrap_or_else(|e| panic!("run {:?}: {e}", spec.args));
    (
        outcome,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The mount points of this process's mount namespace that could be a
/// sandbox's: those under the tests' own directories. A sandbox's root is
/// attached on its scratch directory, so anything it leaked to the host
/// (the root, /proc, /dev, its binds, a mount made by the step) would show
/// up there. Other processes on a shared machine may mount elsewhere while
/// the tests run; those are not ours to judge.
pub fn mountinfo() -> Vec<String> {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| Path::new(m).starts_with(&base))
        .collect();
    v.sort();
    v
}

/// Asserts that no mount point mentions `dir`.
pub fn assert_nothing_mounted_under(dir: &Path) {
    let d = dir.to_string_lossy();
    let left: Vec<String> = mountinfo()
        .into_iter()
        .filter(|m| m.contains(&*d))
        .collect();
    assert!(left.is_empty(), "still mounted: {left:?}");
}
