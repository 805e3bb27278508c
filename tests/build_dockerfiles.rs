//! `kiln build` end to end on the Dockerfiles of `testdata/dockerfiles/`,
//! on the testkit busybox base loaded with `kiln load`: the resulting
//! filesystems (`kiln export`, `kiln run`) and configs (the stored config
//! blob, `kiln inspect`) are checked against BuildKit's semantics.
//! Needs root (namespaces, overlayfs).

mod build_common;

use build_common::{Kiln, outcome};
use serde_json::json;
use testkit::cli::{run_ok, run_ok_with_stdin};

#[test]
fn basic_image_config_history_and_files() {
    let k = Kiln::with_case("basic");
    let progress = k.build(&["-t", "basic:1"]);
    assert!(progress.contains("hello from the context"), "{progress}");
    assert_eq!(k.ok(&["run", "--rm", "basic:1"]), "hello world\n");
    let files = k.files("basic:1");
    assert_eq!(files["app/hello.txt"].data, b"hello from the context\n");
    assert_eq!(files["app"].mode, 0o755);

    let c = k.config_json("basic:1");
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "architecture",
            "config",
            "created",
            "history",
            "moby.buildkit.cache.v0",
            "os",
            "rootfs"
        ],
        "top-level keys sorted as BuildKit writes them (with its inline cache)"
    );
    assert_eq!(c["os"], "linux");
    assert_eq!(c["architecture"], testkit::host_arch());
    assert_eq!(
        c["config"],
        json!({
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "GREETING=hello",
                "TARGET=world"
            ],
            "Cmd": ["cat", "/app/greeting"],
            "WorkingDir": "/app",
            "ArgsEscaped": true
        })
    );
    let h = c["history"].as_array().unwrap();
    let created_by: Vec<&str> = h
        .iter()
        .map(|e| e["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        created_by,
        [
            "testkit fixture",
            "ENV GREETING=hello TARGET=world",
            "WORKDIR /app",
            "COPY hello.txt . # buildkit",
            "RUN /bin/sh -c echo \"$GREETING $TARGET\" > /app/greeting && cat hello.txt # buildkit",
            "CMD [\"cat\" \"/app/greeting\"]",
        ]
    );
    let empty: Vec<bool> = h
        .iter()
        .map(|e| e["empty_layer"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(empty, [false, true, false, false, false, true]);
    for e in &h[1..] {
        assert_eq!(e["comment"], "buildkit.dockerfile.v0");
        assert!(e["created"].is_string());
    }
    assert_eq!(
        c["created"], h[5]["created"],
        "config created = last entry's"
    );
    assert_eq!(
        h[0]["created"], "2023-11-14T22:13:20Z",
        "base entries keep their time"
    );
    let diff_ids = c["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 4, "base + WORKDIR + COPY + RUN");
    assert_eq!(k.inspect("basic:1")["RepoTags"], json!(["basic:1"]));
}

#[test]
fn copy_and_add_semantics() {
    let k = Kiln::with_case("copy");
    k.build(&["-t", "copy:1"]);
    let f = k.files("copy:1");
    let has = |p: &str| f.contains_key(p);
    // Directory contents, not the directory.
    assert!(has("dst/dir/a.txt") && has("dst/dir/sub/b.txt"));
    assert!(!has("dst/dir/dir"));
    assert_eq!(f["dst/file.txt"].data, b"file\n");
    assert_eq!(f["dst/renamed.txt"].data, b"file\n");
    assert!(has("deep/new/parents/one.md") && has("deep/new/parents/two.md"));
    assert_eq!(f["deep/new"].mode, 0o755);
    // Ownership resolved in the image's /etc/passwd and /etc/group.
    assert_eq!((f["own/byname"].uid, f["own/byname"].gid), (1000, 50));
    assert_eq!((f["own/byid"].uid, f["own/byid"].gid), (1234, 4321));
    assert_eq!((f["own/useronly"].uid, f["own/useronly"].gid), (1000, 1000));
    assert_eq!(f["own/mode"].mode, 0o750);
    assert_eq!(f["own/symbolic"].mode, 0o704);
    assert_eq!(f["linked/file.txt"].data, b"file\n");
    // --parents keeps the path below the pivot; --exclude drops matches.
    assert!(
        has("parents/sub/b.txt"),
        "{:?}",
        f.keys()
            .filter(|k| k.starts_with("parents"))
            .collect::<Vec<_>>()
    );
    assert!(has("excluded/a.txt") && !has("excluded/c.skip"));
    // Symlinked sources are followed.
    assert_eq!(f["followed"].kind, 'f');
    assert_eq!(f["followed"].data, b"file\n");
    // Context files arrive owned by root.
    assert_eq!((f["dst/file.txt"].uid, f["dst/file.txt"].gid), (0, 0));
    // Onto the image's own paths: through its symlink (which stays one),
    // into an existing directory (its mode and owner kept), over a file.
    assert_eq!(f["via-link"].kind, 'l');
    assert_eq!(f["srv/real/file.txt"].data, b"file\n");
    assert!(!has("via-link/file.txt"));
    assert_eq!(
        (f["keep"].mode, f["keep"].uid, f["keep"].gid),
        (0o700, 5, 5)
    );
    assert!(has("keep/a.txt") && has("keep/sub/b.txt"));
    assert_eq!(f["replaced"].kind, 'f');
    assert_eq!(f["replaced"].data, b"file\n");
    // --link made a layer of its own with only its file.
    let c = k.config_json("copy:1");
    let h = c["history"].as_array().unwrap();
    assert!(
        h.iter()
            .any(|e| e["created_by"] == "COPY file.txt /linked/file.txt # buildkit")
    );
}

#[test]
fn workdir_and_user() {
    let k = Kiln::with_case("workdir_user");
    k.build(&["-t", "wu:1"]);
    let f = k.files("wu:1");
    // WORKDIR creates the directory, owned by the current USER.
    assert_eq!(
        (f["home/app/work"].uid, f["home/app/work"].gid),
        (1000, 1000)
    );
    assert_eq!(f["home/app/work/uid"].data, b"1000\n");
    assert_eq!(f["home/app/work/pwd"].data, b"/home/app/work\n");
    assert_eq!(f["home/app/work/made-by-app"].uid, 1000);
    assert_eq!(f["pwd2"].data, b"/home/app/work/sub\n");
    let c = k.config_json("wu:1");
    assert_eq!(c["config"]["User"], "1234:50");
    assert_eq!(c["config"]["WorkingDir"], "/home/app/work/sub");
}

#[test]
fn config_instructions_match_buildkit() {
    let k = Kiln::with_case("config");
    k.build(&["-t", "cfg:1"]);
    let c = k.config_json("cfg:1");
    let cfg = &c["config"];
    assert_eq!(cfg["Labels"], json!({"b": "two", "org.example.a": "1"}));
    assert_eq!(
        cfg["ExposedPorts"],
        json!({"443/udp": {}, "80/tcp": {}, "8000/tcp": {}, "8001/tcp": {}})
    );
    assert_eq!(cfg["Volumes"], json!({"/cache": {}, "/data": {}}));
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert_eq!(
        cfg["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
            "Interval": 5_000_000_000u64,
            "Timeout": 3_000_000_000u64,
            "Retries": 2
        })
    );
    assert_eq!(cfg["Shell"], json!(["/bin/sh", "-ec"]));
    // ENTRYPOINT after CMD in the same stage keeps the CMD.
    assert_eq!(cfg["Cmd"], json!(["from-cmd"]));
    assert_eq!(cfg["Entrypoint"], json!(["/bin/echo", "ep"]));
    assert_eq!(cfg["User"], "app");
    assert_eq!(k.files("cfg:1")["shell"].data, b"shell is /bin/sh\n");
    let h = c["history"].as_array().unwrap();
    let last: Vec<&str> = h[h.len() - 3..]
        .iter()
        .map(|e| e["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        last,
        [
            "CMD [\"from-cmd\"]",
            "ENTRYPOINT [\"/bin/echo\" \"ep\"]",
            "USER app"
        ]
    );
    assert!(
        h.iter()
            .any(|e| e["created_by"] == "RUN /bin/sh -ec echo \"shell is $0\" > /shell # buildkit"),
        "SHELL changes the RUN prefix: {h:?}"
    );
    // An image built FROM this one: its ENTRYPOINT resets the inherited CMD.
    k.write(
        "child/Dockerfile",
        "FROM cfg:1\nENTRYPOINT [\"/bin/echo\", \"child\"]\n",
    );
    let ctx = k.ctx.join("child");
    k.ok(&["build", "-q", "-t", "cfg:child", ctx.to_str().unwrap()]);
    let c = k.config_json("cfg:child");
    assert!(c["config"].get("Cmd").is_none(), "{}", c["config"]);
    assert_eq!(k.ok(&["run", "--rm", "cfg:child"]), "child\n");
}

#[test]
fn heredocs() {
    let k = Kiln::with_case("heredoc");
    k.build(&["-t", "hd:1"]);
    let f = k.files("hd:1");
    assert_eq!(f["run.txt"].data, b"run heredoc\nline2\n");
    assert_eq!(f["script.txt"].data[..7], *b"script ");
    assert_eq!(f["copied.txt"].data, b"copy heredoc\n");
    assert_eq!(f["quoted.txt"].data, b"not ${NAME}\n");
    assert_eq!(f["copied.txt"].mode, 0o644);
}

#[test]
fn multistage_and_target() {
    let k = Kiln::with_case("multistage");
    let p = k.build(&["-t", "ms:1"]);
    // The unused stage (which would fail) is not built.
    assert!(!p.contains("[unused"), "{p}");
    let f = k.files("ms:1");
    assert_eq!(f["artifact"].data, b"built\n");
    assert_eq!(f["base.txt"].data, b"base\n");
    assert!(!f.contains_key("side"));
    let p = k.build(&["--target", "build", "-t", "ms:build"]);
    assert!(!p.contains("COPY --from"), "{p}");
    let f = k.files("ms:build");
    assert_eq!(f["side"].data, b"side\n");
    assert_eq!(f["base.txt"].data, b"base\n");
    // An unknown target is an error, and nothing is tagged.
    let err = k.build_fails(&["--target", "nope", "-t", "ms:nope"]);
    assert!(err.contains("nope"), "{err}");
    let err = k.fails(&["inspect", "ms:nope"]);
    assert!(err.contains("ms:nope"), "{err}");
}

#[test]
fn run_mounts() {
    let k = Kiln::with_case("mounts");
    let secret = k.path("secret.txt");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let src = format!("id=tok,src={}", secret.display());
    let out = run_ok(
        k.build_cmd(&[
            "--secret",
            &src,
            "--secret",
            "id=envtok,env=KILN_TEST_TOKEN",
            "-t",
            "mnt:1",
        ])
        .env("KILN_TEST_TOKEN", "env-s3cr3t"),
    );
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    let f = k.files("mnt:1");
    assert_eq!(f["cache-count"].data, b"1\n");
    assert_eq!(f["from-bind"].data, b"bind input\n");
    assert_eq!(f["from-stage"].data, b"seeded\n");
    assert_eq!(f["rw-bind"].data, b"scribble\n");
    assert_eq!(f["tmpfs-count"].data, b"1\n");
    assert_eq!(f["secret-len"].data, b"12\n");
    assert_eq!(f["env-secret-len"].data, b"10\n");
    assert_eq!(f["c2-stat"].data, b"1000 700\n");
    // rw bind writes are thrown away: the context is untouched.
    assert_eq!(
        std::fs::read_to_string(k.ctx.join("input.txt")).unwrap(),
        "bind input\n"
    );
    // Mount targets and contents never reach a layer.
    for p in ["cache", "ctx", "seed", "scratch", "run/secrets", "c2"] {
        assert!(!f.contains_key(p), "{p} leaked into the image");
    }
    // Secrets are nowhere: not in the layers, the config, the logs, the
    // build cache.
    let export = std::fs::read(k.path("export.tar")).unwrap();
    assert!(!contains(&export, b"s3cr3t"));
    assert!(!progress.contains("s3cr3t"));
    assert!(!grep_dir(&k.root, b"s3cr3t"), "a secret is in the store");

    // The cache mount persists across builds: a --no-cache rebuild sees it.
    run_ok(
        k.build_cmd(&[
            "--no-cache",
            "--secret",
            &src,
            "--secret",
            "id=envtok,env=KILN_TEST_TOKEN",
            "-t",
            "mnt:2",
        ])
        .env("KILN_TEST_TOKEN", "env-s3cr3t"),
    );
    assert_eq!(k.files("mnt:2")["cache-count"].data, b"2\n");

    // A required secret that was not given fails the step, naming it.
    let err = k.build_fails(&["-t", "mnt:3", "--no-cache"]);
    assert!(err.contains("secret tok not found"), "{err}");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn grep_dir(dir: &std::path::Path, needle: &[u8]) -> bool {
    let out = std::process::Command::new("grep")
        .args(["-r", "-a", "-l", "-F"])
        .arg(std::str::from_utf8(needle).unwrap())
        .arg(dir)
        .output()
        .unwrap();
    !out.stdout.is_empty()
}

#[test]
fn build_args() {
    let k = Kiln::with_case("args");
    let out = run_ok(
        k.cmd(&[
            "build",
            "-q",
            "--build-arg",
            "PLAIN=p1",
            "--build-arg",
            "FROM_ENV",
            "--build-arg",
            "UNSET_IN_ENV",
            "-t",
            "args:1",
            k.ctx.to_str().unwrap(),
        ])
        .env("FROM_ENV", "e1")
        .env_remove("UNSET_IN_ENV"),
    );
    // -q prints only the image ID.
    let id = String::from_utf8(out.stdout).unwrap();
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "{id}"
    );
    assert_eq!(
        k.file("args:1", "/args"),
        "plain=p1 default=default-value env=e1\n"
    );
    let c = k.config_json("args:1");
    assert!(
        c["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&json!("FROM_ARG=default-value"))
    );
    // ARGs are in the RUN's history line, not in the config's Env.
    let h = c["history"].as_array().unwrap();
    assert!(
        h.iter().any(|e| e["created_by"]
            .as_str()
            .unwrap()
            .starts_with("RUN |3 PLAIN=p1 WITH_DEFAULT=default-value FROM_ENV=e1 /bin/sh -c")),
        "{h:?}"
    );
}

#[test]
fn onbuild_triggers_run_in_children() {
    let k = Kiln::with_case("onbuild");
    k.build(&["-t", "ob:parent"]);
    let c = k.config_json("ob:parent");
    assert_eq!(
        c["config"]["OnBuild"],
        json!([
            "RUN echo triggered > /onbuild.txt",
            "COPY child.txt /child.txt"
        ])
    );
    std::fs::write(
        k.ctx.join("Dockerfile"),
        "FROM ob:parent\nRUN cat /onbuild.txt\n",
    )
    .unwrap();
    k.build(&["-t", "ob:child"]);
    let f = k.files("ob:child");
    assert_eq!(f["onbuild.txt"].data, b"triggered\n");
    assert_eq!(f["child.txt"].data, b"from the child's context\n");
    assert!(k.config_json("ob:child")["config"].get("OnBuild").is_none());
}

#[test]
fn independent_stages_run_concurrently() {
    let k = Kiln::with_case("parallel");
    k.build(&["--jobs", "4", "-t", "par:1"]);
    let f = k.files("par:1");
    let num = |p: &str| -> f64 { String::from_utf8_lossy(&f[p].data).trim().parse().unwrap() };
    let (a0, a1, b0, b1) = (num("a-start"), num("a-end"), num("b-start"), num("b-end"));
    assert!(
        a0 < b1 && b0 < a1,
        "the two stages' RUNs overlap in time: a {a0}..{a1}, b {b0}..{b1}"
    );
    // With one job they do not.
    let k1 = Kiln::with_case("parallel");
    k1.build(&["--jobs", "1", "-t", "par:1"]);
    let f = k1.files("par:1");
    let num = |p: &str| -> f64 { String::from_utf8_lossy(&f[p].data).trim().parse().unwrap() };
    let (a0, a1, b0, b1) = (num("a-start"), num("a-end"), num("b-start"), num("b-end"));
    assert!(a1 <= b0 || b1 <= a0, "--jobs 1 runs one step at a time");
}

#[test]
fn failed_run_reports_step_line_code_and_output() {
    let k = Kiln::with_case("failing");
    let out = k.build_output(&["-t", "fail:1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not complete successfully: exit code: 3"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exit 3"), "{err}");
    assert!(
        err.contains("some output") && err.contains("more output"),
        "{err}"
    );
    assert!(!err.contains("never"), "{err}");
    assert_eq!(outcome(&err, "RUN echo before"), "DONE");
    // Nothing was tagged.
    k.fails(&["inspect", "fail:1"]);
    assert!(k.mounts_under_root().is_empty());
}

#[test]
fn dockerfile_from_stdin_and_tar_context() {
    let k = Kiln::new();
    // `-f -`: the Dockerfile on stdin, the context a directory.
    k.write("data.txt", "ctx data\n");
    run_ok_with_stdin(
        &mut k.cmd(&[
            "build",
            "-q",
            "-f",
            "-",
            "-t",
            "stdin:1",
            k.ctx.to_str().unwrap(),
        ]),
        b"FROM busybox\nCOPY data.txt /\n",
    );
    assert_eq!(k.file("stdin:1", "/data.txt"), "ctx data\n");

    // `-`: a tar context on stdin, with its Dockerfile.
    let mut tarball = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", &b"FROM busybox\nCOPY in-tar.txt /\n"[..]),
        ("in-tar.txt", b"from tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tarball.append_data(&mut h, name, data).unwrap();
    }
    let bytes = tarball.into_inner().unwrap();
    run_ok_with_stdin(&mut k.cmd(&["build", "-q", "-t", "stdin:2", "-"]), &bytes);
    assert_eq!(k.file("stdin:2", "/in-tar.txt"), "from tar\n");
}

#[test]
fn outputs_labels_and_iidfile() {
    let k = Kiln::with_case("basic");
    let iid = k.path("iid");
    let dest = k.path("out-dir");
    k.build(&[
        "--label",
        "x=1",
        "--iidfile",
        iid.to_str().unwrap(),
        "-o",
        dest.to_str().unwrap(),
        "-t",
        "o:1",
    ]);
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(k.inspect("o:1")["Id"], id.as_str());
    assert_eq!(k.config_json("o:1")["config"]["Labels"], json!({"x": "1"}));
    assert_eq!(
        std::fs::read_to_string(dest.join("app/greeting")).unwrap(),
        "hello world\n"
    );
    let tar_path = k.path("fs.tar");
    let spec = format!("type=tar,dest={}", tar_path.display());
    k.build(&["-o", &spec]);
    let mut ar = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
    assert!(
        ar.entries()
            .unwrap()
            .any(|e| e.unwrap().path().unwrap().ends_with("app/greeting"))
    );
    let archive = k.path("img.tar");
    let spec = format!("type=docker,dest={}", archive.display());
    k.build(&["-o", &spec, "-t", "o:2"]);
    // The archive loads into a fresh store.
    let k2 = Kiln::empty();
    k2.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(k2.ok(&["run", "--rm", "o:2"]), "hello world\n");
}

/// Serves `body` at every path on 127.0.0.1 until the returned guard is
/// dropped; returns the base URL.
fn serve(body: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    (url, hits)
}

#[test]
fn add_extracts_archives_and_downloads_urls() {
    let k = Kiln::with_case("add");
    // A gzip tar with a file and a directory.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("top.txt", &b"top\n"[..]), ("d/inner.txt", b"inner\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let raw = b.into_inner().unwrap();
    std::fs::write(k.ctx.join("archive.tar.gz"), testkit::gzip(&raw)).unwrap();
    const BODY: &[u8] = b"downloaded bytes\n";
    let (url, hits) = serve(BODY);
    let sum = testkit::sha256(BODY);
    let url_arg = format!("URL={url}");
    let sum_arg = format!("SUM={sum}");
    k.build(&[
        "--build-arg",
        &url_arg,
        "--build-arg",
        &sum_arg,
        "-t",
        "add:1",
    ]);
    let f = k.files("add:1");
    assert_eq!(f["unpacked/top.txt"].data, b"top\n");
    assert_eq!(f["unpacked/top.txt"].mode, 0o640);
    assert_eq!(f["unpacked/d/inner.txt"].data, b"inner\n");
    assert_eq!(
        f["kept/not-an-archive.tar"].data,
        b"plain text, not a tar\n"
    );
    assert_eq!(f["copied/archive.tar.gz"].kind, 'f');
    assert_eq!(f["dl/data.bin"].data, BODY);
    assert_eq!(f["dl/data.bin"].mode, 0o600);
    assert_eq!(f["renamed.bin"].data, BODY);
    // Rebuild: the URL with a checksum is not fetched again; the other one
    // is (its content decides its key), and both steps are cached.
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    let p = k.build(&[
        "--build-arg",
        &url_arg,
        "--build-arg",
        &sum_arg,
        "-t",
        "add:1",
    ]);
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        before + 1,
        "{p}"
    );
    assert_eq!(build_common::outcome(&p, "ADD --checksum"), "CACHED");
    assert_eq!(build_common::outcome(&p, "/renamed.bin"), "CACHED");
    // A wrong checksum fails the build, naming the URL.
    let bad = format!("SUM=sha256:{}", "0".repeat(64));
    let err = k.build_fails(&["--build-arg", &url_arg, "--build-arg", &bad]);
    assert!(err.contains("checksum") && err.contains(&url), "{err}");
}

#[test]
fn copy_link_with_chown_by_name_is_refused_clearly() {
    let k = Kiln::new();
    k.write("f.txt", "x\n");
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY --link --chown=app f.txt /f\n",
    );
    let err = k.build_fails(&["-t", "link:1"]);
    assert!(
        err.contains("--chown=app with --link") && err.contains("Dockerfile:2"),
        "{err}"
    );
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY --link --chown=1000:50 f.txt /f\n",
    );
    k.build(&["-t", "link:2"]);
    let f = k.files("link:2");
    assert_eq!((f["f"].uid, f["f"].gid), (1000, 50));
}

#[test]
fn source_date_epoch_gives_the_same_image_in_two_state_directories() {
    let a = Kiln::with_case("basic");
    // A RUN that writes files "now", a WORKDIR, a COPY: all clamped.
    std::fs::write(
        a.ctx.join("Dockerfile"),
        "FROM busybox\nWORKDIR /app\nCOPY hello.txt .\nRUN echo built > /app/out && mkdir -p /var/made\nCMD [\"cat\", \"/app/out\"]\n",
    )
    .unwrap();
    let b = Kiln::new();
    let ctx = a.ctx.to_str().unwrap().to_string();
    let build = |k: &Kiln, how: &str| -> String {
        let mut c = k.cmd(&["build", "-q", "-t", "repro:1"]);
        match how {
            "arg" => {
                c.args(["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
            }
            _ => {
                c.env("SOURCE_DATE_EPOCH", "1700000000");
            }
        }
        let out = run_ok(c.arg(&ctx));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let id_a = build(&a, "arg");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let id_b = build(&b, "env");
    assert_eq!(
        id_a, id_b,
        "same image digest from two clean state directories"
    );
    let c = a.config_json("repro:1");
    assert_eq!(c["created"], "2023-11-14T22:13:20Z");
    for h in c["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z", "{h}");
    }
    // Timestamps in the image's layers are clamped too. A context copy's
    // layer is lazy: `save` writes its blob (from the regenerated tar,
    // checked against the diffID) before it is read here.
    let saved = a.path("repro.tar");
    a.ok(&["save", "-o", saved.to_str().unwrap(), "repro:1"]);
    for d in c["rootfs"]["diff_ids"].as_array().unwrap().iter().skip(1) {
        let hex = d.as_str().unwrap().trim_start_matches("sha256:");
        let tar = std::fs::read(a.root.join("blobs/sha256").join(hex)).unwrap();
        let mut ar = tar::Archive::new(&tar[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert!(
                e.header().mtime().unwrap() <= 1_700_000_000,
                "{:?} has a later mtime",
                e.path().unwrap()
            );
        }
    }
    // Without it, a rebuild in a fresh store gives another image.
    let c2 = Kiln::new();
    let out = run_ok(
        c2.cmd(&["build", "-q", &ctx])
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), id_a);
}
