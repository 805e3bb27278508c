//! Round trips through real tools: archives written by testkit (not by
//! kiln) are loaded, saved by kiln, and read back by skopeo and umoci; the
//! root filesystem umoci unpacks must equal kiln's `export`.

mod store_common;

use std::process::Command;

use store_common::{Kiln, kiln};
use testkit::cli::{require, run_ok, run_ok_with_stdin, run_stdout};
use testkit::fs::{tar_dir, tree, untar};
use testkit::{ArchiveStyle, FixtureImage};

/// busybox plus a second layer that deletes, replaces and adds files.
fn layered_image(tag: &str) -> FixtureImage {
    use testkit::rawtar::RawEntry as E;
    let mut img = FixtureImage::busybox(tag);
    img.layers.push(testkit::rawtar::raw_tar(&[
        E::file("etc/.wh.group", b""),
        E::dir("home/"),
        E::file("home/.wh..wh..opq", b""),
        E::dir("home/other/"),
        E::file("home/other/notes", b"notes\n"),
        E::new(
            "usr/bin/suid",
            tar::EntryType::Regular,
            b"#!/bin/sh\n",
            "",
            0o4755,
        ),
        E::hardlink("usr/bin/suid-link", "usr/bin/suid"),
        E::file("etc/motd", b"welcome\n"),
    ]));
    img
}

fn load_fixture(k: &Kiln, style: ArchiveStyle, gzip: bool) {
    let archive = k.path("in.tar");
    testkit::write_docker_archive(&archive, &[layered_image("app:1")], style, gzip).unwrap();
    let out = k.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: app:1\n");
}

#[test]
fn saved_archive_is_read_by_skopeo_and_umoci_and_matches_export() {
    require("skopeo");
    require("umoci");
    testkit::require_busybox();
    for (style, gzip) in [
        (ArchiveStyle::Legacy, true),
        (ArchiveStyle::Docker25, false),
    ] {
        let k = kiln();
        load_fixture(&k, style, gzip);
        let saved = k.path("saved.tar");
        k.ok(&["save", "-o", saved.to_str().unwrap(), "app:1"]);

        // skopeo reads it as a docker-archive.
        let info = run_stdout(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("docker-archive:{}", saved.display())),
        );
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["Layers"].as_array().unwrap().len(), 2, "{info}");
        let id = k.ok(&["inspect", "-f", "{{.Id}}", "app:1"]);
        let raw_cfg = run_stdout(
            Command::new("skopeo")
                .args(["inspect", "--config", "--raw"])
                .arg(format!("docker-archive:{}", saved.display())),
        );
        assert_eq!(
            testkit::sha256(raw_cfg.as_bytes()),
            id.trim(),
            "config bytes survive"
        );

        // skopeo copies it to an OCI directory; umoci unpacks that.
        let oci = k.path("oci");
        run_ok(
            Command::new("skopeo")
                .arg("copy")
                .arg(format!("docker-archive:{}", saved.display()))
                .arg(format!("oci:{}:app", oci.display())),
        );
        let via_skopeo = k.path("bundle-skopeo");
        umoci_unpack(&format!("{}:app", oci.display()), &via_skopeo);

        // umoci also unpacks kiln's own OCI layout (the same tar).
        let layout = k.path("layout");
        untar(&saved, &layout);
        let via_kiln = k.path("bundle-kiln");
        umoci_unpack(&format!("{}:1", layout.display()), &via_kiln);

        // kiln export, extracted, is the same tree.
        let exported = k.path("export.tar");
        k.ok(&["export", "-o", exported.to_str().unwrap(), "app:1"]);
        let rootfs = k.path("rootfs");
        untar(&exported, &rootfs);
        let want = tree(&rootfs);
        assert!(want.contains_key("bin/busybox") && want.contains_key("home/other/notes"));
        assert!(!want.contains_key("etc/group"), "whiteout applied");
        assert!(!want.contains_key("home/app"), "opaque directory applied");
        assert!(
            want["usr/bin/suid"].contains("mode 4755"),
            "{}",
            want["usr/bin/suid"]
        );
        for bundle in [&via_skopeo, &via_kiln] {
            let got = tree(&bundle.join("rootfs"));
            let diff: Vec<_> = got
                .iter()
                .filter(|(k, v)| want.get(*k) != Some(v))
                .chain(want.iter().filter(|(k, _)| !got.contains_key(*k)))
                .take(5)
                .collect();
            assert!(
                diff.is_empty(),
                "{style:?}: umoci's rootfs of {} differs from kiln export: {diff:?}",
                bundle.display()
            );
        }
    }
}

#[test]
fn save_is_byte_identical_and_reloads_identically() {
    testkit::require_busybox();
    let k = kiln();
    load_fixture(&k, ArchiveStyle::Docker25, false);
    k.ok(&["tag", "app:1", "localhost:5000/team/app:2"]);
    let (a, b) = (k.path("a.tar"), k.path("b.tar"));
    k.ok(&[
        "save",
        "-o",
        a.to_str().unwrap(),
        "app:1",
        "localhost:5000/team/app:2",
    ]);
    let out = run_ok(&mut k.cmd(&["save", "app:1", "localhost:5000/team/app:2"]));
    std::fs::write(&b, &out.stdout).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == out.stdout,
        "save to a file and to stdout differ"
    );

    let k2 = kiln();
    let out = k2.ok(&["load", "-i", b.to_str().unwrap()]);
    assert_eq!(
        out,
        "Loaded image: app:1\nLoaded image: localhost:5000/team/app:2\n"
    );
    let q = "{{.Id}} {{.Descriptor.digest}}";
    assert_eq!(
        k.ok(&["inspect", "-f", q, "app:1"]),
        k2.ok(&["inspect", "-f", q, "app:1"])
    );
    // And it is a Docker 25 style archive: both views present.
    let names = run_stdout(Command::new("tar").arg("-tf").arg(&a));
    for member in [
        "manifest.json",
        "repositories",
        "index.json",
        "oci-layout",
        "blobs/sha256/",
    ] {
        assert!(
            names.lines().any(|l| l == member),
            "{member} missing:\n{names}"
        );
    }
}

#[test]
fn loads_oci_layout_zstd_and_several_images_from_stdin() {
    testkit::require_busybox();
    let k = kiln();
    // An OCI layout with zstd layers, made by skopeo-independent code.
    let img = FixtureImage::busybox("ignored:tag");
    let oci = k.path("oci.tar");
    testkit::write_oci_archive(&oci, &img, false).unwrap();
    let out = k.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");

    let zk = kiln();
    let mut zimg = FixtureImage::busybox("z:1");
    zimg.layers = vec![testkit::busybox_layer()];
    let plain = zk.path("plain.tar");
    testkit::write_docker_archive(&plain, &[zimg], ArchiveStyle::Legacy, false).unwrap();
    // Recompress its layer with zstd by re-packing the archive.
    let dir = zk.path("x");
    untar(&plain, &dir);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path().join("layer.tar");
        if p.exists() {
            let data = std::fs::read(&p).unwrap();
            std::fs::write(&p, zstd_compress(&data)).unwrap();
        }
    }
    let zarch = zk.path("zstd.tar");
    tar_dir(&dir, &zarch);
    assert_eq!(
        zk.ok(&["load", "-i", zarch.to_str().unwrap()]),
        "Loaded image: z:1\n"
    );

    // Several images through stdin.
    let sk = kiln();
    let many = sk.path("many.tar");
    testkit::write_docker_archive(
        &many,
        &[FixtureImage::busybox("one:1"), layered_image("two:2")],
        ArchiveStyle::Docker25,
        true,
    )
    .unwrap();
    let out = run_ok(sk.cmd(&["load"]).stdin(std::fs::File::open(&many).unwrap()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: one:1\nLoaded image: two:2\n"
    );
    let listed = sk.ok(&["images", "--format", "json"]);
    assert_eq!(listed.lines().count(), 2);
}

/// `umoci unpack --image IMAGE BUNDLE`.
fn umoci_unpack(image: &str, bundle: &std::path::Path) {
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", image])
            .arg(bundle),
    );
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    run_ok_with_stdin(Command::new("zstd").args(["-q", "-c"]), data).stdout
}
