//! The layer diff: what a RUN changed, as exact OCI tar entries, for both
//! snapshotters; plus the tar writer on hand-made layer directories.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use executor::diff::{DiffOptions, write_layer};
use executor::{Mount, MountKind, SandboxSpec, SnapshotterKind};

/// One tar entry, as a line: `path type mode uid:gid [content|-> link] [xattrs]`.
fn describe(tar: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Fifo => 'p',
            other => panic!("unexpected entry type {other:?}"),
        };
        let mut line = format!(
            "{path} {kind} {:o} {}:{}",
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap()
        );
        if let Some(link) = e.link_name().unwrap() {
            line.push_str(&format!(" -> {}", link.to_string_lossy()));
        }
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                if let Some(k) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push(format!(
                        "{k}={}",
                        String::from_utf8_lossy(ext.value_bytes())
                    ));
                }
            }
        }
        if kind == 'f' {
            let mut data = String::new();
            e.read_to_string(&mut data).unwrap();
            line.push_str(&format!(" {data:?}"));
        }
        if !xattrs.is_empty() {
            line.push_str(&format!(" [{}]", xattrs.join(",")));
        }
        out.push(line);
    }
    out
}

/// The fixture layer the step changes (on top of busybox).
fn fixture_layer() -> PathBuf {
    let l = workdir("diff-fixture").join("fs");
    let f = |p: &str, content: &str, mode: u32| {
        let path = l.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    f("data/keep", "keep\n", 0o644);
    f("data/modify", "old\n", 0o644);
    f("data/delete", "bye\n", 0o644);
    f("data/chmod", "c\n", 0o644);
    f("data/chown", "o\n", 0o644);
    f("data/xattr-lower", "x\n", 0o644);
    f("dir/a", "a\n", 0o644);
    f("dir/b", "b\n", 0o644);
    f("olddir/x", "x\n", 0o644);
    rustix::fs::lsetxattr(
        l.join("data/xattr-lower"),
        "user.origin",
        b"lower",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Like a layer unpacked from a tar: whole-second timestamps.
    for p in [
        "data/keep",
        "data/modify",
        "data/delete",
        "data/chmod",
        "data/chown",
        "data/xattr-lower",
        "dir/a",
        "dir/b",
        "olddir/x",
        "data",
        "dir",
        "olddir",
        "",
    ] {
        let t = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, l.join(p), &t, rustix::fs::AtFlags::empty())
            .unwrap();
    }
    l
}

/// Host tools the step needs (setfattr and its libc), bind-mounted
/// read-only: their mount points are stubs and must not reach the layer.
fn host_tool_mounts() -> Vec<Mount> {
    assert!(
        Path::new("/usr/bin/setfattr").exists(),
        "/usr/bin/setfattr is missing: run .ci/install-deps (package attr)"
    );
    let bind = |src: &str, dst: &str| Mount {
        target: dst.into(),
        kind: MountKind::Bind {
            source: src.into(),
            readonly: true,
        },
    };
    vec![
        bind("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
        bind("/usr/lib64", "/lib64"),
        bind("/usr/bin/setfattr", "/opt/setfattr"),
    ]
}

const STEP: &str = "set -e
echo new > /data/add
echo changed > /data/modify
rm /data/delete
chmod 600 /data/chmod
chown 1000:1000 /data/chown
ln -s add /data/link
ln /data/add /data/hard
chmod 640 /data/xattr-lower
rm -rf /dir && mkdir /dir && echo c > /dir/c
rm -rf /olddir
/opt/setfattr -n user.kiln -v yes /data/add
";

fn run_step(kind: SnapshotterKind, name: &str) -> (Vec<String>, Vec<u8>) {
    let lowers = vec![fixture_layer(), busybox_layer()];
    let mut snap = prepare(kind, &lowers, name);
    let mut spec = SandboxSpec::new(["/bin/sh", "-c", STEP]);
    spec.env.push("PATH=/bin:/usr/bin".into());
    spec.mounts = host_tool_mounts();
    let (o, _, err) = run(&mut snap, &spec);
    assert!(o.success(), "{o}: {err}");
    let layer = snap.commit().unwrap();
    let (tar, _) = write_layer(&layer, &lowers, Vec::new(), &DiffOptions::default()).unwrap();
    // Deterministic: the same directory gives the same bytes.
    let (again, _) = write_layer(&layer, &lowers, Vec::new(), &DiffOptions::default()).unwrap();
    assert_eq!(tar, again);
    (describe(&tar), tar)
}

fn common_head() -> Vec<&'static str> {
    vec![
        "data/ d 755 0:0",
        "data/add f 644 0:0 \"new\\n\" [user.kiln=yes]",
        "data/chmod f 600 0:0 \"c\\n\"",
        "data/chown f 644 1000:1000 \"o\\n\"",
        "data/.wh.delete f 0 0:0 \"\"",
        "data/hard h 644 0:0 -> data/add",
        "data/link l 777 0:0 -> add",
        "data/modify f 644 0:0 \"changed\\n\"",
        "data/xattr-lower f 640 0:0 \"x\\n\" [user.origin=lower]",
    ]
}

#[test]
fn overlay_diff_has_exactly_the_expected_entries() {
    let (got, tar) = run_step(SnapshotterKind::Overlay, "diff-overlay");
    let mut want = common_head();
    want.extend([
        "dir/ d 755 0:0",
        "dir/.wh..wh..opq f 0 0:0 \"\"",
        "dir/c f 644 0:0 \"c\\n\"",
        ".wh.olddir f 0 0:0 \"\"",
    ]);
    assert_eq!(got, want);
    gnu_tar_reads(&tar);
}

#[test]
fn copy_diff_has_exactly_the_expected_entries() {
    let (got, tar) = run_step(SnapshotterKind::Copy, "diff-copy");
    let mut want = common_head();
    // The walking differ sees a directory that still exists, minus two
    // entries, plus one: individual whiteouts instead of an opaque marker.
    want.extend([
        "dir/ d 755 0:0",
        "dir/.wh.a f 0 0:0 \"\"",
        "dir/.wh.b f 0 0:0 \"\"",
        "dir/c f 644 0:0 \"c\\n\"",
        ".wh.olddir f 0 0:0 \"\"",
    ]);
    assert_eq!(got, want);
    gnu_tar_reads(&tar);
}

/// GNU tar (an independent reader) lists the layer without complaint.
fn gnu_tar_reads(tar: &[u8]) {
    let dir = workdir("gnu-tar");
    let p = dir.join("layer.tar");
    std::fs::write(&p, tar).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--xattrs", "-tvf"])
        .arg(&p)
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("data/hard link to data/add"), "{listing}");
}

/// A hand-made layer directory in upperdir format.
fn upper_fixture() -> (PathBuf, PathBuf) {
    let base = workdir("diff-unit");
    let lower = base.join("lower");
    let upper = base.join("upper");
    std::fs::create_dir_all(lower.join("gone")).unwrap();
    std::fs::create_dir_all(lower.join("opaque")).unwrap();
    std::fs::write(lower.join("opaque/old"), "").unwrap();
    std::fs::write(lower.join("file"), "").unwrap();
    std::fs::create_dir_all(upper.join("opaque")).unwrap();
    std::fs::create_dir_all(upper.join("new-opaque")).unwrap();
    rustix::fs::lsetxattr(
        upper.join("opaque"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        upper.join("new-opaque"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(upper.join("opaque/fresh"), "f").unwrap();
    let wh = |p: PathBuf| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap()
    };
    wh(upper.join("gone"));
    wh(upper.join("never-existed"));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let long = upper
        .join("l".repeat(120))
        .join("m".repeat(120))
        .join("n".repeat(60));
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::write(&long, "deep").unwrap();
    std::os::unix::fs::symlink("t".repeat(150), upper.join("longlink")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(upper.join("sock")).unwrap();
    (upper, lower)
}

#[test]
fn tar_writer_handles_whiteouts_opaque_dirs_long_names_and_special_files() {
    let (upper, lower) = upper_fixture();
    let (tar, summary) =
        write_layer(&upper, &[lower], Vec::new(), &DiffOptions::default()).unwrap();
    let got = describe(&tar);
    let l = "l".repeat(120);
    let m = "m".repeat(120);
    let n = "n".repeat(60);
    let want = vec![
        "fifo p 600 0:0".to_string(),
        ".wh.gone f 0 0:0 \"\"".into(),
        format!("{l}/ d 755 0:0"),
        format!("{l}/{m}/ d 755 0:0"),
        format!("{l}/{m}/{n} f 644 0:0 \"deep\""),
        format!("longlink l 777 0:0 -> {}", "t".repeat(150)),
        // An opaque directory with nothing below it needs no marker.
        "new-opaque/ d 755 0:0".into(),
        "opaque/ d 755 0:0".into(),
        "opaque/.wh..wh..opq f 0 0:0 \"\"".into(),
        "opaque/fresh f 644 0:0 \"f\"".into(),
        // No whiteout for never-existed (nothing to delete); no socket.
    ];
    assert_eq!(got, want);
    assert_eq!(summary.entries, 10);
    assert_eq!(summary.content_bytes, 5);
}

#[test]
fn timestamps_clamp_to_source_date_epoch() {
    let (upper, lower) = upper_fixture();
    let opts = DiffOptions {
        clamp_mtime: Some(1_000_000),
    };
    let (tar, _) = write_layer(&upper, &[lower], Vec::new(), &opts).unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert!(e.header().mtime().unwrap() <= 1_000_000);
    }
}

#[test]
fn missing_layer_directory_is_an_error_naming_it() {
    let err = write_layer(
        Path::new("/nonexistent/layer"),
        &[],
        Vec::new(),
        &DiffOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/layer"), "{err}");
}
