//! `kiln run` semantics end to end, through the library function the CLI
//! will call: ENTRYPOINT/CMD, environment, volumes, workdir, user,
//! hostname, exit status, `--rm`.

mod common;

use common::*;
use executor::container::{ImageConfig, RunOptions, container_spec, run_container};
use executor::{CaptureSink, RunIo, Snapshotter, SnapshotterKind, Status};

fn image() -> ImageConfig {
    ImageConfig {
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec!["echo default".into()]),
        env: vec!["PATH=/bin:/usr/bin".into(), "GREETING=hello".into()],
        working_dir: Some("/srv/app".into()),
        user: Some("app".into()),
    }
}

fn go(opts: &RunOptions) -> (executor::Outcome, String, Option<executor::Snapshot>) {
    let spec = container_spec(&image(), opts, &|k: &str| {
        (k == "FROM_HOST").then(|| "yes".into())
    })
    .unwrap();
    let scratch = workdir("container").join("scratch");
    let mut out = CaptureSink::default();
    let (outcome, snap) = run_container(
        &runtime(),
        &Snapshotter::new(SnapshotterKind::Auto),
        &[busybox_layer()],
        &scratch,
        &spec,
        opts.rm,
        RunIo::new(&mut out),
    )
    .unwrap();
    if opts.rm {
        assert!(
            !scratch.exists(),
            "--rm left the container's scratch directory"
        );
    }
    (
        outcome,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        snap,
    )
}

#[test]
fn image_defaults_apply() {
    let (o, out, snap) = go(&RunOptions {
        rm: true,
        ..Default::default()
    });
    assert!(o.success());
    assert_eq!(out, "default\n");
    assert!(snap.is_none());
}

#[test]
fn arguments_environment_user_workdir_and_hostname() {
    let host = workdir("volume");
    std::fs::write(host.join("input"), "from the host\n").unwrap();
    let (o, out, snap) = go(&RunOptions {
        rm: false,
        args: vec!["id -un; pwd; echo $GREETING $EXTRA $FROM_HOST; cat /etc/hostname; hostname; cat /data/input; exit 4".into()],
        env: vec!["EXTRA=extra".into(), "FROM_HOST".into()],
        volumes: vec![format!("{}:/data:ro", host.display())],
        hostname: Some("smoke".into()),
        ..Default::default()
    });
    assert_eq!(o.status, Status::Exited(4));
    assert_eq!(o.exit_code(), 4);
    assert_eq!(
        out,
        "app\n/srv/app\nhello extra yes\nsmoke\nsmoke\nfrom the host\n"
    );
    // Without --rm the container's writable layer is handed back.
    let snap = snap.expect("the snapshot is kept without --rm");
    assert!(snap.writable_dir().join("srv/app").is_dir());
    snap.discard().unwrap();
}

#[test]
fn entrypoint_override_user_and_workdir_flags() {
    let (o, out, _) = go(&RunOptions {
        rm: true,
        entrypoint: Some("/bin/echo".into()),
        args: vec!["overridden".into()],
        user: Some("0:0".into()),
        workdir: Some("/tmp".into()),
        network: Some("none".into()),
        ..Default::default()
    });
    assert!(o.success());
    assert_eq!(out, "overridden\n");
}

#[test]
fn a_random_hostname_when_none_is_given() {
    let (o, out, _) = go(&RunOptions {
        rm: true,
        args: vec!["hostname; echo $HOSTNAME".into()],
        ..Default::default()
    });
    assert!(o.success());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], lines[1]);
    assert_eq!(lines[0].len(), 12);
    assert!(lines[0].bytes().all(|b| b.is_ascii_hexdigit()));
}
