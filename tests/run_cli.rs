//! `kiln run` end to end, on the testkit busybox image loaded with
//! `kiln load` (needs root: namespaces, overlayfs).

mod build_common;

use build_common::Kiln;

/// Imports the busybox layer as `name` with `--change` instructions.
fn import_with(k: &Kiln, name: &str, changes: &[&str]) {
    let tar = k.path(&format!("{}.tar", name.replace([':', '/'], "_")));
    std::fs::write(&tar, testkit::busybox_layer()).unwrap();
    let mut args = vec!["import"];
    for c in changes {
        args.push("-c");
        args.push(c);
    }
    let tar_s = tar.to_str().unwrap().to_string();
    args.push(&tar_s);
    args.push(name);
    k.ok(&args);
}

#[test]
fn runs_a_command_and_passes_its_output() {
    let k = Kiln::new();
    let before = k.mounts_under_root();
    assert_eq!(
        k.ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    let out = k.output(&["run", "busybox", "sh", "-c", "echo out; echo err >&2"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Nothing stays mounted, nothing stays in the scratch area.
    assert_eq!(k.mounts_under_root(), before);
    for e in k.tmp_entries() {
        assert!(!e.ends_with(".lock"), "left behind in tmp/: {e}");
    }
}

#[test]
fn exit_status_is_the_containers() {
    let k = Kiln::new();
    let (code, _) = k.fails_with_code(&["run", "--rm", "busybox", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let (code, err) = k.fails_with_code(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let (code, err) = k.fails_with_code(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    let (code, err) = k.fails_with_code(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such-image"), "{err}");
    let (code, _) = k.fails_with_code(&["run", "--rm", "busybox", "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, 137);
}

#[test]
fn entrypoint_and_cmd_follow_docker() {
    let k = Kiln::new();
    import_with(
        &k,
        "ep:1",
        &[r#"ENTRYPOINT ["echo", "ep"]"#, r#"CMD ["default"]"#],
    );
    assert_eq!(k.ok(&["run", "--rm", "ep:1"]), "ep default\n");
    assert_eq!(k.ok(&["run", "--rm", "ep:1", "x", "y"]), "ep x y\n");
    // --entrypoint replaces the entrypoint and drops the image's CMD.
    assert_eq!(k.ok(&["run", "--rm", "--entrypoint", "echo", "ep:1"]), "\n");
    assert_eq!(
        k.ok(&["run", "--rm", "--entrypoint", "echo", "ep:1", "z"]),
        "z\n"
    );
    // Shell-form CMD of an image without entrypoint.
    import_with(&k, "cmd:1", &["CMD echo from-cmd $HOME"]);
    assert_eq!(k.ok(&["run", "--rm", "cmd:1"]), "from-cmd /root\n");
    // No command at all.
    import_with(&k, "nocmd:1", &[]);
    let (code, err) = k.fails_with_code(&["run", "--rm", "nocmd:1"]);
    assert_eq!(code, 125);
    assert!(err.contains("no command"), "{err}");
}

#[test]
fn environment_from_image_flags_and_files() {
    let k = Kiln::new();
    import_with(&k, "env:1", &["ENV A=image B=image"]);
    let envfile = k.path("env.list");
    std::fs::write(&envfile, "# comment\nB=file\nC=file\nFROM_HOST\n").unwrap();
    let out = testkit::cli::run_ok(
        k.cmd(&[
            "run",
            "--rm",
            "--env-file",
            envfile.to_str().unwrap(),
            "-e",
            "C=flag",
            "-e",
            "FROM_HOST2",
            "env:1",
            "sh",
            "-c",
            "echo $A $B $C $FROM_HOST $FROM_HOST2 $PATH",
        ])
        .env("FROM_HOST", "h1")
        .env("FROM_HOST2", "h2"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "image file flag h1 h2 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
}

#[test]
fn volumes_workdir_user_hostname() {
    let k = Kiln::new();
    let host = k.path("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let v = format!("{}:/data", host.display());
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-v",
            &v,
            "busybox",
            "sh",
            "-c",
            "cat /data/in; echo back > /data/out"
        ]),
        "from host\n"
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "back\n");
    let ro = format!("{}:/data:ro", host.display());
    let (code, _) = k.fails_with_code(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "echo x > /data/out2",
    ]);
    assert_ne!(code, 0);
    assert!(!host.join("out2").exists());

    assert_eq!(
        k.ok(&["run", "--rm", "-w", "/new/dir", "busybox", "pwd"]),
        "/new/dir\n"
    );
    assert_eq!(
        k.ok(&["run", "--rm", "-u", "app", "busybox", "id"]),
        "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n"
    );
    assert_eq!(
        k.ok(&["run", "--rm", "-u", "1234:50", "busybox", "id"]),
        "uid=1234 gid=50(staff) groups=50(staff)\n"
    );
    assert_eq!(
        k.ok(&["run", "--rm", "--hostname", "box1", "busybox", "hostname"]),
        "box1\n"
    );
}

#[test]
fn network_none_sees_only_loopback() {
    let k = Kiln::new();
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(out, "lo\n");
    let (code, err) = k.fails_with_code(&["run", "--rm", "--network", "bridge", "busybox", "true"]);
    assert_eq!(code, 125, "{err}");
}

#[test]
fn limits_are_accepted_and_validated() {
    let k = Kiln::new();
    assert_eq!(
        k.ok(&[
            "run", "--rm", "--memory", "64m", "--cpus", "0.5", "busybox", "echo", "ok"
        ]),
        "ok\n"
    );
    let (code, err) = k.fails_with_code(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("memory"), "{err}");
}
