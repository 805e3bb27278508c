//! Resource limits through cgroups: a memory hog is stopped and reported as
//! out of memory, a fork bomb is stopped by the pids limit, the CPU quota
//! is applied to the sandbox's cgroup.

mod common;

use std::time::Duration;

use common::*;
use executor::{Limits, NullSink, RunIo, SandboxSpec, SnapshotterKind, Status};

fn spec(script: &str, limits: Limits) -> SandboxSpec {
    let mut s = SandboxSpec::new(["/bin/sh", "-c", script]);
    s.env.push("PATH=/bin:/usr/bin".into());
    s.limits = limits;
    s
}

/// Our own cgroup directory in a v1 controller's hierarchy.
fn own_v1_cgroup(controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = text
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            c.split(',').any(|x| x == controller).then(|| p.to_string())
        })
        .unwrap_or_else(|| {
            panic!("no v1 {controller} cgroup: this test expects cgroup v1 (as on the CI machines)")
        });
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

#[test]
fn memory_hog_is_killed_and_reported_as_out_of_memory() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "oom");
    // The shell keeps the whole 256 MiB in a variable: far over 32 MiB.
    let s = spec(
        "x=$(head -c 268435456 /dev/zero | tr '\\0' x); echo survived ${#x}",
        Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        },
    );
    let (o, out, _) = run(&mut snap, &s);
    assert!(o.oom_killed, "not reported as OOM: {o}, output {out:?}");
    assert!(!o.success());
    assert!(!out.contains("survived"), "{out}");
    assert!(
        o.to_string()
            .contains("out of memory: the 32 MiB memory limit was reached"),
        "{o}"
    );
}

#[test]
fn within_the_memory_limit_nothing_is_reported() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "nooom");
    let s = spec(
        "x=$(head -c 1048576 /dev/zero | tr '\\0' x); echo ${#x}",
        Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        },
    );
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    assert!(!o.oom_killed);
    assert_eq!(out, "1048576\n");
}

#[test]
fn fork_bomb_is_stopped_by_the_pids_limit() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "forkbomb");
    // A bounded bomb: forks beyond the limit fail. `$!` only changes when
    // a fork succeeded, so the distinct values count the successes.
    let s = spec(
        "for i in $(seq 100); do sleep 3 & echo $!; done",
        Limits {
            pids: Some(20),
            ..Limits::default()
        },
    );
    let (_, out, err) = run(&mut snap, &s);
    let mut pids: Vec<&str> = out.lines().collect();
    pids.sort();
    pids.dedup();
    // helper, init and the shell count too.
    assert!(
        pids.len() >= 5 && pids.len() <= 17,
        "{} forks succeeded with a limit of 20: {out}",
        pids.len()
    );
    assert!(err.contains("can't fork"), "{err}");

    // The classic one never ends by itself: the limit holds it, the
    // timeout kills everything, and nothing is left behind.
    let before = mountinfo();
    let o = runtime()
        .run(
            &mut snap,
            &spec(
                "bomb() { bomb | bomb & }; bomb; sleep 60",
                Limits {
                    pids: Some(32),
                    ..Limits::default()
                },
            ),
            RunIo::new(&mut NullSink).timeout(Duration::from_secs(2)),
        )
        .unwrap();
    assert_eq!(o.status, Status::TimedOut(Duration::from_secs(2)));
    assert_eq!(before, mountinfo());
}

#[test]
fn cpu_quota_applies_to_every_process_of_the_running_sandbox() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "cpu");
    let cpu = own_v1_cgroup("cpu");
    let prefix = format!("kiln-{}-", std::process::id());
    let watcher = std::thread::spawn(move || {
        // Find the sandbox's cgroup while it runs and read its settings.
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(10));
            let Ok(dir) = std::fs::read_dir(&cpu) else {
                continue;
            };
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with(&prefix) {
                    continue;
                }
                let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
                let procs = read("cgroup.procs");
                // The helper, the sandbox's init and `sleep`.
                if procs.lines().count() >= 3 {
                    return Some((read("cpu.cfs_quota_us"), read("cpu.cfs_period_us"), procs));
                }
            }
        }
        None
    });
    let s = spec(
        "sleep 1",
        Limits {
            cpus: Some(0.5),
            ..Limits::default()
        },
    );
    let (o, _, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    let (quota, period, procs) = watcher
        .join()
        .unwrap()
        .expect("the sandbox's cgroup was never seen");
    assert_eq!(quota.trim(), "50000");
    assert_eq!(period.trim(), "100000");
    assert_eq!(procs.lines().count(), 3, "{procs}");
}
