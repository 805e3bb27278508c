//! Hostile and broken archives: each is refused with an error that names
//! the problem, the command exits non-zero, and the store is left as it
//! was (no image, no blob, no temporary file, no layer).

mod store_common;

use store_common::{Kiln, kiln};
use testkit::fs::{tar_dir, untar};
use testkit::rawtar::{RawEntry as E, raw_tar};
use testkit::{ArchiveStyle, FixtureImage};

fn assert_store_empty(k: &Kiln, case: &str) {
    assert_eq!(k.ok(&["images", "-q"]), "", "{case}: an image is visible");
    assert!(k.blobs().is_empty(), "{case}: blobs left: {:?}", k.blobs());
    assert!(
        k.layer_dirs().is_empty(),
        "{case}: layers left: {:?}",
        k.layer_dirs()
    );
    assert!(
        k.tmp_entries().is_empty(),
        "{case}: temporary files left: {:?}",
        k.tmp_entries()
    );
}

fn archive_with_layer(k: &Kiln, layer: Vec<u8>, style: ArchiveStyle) -> String {
    let img = FixtureImage {
        repo_tag: "evil:1".into(),
        layers: vec![layer],
        env: vec![],
        cmd: vec!["sh".into()],
    };
    let p = k.path("evil.tar");
    testkit::write_docker_archive(&p, &[img], style, false).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn hostile_layers_are_refused_and_leave_nothing() {
    let cases: Vec<(&str, Vec<E>, &str)> = vec![
        (
            "dotdot",
            vec![E::file("../../escape", b"x")],
            "path contains '..'",
        ),
        (
            "absolute",
            vec![E::file("/etc/kiln-evil", b"x")],
            "absolute path",
        ),
        (
            "write through symlink",
            vec![E::symlink("etc", "/etc"), E::file("etc/kiln-evil", b"x")],
            "would be written through the symlink etc",
        ),
        (
            "hard link outside",
            vec![E::hardlink("passwd", "../../../../etc/passwd")],
            "hard link target: path contains '..'",
        ),
        (
            "hard link absolute",
            vec![E::hardlink("passwd", "/etc/passwd")],
            "hard link target: absolute path",
        ),
    ];
    for style in [ArchiveStyle::Legacy, ArchiveStyle::Docker25] {
        for (name, entries, want) in &cases {
            let k = kiln();
            let archive = archive_with_layer(&k, raw_tar(entries), style);
            let err = k.fails(&["load", "-i", &archive]);
            assert!(err.contains(want), "{name} ({style:?}): {err}");
            assert!(
                err.contains("evil.tar"),
                "{name}: the error names the archive: {err}"
            );
            assert!(!std::path::Path::new("/etc/kiln-evil").exists());
            assert_store_empty(&k, name);
        }
    }
}

#[test]
fn digest_mismatches_are_refused() {
    let k = kiln();
    // An OCI layout whose manifest blob is stored under the wrong name.
    let good = k.path("good.tar");
    testkit::write_oci_archive(&good, &FixtureImage::busybox("b:1"), false).unwrap();
    let dir = k.path("layout");
    untar(&good, &dir);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mpath = dir.join("blobs/sha256").join(&mdigest[7..]);
    let mut manifest = std::fs::read(&mpath).unwrap();
    manifest.extend_from_slice(b" ");
    std::fs::write(&mpath, &manifest).unwrap();
    let bad = k.path("bad-manifest.tar");
    tar_dir(&dir, &bad);
    let err = k.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert!(
        err.contains("digest mismatch") && err.contains(&mdigest[7..]),
        "{err}"
    );
    assert_store_empty(&k, "manifest digest");

    // A docker-archive whose config lists another diffID for its layer.
    let k = kiln();
    let mut img = FixtureImage::busybox("b:1");
    let cfg_layers = vec![raw_tar(&[E::file("other", b"x")])];
    let config_liar = FixtureImage {
        layers: cfg_layers,
        ..img.clone()
    };
    let liar_config = config_liar.config_json();
    let p = k.path("liar.tar");
    testkit::write_docker_archive(&p, std::slice::from_ref(&img), ArchiveStyle::Legacy, true)
        .unwrap();
    // Swap the config for one with the other diffID, keeping names consistent.
    let dir = k.path("liar");
    untar(&p, &dir);
    let real_hex = testkit::sha256(&img.config_json())[7..].to_string();
    let liar_hex = testkit::sha256(&liar_config)[7..].to_string();
    std::fs::remove_file(dir.join(format!("{real_hex}.json"))).unwrap();
    std::fs::write(dir.join(format!("{liar_hex}.json")), &liar_config).unwrap();
    let m = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap()
        .replace(&real_hex, &liar_hex);
    std::fs::write(dir.join("manifest.json"), m).unwrap();
    let bad = k.path("bad-diffid.tar");
    tar_dir(&dir, &bad);
    let err = k.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert!(
        err.contains("digest mismatch") && err.contains("diffID"),
        "{err}"
    );
    assert_store_empty(&k, "diffID");
    img.layers.clear();
}

#[test]
fn truncated_and_garbage_input_is_refused() {
    let k = kiln();
    let good = k.path("good.tar");
    testkit::write_docker_archive(
        &good,
        &[FixtureImage::busybox("b:1")],
        ArchiveStyle::Docker25,
        false,
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    for (name, data, want) in [
        ("half", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "one block short",
            bytes[..bytes.len() - 2048 - 512].to_vec(),
            "",
        ),
        (
            "garbage",
            b"this is not a tar archive at all".repeat(40),
            "",
        ),
    ] {
        let p = k.path(name);
        std::fs::write(&p, &data).unwrap();
        let err = k.fails(&["load", "-i", p.to_str().unwrap()]);
        assert!(
            err.contains(want) && err.starts_with("error: load "),
            "{name}: {err}"
        );
        assert_store_empty(&k, name);
    }
    // A truncated layer inside an intact archive.
    let k = kiln();
    let layer = testkit::busybox_layer();
    let archive = archive_with_layer(
        &k,
        layer[..layer.len() - 1024 - 4096].to_vec(),
        ArchiveStyle::Legacy,
    );
    let err = k.fails(&["load", "-i", &archive]);
    assert!(err.contains("truncated"), "{err}");
    assert_store_empty(&k, "truncated layer");

    // import refuses hostile and truncated rootfs tars too.
    let k = kiln();
    let p = k.path("rootfs.tar");
    std::fs::write(&p, raw_tar(&[E::file("../x", b"x")])).unwrap();
    let err = k.fails(&["import", p.to_str().unwrap(), "bad:1"]);
    assert!(err.contains("'..'"), "{err}");
    std::fs::write(&p, &layer[..layer.len() - 1024]).unwrap();
    let err = k.fails(&["import", p.to_str().unwrap(), "bad:1"]);
    assert!(err.contains("truncated"), "{err}");
    assert_store_empty(&k, "import");
}

#[test]
fn bad_references_are_named() {
    let k = kiln();
    let err = k.fails(&["tag", "nothing", "Bad/Name"]);
    assert!(
        err.contains("\"Bad/Name\"") && err.contains("lowercase"),
        "{err}"
    );
    let err = k.fails(&["tag", "nothing", "ok:name"]);
    assert!(err.contains("no such image: nothing"), "{err}");
    let err = k.fails(&["save", "-o", k.path("x.tar").to_str().unwrap(), "a::b"]);
    assert!(err.contains("\"a::b\""), "{err}");
    assert!(!k.path("x.tar").exists());
}
