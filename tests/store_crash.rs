//! Crash safety and concurrency: `kill -9` of a `load` at any moment
//! leaves a store that works, shows no half-loaded image and no partial
//! blob, and the next `load` succeeds; several kiln processes can use
//! one state directory at once.

mod store_common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use store_common::{Kiln, kiln};
use testkit::fs::ls;
use testkit::{ArchiveStyle, FixtureImage};

/// Two images, one with a 24 MiB layer, so a load takes a while.
fn big_archive(k: &Kiln, style: ArchiveStyle, gzip: bool) -> std::path::PathBuf {
    use testkit::rawtar::RawEntry as E;
    let mut noise = vec![0u8; 24 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut big = FixtureImage::busybox("big:1");
    big.layers
        .push(testkit::rawtar::raw_tar(&[E::file("noise", &noise)]));
    let p = k.path("big.tar");
    testkit::write_docker_archive(&p, &[FixtureImage::busybox("small:1"), big], style, gzip)
        .unwrap();
    p
}

/// Waits until some file under `tmp/*/` (a blob being written) is non-empty.
fn wait_for_partial_blob(k: &Kiln, deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        for owner in k.tmp_entries() {
            let dir = k.root.join("tmp").join(&owner);
            for f in ls(&dir) {
                if f.starts_with("blob-")
                    && std::fs::metadata(dir.join(&f))
                        .map(|m| m.len() > 0)
                        .unwrap_or(false)
                {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn load_killed_midway_leaves_no_image_and_no_partial_blob() {
    testkit::require_busybox();
    let k = kiln();
    let archive = big_archive(&k, ArchiveStyle::Docker25, false);
    let bytes = std::fs::read(&archive).unwrap();
    for fraction in [0.3, 0.6, 0.9] {
        let mut child = k
            .cmd(&["load"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let cut = (bytes.len() as f64 * fraction) as usize;
        // The pipe holds 64 KiB: this returns once kiln has read nearly all.
        stdin.write_all(&bytes[..cut]).unwrap();
        assert!(
            wait_for_partial_blob(&k, Duration::from_secs(20)),
            "no blob was being written"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        drop(stdin);

        // Before anything cleans up: whatever is under blobs/ is complete.
        k.assert_blobs_intact();
        assert!(
            !k.tmp_entries().is_empty(),
            "the dead process's temporary area is still there"
        );
        // The next command cleans up after the dead process.
        assert_eq!(
            k.ok(&["images", "-q"]),
            "",
            "at {fraction}: a half-loaded image is visible"
        );
        assert!(
            k.blobs().is_empty(),
            "at {fraction}: blobs left: {:?}",
            k.blobs()
        );
        assert!(
            k.tmp_entries().is_empty(),
            "at {fraction}: tmp left: {:?}",
            k.tmp_entries()
        );
    }
    let out = k.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: small:1\nLoaded image: big:1\n");
    k.assert_blobs_intact();
}

#[test]
fn kill_at_any_moment_leaves_a_working_store() {
    testkit::require_busybox();
    let k = kiln();
    let archive = big_archive(&k, ArchiveStyle::Legacy, true);
    let a = archive.to_str().unwrap();
    let mut seen = [0; 3];
    for delay_ms in [0u64, 1, 3, 10, 30, 60, 120, 250, 500, 1000] {
        let mut child = k
            .cmd(&["load", "-q", "-i", a])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let ids = k.ok(&["images", "-q"]);
        k.assert_blobs_intact();
        // Every image that is visible is whole: it saves and exports.
        for id in ids.lines() {
            k.ok(&["save", "-o", k.path("s.tar").to_str().unwrap(), id]);
            k.ok(&["export", "-o", k.path("e.tar").to_str().unwrap(), id]);
        }
        seen[ids.lines().count()] += 1;
        for t in ["small:1", "big:1"] {
            let _ = k.cmd(&["rmi", t]).output();
        }
        k.ok(&["prune"]);
        assert!(k.blobs().is_empty(), "after {delay_ms} ms: {:?}", k.blobs());
    }
    eprintln!("killed with 0, 1 and 2 images loaded: {seen:?} times");
    assert_eq!(
        k.ok(&["load", "-i", a]),
        "Loaded image: small:1\nLoaded image: big:1\n"
    );
}

#[test]
fn concurrent_processes_share_one_store() {
    testkit::require_busybox();
    let k = kiln();
    let mut archives = Vec::new();
    for i in 0..4 {
        let mut img = FixtureImage::busybox(&format!("img{i}:1"));
        img.env.push(format!("N={i}"));
        let p = k.path(&format!("a{i}.tar"));
        testkit::write_docker_archive(&p, &[img], ArchiveStyle::Docker25, i % 2 == 0).unwrap();
        archives.push(p);
    }
    let loads: Vec<_> = archives
        .iter()
        .map(|p| {
            k.cmd(&["load", "-i", p.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile, readers keep working.
    for _ in 0..10 {
        k.ok(&["images"]);
        k.ok(&["system", "df"]);
    }
    for c in loads {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = k.ok(&["images", "--format", "json"]);
    assert_eq!(names.lines().count(), 4, "{names}");
    // Concurrent removals and a prune.
    let rms: Vec<_> = (0..4)
        .map(|i| {
            k.cmd(&["rmi", &format!("img{i}:1")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    k.ok(&["prune"]);
    for mut c in rms {
        assert!(c.wait().unwrap().success());
    }
    k.ok(&["prune"]);
    assert!(k.blobs().is_empty(), "{:?}", k.blobs());
    assert!(k.layer_dirs().is_empty());
}
