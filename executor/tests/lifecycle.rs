//! Every way a run can end — success, failure, setup error, exec error,
//! cancel, timeout — leaves nothing mounted, nothing running, and no
//! cgroup behind.

mod common;

use std::time::Duration;

use common::*;
use executor::{CancelToken, Error, Limits, NullSink, RunIo, SandboxSpec, SnapshotterKind, Status};

/// Processes on the host whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    found
}

/// This process's leftover sandbox cgroups (kiln-<our pid>-*) in the v1
/// pids hierarchy.
fn leftover_cgroups() -> Vec<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own.lines().find_map(|l| {
        l.split(':')
            .nth(1)
            .filter(|c| *c == "pids")
            .map(|_| l.split(':').nth(2).unwrap().to_string())
    });
    let Some(path) = path else { return Vec::new() };
    let dir = std::path::Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
    let prefix = format!("kiln-{}-", std::process::id());
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn spec(script: &str) -> SandboxSpec {
    let mut s = SandboxSpec::new(["/bin/sh", "-c", script]);
    s.env.push("PATH=/bin:/usr/bin".into());
    s.limits = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    s
}

fn check_clean(before: &[String], marker: &str) {
    assert_eq!(before, mountinfo(), "mounts changed");
    assert!(
        processes_with(marker).is_empty(),
        "left running: {:?}",
        processes_with(marker)
    );
}

#[test]
fn nothing_stays_after_any_outcome() {
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let before = mountinfo();
        let mut snap = prepare(kind, &[busybox_layer()], "lifecycle");
        let scratch = snap.scratch().to_path_buf();
        let rt = runtime();

        // Success and failure, with background processes left behind.
        let (o, _, _) = run(&mut snap, &spec("sleep 987001 & true"));
        assert!(o.success());
        check_clean(&before, "987001");
        let (o, _, _) = run(&mut snap, &spec("sleep 987002 & exit 1"));
        assert_eq!(o.status, Status::Exited(1));
        check_clean(&before, "987002");

        // Setup failure and exec failure.
        let mut bad_user = spec("true");
        bad_user.user = "ghost".into();
        let e = rt
            .run(&mut snap, &bad_user, RunIo::new(&mut NullSink))
            .unwrap_err();
        assert!(matches!(e, Error::Setup { .. }), "{e}");
        check_clean(&before, "kiln-sandbox");
        let e = rt
            .run(
                &mut snap,
                &SandboxSpec::new(["/nope"]),
                RunIo::new(&mut NullSink),
            )
            .unwrap_err();
        assert!(matches!(e, Error::Exec { .. }), "{e}");
        check_clean(&before, "kiln-sandbox");

        // Cancel, while a tree of processes runs.
        let token = CancelToken::new();
        let t = token.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            t.cancel();
        });
        let o = rt
            .run(
                &mut snap,
                &spec("sleep 987003 & sh -c 'sleep 987004'"),
                RunIo::new(&mut NullSink).cancel(token),
            )
            .unwrap();
        canceller.join().unwrap();
        assert_eq!(o.status, Status::Cancelled);
        assert_eq!(o.exit_code(), 130);
        check_clean(&before, "98700");

        // Timeout.
        let o = rt
            .run(
                &mut snap,
                &spec("sleep 987005 & sleep 987006"),
                RunIo::new(&mut NullSink).timeout(Duration::from_millis(300)),
            )
            .unwrap();
        assert_eq!(o.status, Status::TimedOut(Duration::from_millis(300)));
        check_clean(&before, "98700");

        // A token cancelled before the run starts stops it at once.
        let token = CancelToken::new();
        token.cancel();
        let o = rt
            .run(
                &mut snap,
                &spec("sleep 987007"),
                RunIo::new(&mut NullSink).cancel(token),
            )
            .unwrap();
        assert_eq!(o.status, Status::Cancelled);
        check_clean(&before, "987007");

        snap.discard().unwrap();
        assert!(!scratch.exists());
        assert_nothing_mounted_under(&scratch);
        assert_eq!(before, mountinfo());
    }
    assert!(leftover_cgroups().is_empty(), "{:?}", leftover_cgroups());
}

#[test]
fn commit_leaves_only_the_layer_directory() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "commit");
    let scratch = snap.scratch().to_path_buf();
    let (o, _, _) = run(&mut snap, &spec("echo hi > /hello"));
    assert!(o.success());
    let layer = snap.commit().unwrap();
    assert_eq!(layer, scratch.join("upper"));
    let mut left: Vec<String> = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["upper"]);
    assert_eq!(
        std::fs::read_to_string(layer.join("hello")).unwrap(),
        "hi\n"
    );
}
