//! The kiln binary is its own sandbox helper: `Runtime::new()` re-executes
//! `/proc/self/exe __kiln-sandbox`, so kiln's `main` must hand that
//! argument to the executor before doing anything else. This drives a real
//! sandbox through the kiln binary (as root).

use executor::{CaptureSink, RunIo, Runtime, SandboxSpec, Snapshotter, SnapshotterKind};

#[test]
fn the_kiln_binary_serves_as_the_sandbox_helper() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (namespaces, overlayfs)"
    );
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let layer = dir.path().join("busybox");
    testkit::write_busybox_rootfs(&layer).unwrap();
    let mut snap = Snapshotter::new(SnapshotterKind::Auto)
        .prepare(&[layer], &dir.path().join("scratch"))
        .unwrap();
    let mut out = CaptureSink::default();
    let mut spec = SandboxSpec::new(["/bin/sh", "-c", "echo hello from $(hostname)"]);
    spec.env.push("PATH=/bin".into());
    let outcome = Runtime::with_helper(env!("CARGO_BIN_EXE_kiln"))
        .run(&mut snap, &spec, RunIo::new(&mut out))
        .unwrap();
    assert!(
        outcome.success(),
        "{outcome}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello from buildkitsandbox\n");
    snap.discard().unwrap();
}

#[test]
fn the_hidden_helper_mode_refuses_a_terminal_or_file_as_its_channel() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg(executor::HELPER_ARG)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only for kiln's own use"));
}
