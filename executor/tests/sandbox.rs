//! The sandbox, for real: namespaces, mounts, users, isolation, as seen
//! from inside.

mod common;

use std::path::Path;

use common::*;
use executor::{Error, Mount, MountKind, Network, SandboxSpec, Security, SnapshotterKind, Status};

fn spec(script: &str) -> SandboxSpec {
    let mut s = SandboxSpec::new(["/bin/sh", "-c", script]);
    s.env.push("PATH=/bin:/sbin:/usr/bin".into());
    s
}

#[test]
fn echo_runs_and_exit_codes_propagate() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "echo");
    let (o, out, err) = sh(&mut snap, "echo hello; echo oops >&2; exit 3");
    assert_eq!(o.status, Status::Exited(3), "{err}");
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    let (o, _, _) = sh(&mut snap, "kill -TERM $$");
    assert_eq!(o.status, Status::Signaled(15));
    assert_eq!(o.exit_code(), 143);
}

#[test]
fn pid_1_is_the_sandbox_init_and_host_processes_are_invisible() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "pids");
    let (o, out, err) = sh(
        &mut snap,
        "echo self=$$; echo init=$(cat /proc/1/comm); ls /proc | grep -c '^[0-9][0-9]*$'",
    );
    assert!(o.success(), "{o}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    // PID 1 is kiln's init, the step's shell is its only child (PID 2).
    assert_eq!(lines[0], "self=2", "{out}");
    assert_eq!(lines[1], "init=kiln-init", "{out}");
    // init, sh, the command substitution's children: a handful, none of
    // the host's (this test process alone has several threads and
    // there are dozens of host processes).
    let n: usize = lines[2].parse().unwrap();
    assert!(n <= 6, "{n} processes visible: {out}");
    let host_pid = std::process::id();
    let (o, _, _) = sh(
        &mut snap,
        &format!("test -e /proc/{host_pid}/cmdline && grep -q executor /proc/{host_pid}/cmdline"),
    );
    assert_eq!(
        o.status,
        Status::Exited(1),
        "the test process is visible in the sandbox"
    );
}

#[test]
fn orphans_are_reaped_by_init() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "reap");
    // The inner shell exits at once, orphaning `sleep`, which init adopts
    // and must reap when it exits; no zombie may remain.
    let (o, out, err) = sh(
        &mut snap,
        "sh -c 'sleep 0.2 &'; sleep 0.6; for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done",
    );
    assert!(o.success(), "{o}: {err}");
    assert!(!out.lines().any(|l| l == "Z"), "zombie left: {out}");
}

#[test]
fn hostname_is_set_and_changes_stay_inside() {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "hostname");
    let (o, out, _) = sh(&mut snap, "hostname");
    assert!(o.success());
    assert_eq!(out, "buildkitsandbox\n");
    // Even with every capability, a hostname change stays in the UTS
    // namespace.
    let mut s = spec("hostname changed-inside && hostname");
    s.security = Security::Insecure;
    s.hostname = "custom".into();
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    assert_eq!(out, "changed-inside\n");
    let after = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    assert_eq!(after, host);
    // Without CAP_SYS_ADMIN it is refused.
    let (o, _, _) = sh(&mut snap, "hostname nope");
    assert!(!o.success());
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "netnone");
    let mut s = spec("ls /sys/class/net; cat /sys/class/net/lo/flags; cat /etc/hosts");
    s.network = Network::None;
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up: {out}");
    assert_eq!(lines[2], "127.0.0.1\tlocalhost buildkitsandbox");
}

#[test]
fn network_host_sees_the_hosts_interfaces() {
    let host = || -> Vec<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = host();
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "nethost");
    let (o, out, _) = sh(&mut snap, "ls /sys/class/net");
    assert!(o.success());
    let after = host();
    let inside: Vec<&str> = out.lines().collect();
    // Interfaces may come and go on a shared machine while this runs; the
    // ones present throughout must all be visible, and nothing else.
    for i in before.iter().filter(|i| after.contains(i)) {
        assert!(inside.contains(&i.as_str()), "{i} missing inside: {out}");
    }
    for i in &inside {
        assert!(
            before.iter().chain(&after).any(|h| h == i),
            "{i} is not a host interface"
        );
    }
    assert!(inside.len() > 1, "only loopback: not the host's namespace");
}

#[test]
fn writes_cannot_escape_the_root() {
    let tag = format!("kiln-escape-{}", std::process::id());
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "escape");
    let script = format!(
        "ln -s / /up; echo 1 > /up/tmp/{tag}-a; \
         cd /; cd ../../../..; echo 2 > {tag}-b; \
         echo 3 > /proc/self/root/{tag}-c; \
         echo 4 > /proc/1/root/{tag}-d 2>/dev/null; \
         echo 5 > ../../{tag}-e; true"
    );
    let (o, _, err) = sh(&mut snap, &script);
    assert!(o.success(), "{o}: {err}");
    for p in [
        format!("/tmp/{tag}-a"),
        format!("/{tag}-b"),
        format!("/{tag}-c"),
        format!("/{tag}-d"),
        format!("/{tag}-e"),
    ] {
        assert!(!Path::new(&p).exists(), "{p} was written on the host");
    }
    // They landed in the sandbox's own root (except through /proc/1/root:
    // init is not dumpable, so the step cannot use its root link).
    let upper = snap.writable_dir().to_path_buf();
    assert!(upper.join(format!("tmp/{tag}-a")).exists());
    assert!(upper.join(format!("{tag}-b")).exists());
    assert!(upper.join(format!("{tag}-c")).exists());
    assert!(!upper.join(format!("{tag}-d")).exists());
}

#[test]
fn image_symlinks_cannot_redirect_sandbox_mounts_to_the_host() {
    // An image whose /etc/resolv.conf points at a host path: the bind
    // mount must land inside the root, and the host file stays untouched.
    let victim = std::env::temp_dir().join(format!("kiln-victim-{}", std::process::id()));
    std::fs::write(&victim, "precious\n").unwrap();
    let layer = workdir("evil-layer").join("fs");
    std::fs::create_dir_all(layer.join("etc")).unwrap();
    std::os::unix::fs::symlink(&victim, layer.join("etc/resolv.conf")).unwrap();
    let escape = format!("kiln-hosts-{}", std::process::id());
    std::os::unix::fs::symlink(
        format!("../../../../../../../tmp/{escape}"),
        layer.join("etc/hosts"),
    )
    .unwrap();
    let before = mountinfo();
    let mut snap = prepare(SnapshotterKind::Overlay, &[layer, busybox_layer()], "evil");
    let (o, out, err) = sh(
        &mut snap,
        &format!("cat {}; grep -c localhost /etc/hosts", victim.display()),
    );
    assert!(o.success(), "{o}: {err}");
    assert!(out.starts_with("nameserver"), "{out}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(before, mountinfo());
    // `..` stopped at the sandbox's root: nothing appeared on the host.
    assert!(!Path::new("/tmp").join(&escape).exists());
    // The stubs made for the mounts were removed again.
    assert!(
        !snap
            .writable_dir()
            .join(victim.strip_prefix("/").unwrap())
            .exists()
    );
    assert!(!snap.writable_dir().join("tmp").join(&escape).exists());
    std::fs::remove_file(&victim).unwrap();
}

#[test]
fn mounts_made_inside_do_not_appear_on_the_host() {
    let before = mountinfo();
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "innermount");
    let mut s =
        spec("mount -t tmpfs none /mnt && touch /mnt/x && grep -c ' /mnt ' /proc/self/mountinfo");
    s.security = Security::Insecure;
    s.mounts.push(Mount {
        target: "/mnt".into(),
        kind: MountKind::Tmpfs { size: None },
    });
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    assert_eq!(out, "2\n");
    assert_eq!(before, mountinfo());
    // In the default sandbox, mounting is not allowed at all.
    let (o, _, err) = sh(&mut snap, "mount -t tmpfs none /tmp");
    assert!(!o.success(), "mount succeeded without CAP_SYS_ADMIN: {err}");
}

#[test]
fn users_groups_home_and_workdir() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "users");
    let mut s = spec("id; echo HOME=$HOME; pwd; umask");
    s.user = "app".into();
    s.cwd = "/work/dir".into();
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    assert_eq!(
        out,
        "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\nHOME=/home/app\n/work/dir\n0022\n"
    );
    // The working directory was created 0755 and owned by the user, and
    // it is part of the layer.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(snap.writable_dir().join("work/dir")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o755));

    s.user = "1000:50".into();
    s.cwd = "/".into();
    let (_, out, _) = run(&mut snap, &{
        let mut t = s.clone();
        t.args = vec!["id".into()];
        t
    });
    assert_eq!(out, "uid=1000(app) gid=50(staff) groups=50(staff)\n");

    s.user = "nobody-here".into();
    let err = common::runtime()
        .run(&mut snap, &s, executor::RunIo::new(&mut executor::NullSink))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Setup { message, .. } if message.contains("unable to find user nobody-here")),
        "{err}"
    );
}

#[test]
fn capabilities_and_no_new_privileges() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "caps");
    let script = "grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs)' /proc/self/status";
    let (o, out, _) = sh(&mut snap, script);
    assert!(o.success());
    assert_eq!(
        out,
        "CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
    );
    let mut s = spec(script);
    s.user = "app".into();
    let (_, out, _) = run(&mut snap, &s);
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
}

#[test]
fn dev_proc_and_sys_are_minimal_masked_and_read_only() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "devs");
    let (o, out, err) = sh(
        &mut snap,
        "ls /dev | tr '\\n' ' '; echo; \
         echo x > /dev/null && head -c 3 /dev/zero | wc -c; \
         head -c 8 /dev/urandom | wc -c; \
         wc -c < /proc/timer_list; ls /proc/acpi | wc -l; \
         touch /sys/x 2>/dev/null || echo sys-ro; \
         echo 1 > /proc/sys/kernel/hostname 2>/dev/null || echo procsys-ro; \
         test -c /dev/pts/ptmx && echo pts",
    );
    assert!(o.success(), "{o}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    let mut devs: Vec<&str> = lines[0].split_whitespace().collect();
    devs.sort();
    assert_eq!(
        devs,
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    assert_eq!(
        &lines[1..],
        ["3", "8", "0", "0", "sys-ro", "procsys-ro", "pts"]
    );
}

#[test]
fn environment_and_default_path() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "env");
    let mut s = SandboxSpec::new(["env"]);
    s.env = vec!["A=1".into(), "B=two words".into()];
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "A=1",
            "B=two words",
            "HOME=/root",
            &format!("PATH={}", executor::DEFAULT_PATH)
        ]
    );
}

#[test]
fn exec_failures_are_reported_like_docker() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "execfail");
    let mut sink = executor::NullSink;
    let err = common::runtime()
        .run(
            &mut snap,
            &SandboxSpec::new(["no-such-command"]),
            executor::RunIo::new(&mut sink),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "exec: \"no-such-command\": executable file not found in $PATH"
    );
    assert_eq!(err.docker_exit_code(), 127);
    let err = common::runtime()
        .run(
            &mut snap,
            &SandboxSpec::new(["/etc/passwd"]),
            executor::RunIo::new(&mut sink),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "exec: \"/etc/passwd\": permission denied");
    assert_eq!(err.docker_exit_code(), 126);
}

#[test]
fn extra_mounts_bind_tmpfs_cache_secret() {
    let host = workdir("mount-sources");
    let ro = host.join("ro");
    let rw = host.join("rw");
    let cache = host.join("cache");
    for d in [&ro, &rw, &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(ro.join("file"), "from host\n").unwrap();
    let secret = host.join("secret.txt");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "mounts");
    let mut s = spec(
        "cat /in/file; touch /in/new 2>/dev/null || echo ro-ok; \
         echo out > /out/written; echo cached > /var/cache/x/c; \
         df /scratch | tail -1 | awk '{print $2}'; \
         cat /run/secrets/token; echo; stat -c '%a %u' /run/secrets/token",
    );
    let bind = |target: &str, source: &Path, readonly| Mount {
        target: target.into(),
        kind: MountKind::Bind {
            source: source.to_path_buf(),
            readonly,
        },
    };
    s.mounts = vec![
        bind("/in", &ro, true),
        bind("/out", &rw, false),
        Mount {
            target: "/var/cache/x".into(),
            kind: MountKind::Cache {
                source: cache.clone(),
            },
        },
        Mount {
            target: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(8 << 20),
            },
        },
        Mount {
            target: "/run/secrets/token".into(),
            kind: MountKind::Secret {
                source: secret,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
        },
    ];
    let (o, out, err) = run(&mut snap, &s);
    assert!(o.success(), "{o}: {err}");
    assert_eq!(out, "from host\nro-ok\n8192\ns3cr3t\n400 0\n");
    assert_eq!(
        std::fs::read_to_string(rw.join("written")).unwrap(),
        "out\n"
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("c")).unwrap(),
        "cached\n"
    );
    assert!(!ro.join("new").exists());
    // Every mount point was a stub: none is left in the layer.
    let upper = snap.writable_dir();
    for stub in [
        "in",
        "out",
        "scratch",
        "var/cache",
        "run",
        "etc/hosts",
        "etc/resolv.conf",
    ] {
        assert!(
            !upper.join(stub).exists(),
            "stub {stub} leaked into the layer"
        );
    }
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "signal");
    let token = executor::CancelToken::new();
    let t2 = token.clone();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        t2.signal(libc::SIGTERM);
    });
    let mut out = executor::CaptureSink::default();
    let o = common::runtime()
        .run(
            &mut snap,
            &spec("trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done"),
            executor::RunIo::new(&mut out).cancel(token),
        )
        .unwrap();
    sender.join().unwrap();
    assert_eq!(o.status, Status::Exited(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\ngot-term\n");
}

#[test]
fn device_nodes_made_by_a_step_cannot_be_opened() {
    // CAP_MKNOD is in docker's default set: a root step can create a node
    // for the host's disk, but every writable filesystem is nodev. (Some
    // hosts deny raw disk access anyway; the /dev/null2 check is the one
    // that fails without nodev everywhere: with Security::Insecure it opens.)
    use std::os::unix::fs::MetadataExt;
    let disk = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (rustix::fs::major(disk), rustix::fs::minor(disk));
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let mut snap = prepare(kind, &[busybox_layer()], "mknod");
        let (o, out, err) = sh(
            &mut snap,
            &format!(
                "mknod /tmp/disk b {major} {minor} && (head -c 512 /tmp/disk >/dev/null 2>&1 && echo READ-THE-HOST-DISK || echo disk-blocked); \
                 mknod /dev/null2 c 1 3 && (echo x 2>/dev/null > /dev/null2 && echo OPENED || echo dev-blocked); \
                 echo y > /dev/null && head -c 1 /dev/zero | wc -c"
            ),
        );
        assert!(o.success(), "{kind}: {o}: {err}");
        assert_eq!(out, "disk-blocked\ndev-blocked\n1\n", "{kind}");
    }
}
