//! `write_stack_layer` (a stack of layer directories merged in user space)
//! writes byte for byte the tar `write_layer` writes for a real overlay
//! mount of the same stack: whiteouts and opaque directories inside the
//! stack, hard links split across layers, xattrs, symlinks, fifos, files
//! identical to the lower chain, a file replaced by a directory.

mod common;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use common::*;
use executor::diff::{DiffOptions, write_layer, write_stack_layer};
use executor::{Snapshotter, SnapshotterKind};
use rustix::fs::{CWD, FileType, Mode, XattrFlags};

fn write(p: &Path, data: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn whiteout(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    rustix::fs::mknodat(CWD, p, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, XattrFlags::empty()).unwrap();
}

fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
    };
    rustix::fs::utimensat(CWD, p, &t, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// A base chain and a three-layer stack on it (topmost first).
fn fixture() -> (Vec<PathBuf>, PathBuf) {
    let w = workdir("stack-diff");
    let (base, top, mid, bottom) = (w.join("base"), w.join("0"), w.join("1"), w.join("2"));
    // The lower chain the stack is diffed against.
    write(&base.join("ctx/same"), "same");
    set_mtime(&base.join("ctx/same"), 1_600_000_000, 123);
    write(&base.join("ctx/differs"), "old");
    write(&base.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n");
    // Bottom of the stack: the previous full copy.
    write(&bottom.join("ctx/same"), "same");
    set_mtime(&bottom.join("ctx/same"), 1_600_000_000, 123);
    write(&bottom.join("ctx/differs"), "new");
    write(&bottom.join("ctx/a"), "a");
    write(&bottom.join("ctx/b"), "bb");
    std::fs::hard_link(bottom.join("ctx/b"), bottom.join("ctx/c")).unwrap();
    std::fs::hard_link(bottom.join("ctx/b"), bottom.join("ctx/e")).unwrap();
    std::os::unix::fs::symlink("a", bottom.join("ctx/s")).unwrap();
    write(&bottom.join("ctx/d/x"), "x");
    write(&bottom.join("ctx/d/y"), "y");
    write(&bottom.join("ctx/attr"), "xattr");
    set_xattr(&bottom.join("ctx/attr"), "user.kiln.test", b"v");
    rustix::fs::mknodat(
        CWD,
        bottom.join("ctx/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    write(&bottom.join("ctx/gone"), "g");
    write(&bottom.join("ctx/filetodir"), "f");
    write(&bottom.join("ctx/owned"), "o");
    std::os::unix::fs::chown(bottom.join("ctx/owned"), Some(1000), Some(1000)).unwrap();
    // Middle: deletes, an opaque directory, a hard link's partner replaced.
    std::fs::create_dir_all(mid.join("ctx")).unwrap();
    whiteout(&mid.join("ctx/gone"));
    write(&mid.join("ctx/d/z"), "z");
    set_xattr(&mid.join("ctx/d"), "trusted.overlay.opaque", b"y");
    write(&mid.join("ctx/c"), "c-new");
    // Top: a new file, a file become a directory, a whiteout of nothing.
    write(&top.join("ctx/new"), "n");
    write(&top.join("ctx/filetodir/inside"), "i");
    whiteout(&top.join("ctx/never-existed"));
    write(&top.join("top-only/f"), "t");
    for d in [&base, &bottom, &mid, &top] {
        for sub in ["", "ctx"] {
            let p = d.join(sub);
            if p.is_dir() {
                set_mtime(&p, 1_700_000_000, 0);
            }
        }
    }
    (vec![top, mid, bottom], base)
}

fn listing(tar: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(tar);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} {:?} {:o} {}",
                e.path().unwrap().display(),
                e.header().entry_type(),
                e.header().mode().unwrap(),
                e.header().size().unwrap()
            )
        })
        .collect()
}

#[test]
fn stack_layer_matches_the_overlay_mount_of_the_stack() {
    require_root();
    let (stack, base) = fixture();
    let lowers = vec![base];
    for opts in [
        DiffOptions::default(),
        DiffOptions {
            clamp_mtime: Some(1_650_000_000),
        },
    ] {
        let (merged, summary) = write_stack_layer(&stack, &lowers, Vec::new(), &opts).unwrap();
        let scratch = workdir("stack-diff-view");
        let mut snap = Snapshotter::new(SnapshotterKind::Overlay)
            .prepare(&stack, &scratch.join("snap"))
            .unwrap();
        let fd = snap.open_root().unwrap();
        let view = PathBuf::from(format!("/proc/self/fd/{}/.", fd.as_raw_fd()));
        let (mounted, want) = write_layer(&view, &lowers, Vec::new(), &opts).unwrap();
        drop(fd);
        snap.discard().unwrap();
        assert_eq!(listing(&merged), listing(&mounted), "{opts:?}");
        assert!(
            merged == mounted,
            "same entries, different bytes ({opts:?})"
        );
        assert_eq!(summary, want);
        let names = listing(&merged).join("\n");
        for hidden in ["ctx/gone", "ctx/d/x", "ctx/same", "never-existed"] {
            assert!(!names.contains(hidden), "{hidden} in\n{names}");
        }
        for shown in ["ctx/d/z", "ctx/c ", "ctx/filetodir/inside", "top-only/f"] {
            assert!(names.contains(shown), "{shown} not in\n{names}");
        }
    }
}

#[test]
fn empty_stack_and_missing_layer_are_errors() {
    let err = write_stack_layer(&[], &[], Vec::new(), &DiffOptions::default()).unwrap_err();
    assert!(err.to_string().contains("at least one layer"), "{err}");
    let err = write_stack_layer(
        &[PathBuf::from("/nonexistent/stack-layer")],
        &[],
        Vec::new(),
        &DiffOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/stack-layer"),
        "{err}"
    );
}
