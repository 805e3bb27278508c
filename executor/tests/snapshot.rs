//! Snapshotters: long lower chains, the mount(2) fallback for old kernels,
//! the automatic fallback to copying, and lower-layer whiteouts.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use executor::{Error, Snapshotter, SnapshotterKind};

/// `n` layer directories under deliberately long paths, each with a file
/// of its own and its number in `/shared` (the topmost must win).
fn many_layers(n: usize, name: &str) -> Vec<PathBuf> {
    let base = workdir(name).join("a-rather-long-directory-name-to-make-the-mount-options-long");
    (0..n)
        .map(|i| {
            let l = base
                .join(format!("layer-{i:04}-0123456789abcdef0123456789abcdef"))
                .join("fs");
            std::fs::create_dir_all(l.join("layers")).unwrap();
            std::fs::write(l.join(format!("layers/{i}")), "").unwrap();
            std::fs::write(l.join("shared"), i.to_string()).unwrap();
            l
        })
        .collect()
}

fn option_bytes(layers: &[PathBuf]) -> usize {
    layers.iter().map(|l| l.as_os_str().len() + 1).sum()
}

#[test]
fn a_long_chain_mounts_with_one_lowerdir_per_layer() {
    let mut lowers = many_layers(150, "chain150");
    assert!(
        option_bytes(&lowers) > 4096 * 3,
        "the chain must exceed a page of options"
    );
    lowers.push(busybox_layer());
    let mut snap = prepare(SnapshotterKind::Overlay, &lowers, "chain150-snap");
    let (o, out, err) = sh(&mut snap, "ls /layers | wc -l; cat /shared");
    assert!(o.success(), "{o}: {err}");
    assert_eq!(out, "150\n0");
}

#[test]
fn the_mount2_fallback_uses_short_relative_paths() {
    let mut lowers = many_layers(3, "legacy3");
    lowers.push(busybox_layer());
    let scratch = workdir("legacy3-snap").join("scratch");
    let mut snap = Snapshotter::new(SnapshotterKind::Overlay)
        .force_legacy_mount(true)
        .prepare(&lowers, &scratch)
        .unwrap();
    assert_eq!(snap.kind(), SnapshotterKind::Overlay);
    let before = mountinfo();
    let (o, out, err) = sh(
        &mut snap,
        "ls /layers | tr '\\n' ' '; cat /shared; echo data > /new",
    );
    assert!(o.success(), "{o}: {err}");
    assert_eq!(out, "0 1 2 0");
    assert_eq!(before, mountinfo());
    let layer = snap.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(layer.join("new")).unwrap(),
        "data\n"
    );
}

#[test]
fn auto_falls_back_to_copy_when_the_overlay_cannot_be_mounted() {
    // Too long for mount(2) on a kernel without lowerdir+ …
    let mut lowers = many_layers(150, "legacy150");
    lowers.push(busybox_layer());
    let scratch = workdir("legacy150-snap").join("scratch");
    let err = Snapshotter::new(SnapshotterKind::Overlay)
        .force_legacy_mount(true)
        .prepare(&lowers, &scratch)
        .unwrap_err();
    assert!(
        matches!(err, Error::Snapshot(ref m) if m.contains("more than mount(2) accepts")),
        "{err}"
    );
    let scratch = workdir("legacy150-auto").join("scratch");
    let mut snap = Snapshotter::new(SnapshotterKind::Auto)
        .force_legacy_mount(true)
        .prepare(&lowers, &scratch)
        .unwrap();
    assert_eq!(snap.kind(), SnapshotterKind::Copy);
    assert!(snap.fallback_reason().unwrap().contains("mount(2)"));
    let (o, out, _) = sh(&mut snap, "ls /layers | wc -l; cat /shared");
    assert!(o.success());
    assert_eq!(out, "150\n0");

    // … and more layers than overlayfs stacks at all.
    let mut lowers = many_layers(520, "chain520");
    lowers.push(busybox_layer());
    let scratch = workdir("chain520-snap").join("scratch");
    let mut snap = Snapshotter::new(SnapshotterKind::Auto)
        .prepare(&lowers, &scratch)
        .unwrap();
    assert_eq!(
        snap.kind(),
        SnapshotterKind::Copy,
        "overlayfs took 521 layers?"
    );
    let (o, out, _) = sh(&mut snap, "ls /layers | wc -l; cat /shared");
    assert!(o.success());
    assert_eq!(out, "520\n0");
}

/// A layer over busybox that deletes /home/app (whiteout) and replaces
/// /usr by an opaque directory with one file.
fn deleting_layer() -> PathBuf {
    let l = workdir("deleting").join("fs");
    std::fs::create_dir_all(l.join("home")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        l.join("home/app"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    std::fs::create_dir_all(l.join("usr")).unwrap();
    rustix::fs::lsetxattr(
        l.join("usr"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(l.join("usr/only"), "only\n").unwrap();
    l
}

#[test]
fn lower_whiteouts_and_opaque_dirs_look_the_same_in_both_snapshotters() {
    let lowers = vec![deleting_layer(), busybox_layer()];
    let mut outputs = Vec::new();
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let mut snap = prepare(kind, &lowers, "deleting-snap");
        let (o, out, err) = sh(&mut snap, "ls -a /home; echo --; ls -a /usr; cat /usr/only");
        assert!(o.success(), "{kind}: {o}: {err}");
        outputs.push(out);
    }
    assert_eq!(outputs[0], ".\n..\n--\n.\n..\nonly\nonly\n");
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let scratch = workdir("bad").join("scratch");
    let err = Snapshotter::new(SnapshotterKind::Auto)
        .prepare(&[PathBuf::from("/no/such/layer")], &scratch)
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/layer"), "{err}");
    let err = Snapshotter::new(SnapshotterKind::Auto)
        .prepare(&[PathBuf::from("relative/layer")], &scratch)
        .unwrap_err();
    assert!(err.to_string().contains("not an absolute path"), "{err}");
    std::fs::create_dir_all(scratch.join("leftover")).unwrap();
    let err = Snapshotter::new(SnapshotterKind::Auto)
        .prepare(&[busybox_layer()], &scratch)
        .unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert!(Path::new(&scratch).join("leftover").exists());
}

#[test]
fn from_scratch_has_an_empty_root() {
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let mut snap = prepare(kind, &[], "scratch-image");
        // No shell in an empty image: bind busybox in to look around.
        let mut spec =
            executor::SandboxSpec::new(["/bb/busybox", "sh", "-c", "/bb/busybox ls -a /"]);
        spec.mounts.push(executor::Mount {
            target: "/bb/busybox".into(),
            kind: executor::MountKind::Bind {
                source: "/bin/busybox".into(),
                readonly: true,
            },
        });
        let (o, out, err) = run(&mut snap, &spec);
        assert!(o.success(), "{kind}: {o}: {err}");
        // Only the sandbox's own mount points, which are stubs…
        assert_eq!(out, ".\n..\nbb\ndev\netc\nproc\nsys\n", "{kind}");
        // …removed again afterwards: the layer is empty.
        let layer = snap.commit().unwrap();
        assert_eq!(std::fs::read_dir(&layer).unwrap().count(), 0, "{kind}");
    }
}
