//! Image archives: `docker save`-style tars and OCI image layouts.
//!
//! [`load`] reads docker-archives of every docker version (pre-25
//! `<id>/layer.tar` + `manifest.json`, and Docker 25+ which is also an OCI
//! layout) and plain OCI image-layout tars, with plain, gzip or zstd
//! layers, from any stream (stdin included: one pass, nothing seeks).
//! [`save`] writes one tar that is both a docker-archive and an OCI image
//! layout, as Docker 25+ does, byte-identical for the same images.

mod load;
mod save;

pub(crate) use load::host_arch;
pub use load::{Loaded, load};
pub use save::{SaveItem, save};

/// Normalises an archive member name: no leading `./` or `/`, no `.`
/// components, `..` applied (names escaping the archive are refused by the
/// caller, which never uses them as filesystem paths anyway).
pub(crate) fn clean_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::clean_member;

    #[test]
    fn member_names() {
        assert_eq!(clean_member("./manifest.json").unwrap(), "manifest.json");
        assert_eq!(clean_member("a/../b/layer.tar").unwrap(), "b/layer.tar");
        assert_eq!(clean_member("blobs/sha256/").unwrap(), "blobs/sha256");
        assert!(clean_member("../x").is_none());
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;
    use crate::testutil::{ls, store};
    use testkit::{ArchiveStyle, FixtureImage};

    fn two_images() -> Vec<FixtureImage> {
        let mut b = FixtureImage::busybox("other/app:2");
        b.layers.push(testkit::rawtar::raw_tar(&[
            testkit::rawtar::RawEntry::file("app", b"app"),
        ]));
        vec![FixtureImage::busybox("busybox:latest"), b]
    }

    #[test]
    fn loads_every_archive_style() {
        let t = tempfile::tempdir().unwrap();
        let cases = [
            (ArchiveStyle::Legacy, false),
            (ArchiveStyle::Legacy, true),
            (ArchiveStyle::Docker25, false),
            (ArchiveStyle::Docker25, true),
        ];
        for (i, (style, gz)) in cases.into_iter().enumerate() {
            let path = t.path().join(format!("a{i}.tar"));
            testkit::write_docker_archive(&path, &two_images(), style, gz).unwrap();
            let (_t, s) = store();
            let loaded = load(&s, std::fs::File::open(&path).unwrap()).unwrap();
            let tags: Vec<String> = loaded
                .iter()
                .flat_map(|l| l.tags.iter().map(|t| t.familiar()))
                .collect();
            assert_eq!(
                tags,
                ["busybox:latest", "other/app:2"],
                "{style:?} gzip={gz}"
            );
            let img = s.image("other/app:2").unwrap();
            assert_eq!(img.layers.len(), 2);
            assert_eq!(
                img.id.as_str(),
                testkit::sha256(&two_images()[1].config_json())
            );
            if style == ArchiveStyle::Docker25 {
                // The archive's own OCI manifest is kept, digest and all.
                let m = s.image_manifest(&img).unwrap();
                assert!(
                    std::fs::read(&path)
                        .unwrap()
                        .windows(m.len())
                        .any(|w| w == m)
                );
            }
        }
        let path = t.path().join("oci.tar");
        testkit::write_oci_archive(&path, &FixtureImage::busybox("busybox:1"), true).unwrap();
        let (_t, s) = store();
        let loaded = load(&s, std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert!(
            loaded[0].tags.is_empty(),
            "a bare ref.name tag names no repository"
        );
    }

    #[test]
    fn save_is_deterministic_and_round_trips() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("in.tar");
        testkit::write_docker_archive(&path, &two_images(), ArchiveStyle::Legacy, true).unwrap();
        let (_t, s) = store();
        load(&s, std::fs::File::open(&path).unwrap()).unwrap();
        let items: Vec<SaveItem> = ["busybox", "other/app:2"]
            .iter()
            .map(|r| {
                let image = s.image(r).unwrap();
                SaveItem {
                    tags: image.tags.clone(),
                    image,
                }
            })
            .collect();
        let mut a = Vec::new();
        save(&s, &items, &mut a).unwrap();
        let mut b = Vec::new();
        save(&s, &items, &mut b).unwrap();
        assert!(a == b, "two saves differ");
        let (_t2, s2) = store();
        let loaded = load(&s2, &a[..]).unwrap();
        assert_eq!(loaded.len(), 2);
        for r in ["busybox", "other/app:2"] {
            let (x, y) = (s.image(r).unwrap(), s2.image(r).unwrap());
            assert_eq!((x.id, x.manifest.digest), (y.id, y.manifest.digest));
        }
    }

    #[test]
    fn bad_archives_leave_nothing() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("oci.tar");
        testkit::write_oci_archive(&path, &FixtureImage::busybox("busybox:1"), false).unwrap();
        let good = std::fs::read(&path).unwrap();
        // Rename a blob so that its name no longer matches its content.
        let mut renamed = good.clone();
        let hex = testkit::sha256(&testkit::busybox_layer())[7..].to_string();
        let pos = renamed
            .windows(64)
            .position(|w| w == hex.as_bytes())
            .unwrap();
        renamed[pos] = if renamed[pos] == b'0' { b'1' } else { b'0' };
        tar_cksum_fix(&mut renamed, pos);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("renamed blob", renamed, "digest mismatch"),
            ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
            ("not a tar", b"hello".to_vec(), ""),
            (
                "empty tar",
                vec![0u8; 1024],
                "neither manifest.json nor index.json",
            ),
        ];
        for (name, bytes, want) in cases {
            let (_t, s) = store();
            let e = load(&s, &bytes[..]).expect_err(name).to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(ls(&s.layout.blobs()).is_empty(), "{name}: blobs left");
            assert!(s.images().unwrap().is_empty());
        }
    }

    /// Recomputes the checksum of the tar header containing byte `pos`.
    fn tar_cksum_fix(tar: &mut [u8], pos: usize) {
        let start = pos / 512 * 512;
        let block = &mut tar[start..start + 512];
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(s.as_bytes());
    }
}
