//! Push and pull against a real registry (Debian's docker-registry on
//! 127.0.0.1), checked with skopeo: round trips keep the image ID, pulls
//! by tag and by digest, chunked uploads, cross-repository mounts,
//! docker-format manifests, images pushed by skopeo, and errors.

mod registry_common;

use std::process::Command;

use registry_common::{assert_empty_store, kiln, two_layer_image};
use testkit::cli::{run_ok, run_stdout};
use testkit::registry::{FaultProxy, TestRegistry};
use testkit::{ArchiveStyle, FixtureImage, sha256};

fn skopeo_raw(reference: &str) -> serde_json::Value {
    let out = run_stdout(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn push_then_pull_into_an_empty_store_keeps_the_image() {
    let reg = TestRegistry::start();
    let a = kiln();
    let img = two_layer_image("app:1");
    a.load(std::slice::from_ref(&img), ArchiveStyle::Docker25);
    let id = a.id("app:1");
    assert_eq!(id, sha256(&img.config_json()));
    let target = format!("{}/team/app:1", reg.host());
    let (out, err) = a.ok_with_stderr(&["push", "app:1", &target]);
    let digest = out.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{out}");
    assert!(err.contains("The push refers to repository"), "{err}");
    assert!(err.contains(&format!("1: digest: {digest}")), "{err}");

    // skopeo sees a valid OCI manifest with gzip layers and our config.
    let m = skopeo_raw(&target);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["config"]["digest"], id);
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    // skopeo copies it out, verifying every digest on the way.
    let oci = a.path("oci");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:x", oci.display()),
    ]));

    // A second push sends nothing: every blob is already there.
    let (out2, err2) = a.ok_with_stderr(&["push", "app:1", &target]);
    assert_eq!(out2, out);
    assert_eq!(err2.matches("Layer already exists").count(), 3, "{err2}");
    assert!(
        !err2.contains("Compressing"),
        "the gzip blob is reused: {err2}"
    );

    // Pull into an empty state directory: same image ID, same layers.
    let b = a.sibling("b");
    let (out, err) = b.ok_with_stderr(&["pull", &target]);
    assert_eq!(out.trim(), target);
    assert!(err.contains(&format!("Digest: {digest}")), "{err}");
    assert!(err.contains("Status: Downloaded newer image"), "{err}");
    assert_eq!(b.id(&target), id);
    let rd = b.ok(&["inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(
        rd.contains(&format!("{}/team/app@{digest}", reg.host())),
        "{rd}"
    );
    let diff_a = a.ok(&["inspect", "-f", "{{json .RootFS}}", "app:1"]);
    let diff_b = b.ok(&["inspect", "-f", "{{json .RootFS}}", &target]);
    assert_eq!(diff_a, diff_b);
    // Same files: the flattened root filesystems are identical.
    let ta = a.ok_with_stderr(&["export", "app:1"]).0.len();
    let tb = b.ok_with_stderr(&["export", &target]).0.len();
    assert_eq!(ta, tb);
    // Pulling again downloads nothing.
    let (_, err) = b.ok_with_stderr(&["pull", &target]);
    assert!(err.contains("Status: Image is up to date"), "{err}");
    assert!(!err.contains("Pull complete"), "{err}");

    // By digest into a third store: untagged, found by name@digest.
    let c = a.sibling("c");
    let by_digest = format!("{}/team/app@{digest}", reg.host());
    let out = c.ok(&["pull", &by_digest]);
    assert_eq!(out.trim(), by_digest);
    assert_eq!(c.id(&by_digest), id);
    let images = c.ok(&["images", "--format", "json"]);
    assert_eq!(images.lines().count(), 1, "{images}");
    assert!(images.contains("\"Tag\":\"<none>\""), "untagged: {images}");
}

#[test]
fn pulls_what_skopeo_pushed_and_pushes_back_unchanged() {
    let reg = TestRegistry::start();
    let a = kiln();
    // A docker-archive written by testkit, pushed by skopeo (docker v2s2,
    // gzip layers compressed by skopeo).
    let img = FixtureImage::busybox("sk:1");
    let archive = a.path("sk.tar");
    testkit::write_docker_archive(
        &archive,
        std::slice::from_ref(&img),
        testkit::ArchiveStyle::Legacy,
        false,
    )
    .unwrap();
    let src = format!("{}/skopeo/busybox:1", reg.host());
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{src}"),
    ]));
    let skopeo_manifest = skopeo_raw(&src);
    assert_eq!(
        skopeo_manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    // Through a (fault-free) proxy, to see the requests.
    let proxy = FaultProxy::start(reg.host());
    let via = |r: &str| r.replacen(reg.host(), proxy.host(), 1);
    let (_, err) = a.ok_with_stderr(&["pull", &via(&src)]);
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(a.id(&via(&src)), sha256(&img.config_json()));

    // Pushed to another repository of the same registry: the layer is
    // mounted, not uploaded, and the manifest (so its digest) is kept.
    let dst = format!("{}/copies/busybox:1", reg.host());
    let (out, err) = a.ok_with_stderr(&["push", &via(&src), &via(&dst)]);
    assert!(err.contains("Mounted"), "{err}");
    let log = proxy.log().join("\n");
    assert!(log.contains("mount=") && log.contains("-> 201"), "{log}");
    let original = run_stdout(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{src}"),
    ]));
    assert_eq!(out.trim(), original.trim());
    assert_eq!(skopeo_raw(&dst), skopeo_manifest);
}

#[test]
fn chunked_uploads_docker_format_and_uncompressed_layers() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.host());
    let a = kiln().var("KILN_REGISTRY_CHUNK_SIZE", "256k");
    let img = FixtureImage::busybox("big:1");
    a.load(std::slice::from_ref(&img), ArchiveStyle::Docker25);
    let target = format!("{}/chunked:1", proxy.host());
    a.ok(&[
        "push",
        "--compression",
        "uncompressed",
        "--format",
        "docker",
        "big:1",
        &target,
    ]);
    let log = proxy.log();
    let patches = log.iter().filter(|l| l.starts_with("PATCH ")).count();
    let layer_len = img.layers[0].len() as u64;
    assert_eq!(
        patches as u64,
        layer_len.div_ceil(256 << 10),
        "one PATCH per 256 KiB chunk: {log:#?}"
    );
    let m = skopeo_raw(&target.replacen(proxy.host(), reg.host(), 1));
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    // The uncompressed layer's blob digest is its diffID.
    assert_eq!(m["layers"][0]["digest"], sha256(&img.layers[0]));
    let b = a.sibling("b");
    b.ok(&["pull", &target]);
    assert_eq!(b.id(&target), sha256(&img.config_json()));
}

#[test]
fn multi_platform_index_selection() {
    let reg = TestRegistry::start();
    let a = kiln();
    let host_arch = testkit::host_arch();
    let other = if host_arch == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let img = FixtureImage::busybox("multi:1");
    let layout = a.path("layout");
    let digests = testkit::registry::write_oci_index_layout(
        &layout,
        &[(&img, host_arch), (&img, other)],
        "1",
    )
    .unwrap();
    let target = format!("{}/multi:1", reg.host());
    run_ok(Command::new("skopeo").args([
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:1", layout.display()),
        &format!("docker://{target}"),
    ]));
    let index = skopeo_raw(&target);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");

    // Default: this machine's platform.
    a.ok(&["pull", &target]);
    let arch = a.ok(&["inspect", "-f", "{{.Architecture}}", &target]);
    assert_eq!(arch.trim(), host_arch);
    let md = a.ok(&["inspect", "-f", "{{json .Descriptor}}", &target]);
    assert!(md.contains(&digests[0]), "{md}");

    // --platform picks the other one; the tag moves to it.
    let b = a.sibling("b");
    let (_, err) = b.ok_with_stderr(&["pull", "--platform", &format!("linux/{other}"), &target]);
    assert!(err.contains("Pull complete"), "{err}");
    let arch = b.ok(&["inspect", "-f", "{{.Architecture}}", &target]);
    assert_eq!(arch.trim(), other);
    // The repo digest is the index's, as docker records it.
    let index_digest = run_stdout(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    let index_digest = sha256(index_digest.as_bytes());
    let rd = b.ok(&["inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(rd.contains(&index_digest), "{rd} vs {index_digest}");

    // A platform the index lacks: a clear error, nothing stored.
    let c = a.sibling("c");
    let err = c.fails(&["pull", "--platform", "linux/s390x", &target]);
    assert!(
        err.contains("no matching manifest for linux/s390x")
            && err.contains(&format!("linux/{host_arch}"))
            && err.contains(&format!("linux/{other}")),
        "{err}"
    );
    assert_empty_store(&c);
    let err = c.fails(&["pull", "--platform", "linux/", &target]);
    assert!(err.contains("invalid platform"), "{err}");
}

#[test]
fn errors_name_what_is_missing() {
    let reg = TestRegistry::start();
    let a = kiln();
    let err = a.fails(&["pull", &format!("{}/nope:1", reg.host())]);
    assert!(
        err.contains(&format!("manifest for {}/nope:1: not found", reg.host())),
        "{err}"
    );
    assert_empty_store(&a);
    let err = a.fails(&["push", "missing:1", &format!("{}/x:1", reg.host())]);
    assert!(err.contains("no such image: missing:1"), "{err}");
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = a.fails(&["pull", &format!("127.0.0.1:{port}/x:1")]);
    assert!(
        err.contains(&format!("GET http://127.0.0.1:{port}/v2/x/manifests/1")),
        "{err}"
    );
    let err = a.fails(&["pull", "Bad/Name"]);
    assert!(err.contains("invalid reference format"), "{err}");
}
