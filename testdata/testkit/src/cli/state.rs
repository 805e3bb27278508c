//! What a [`Kiln`]'s state directory holds, read from outside kiln
//! (blob files, layer directories, per-process temporary areas, mounts)
//! and the images a test puts in it.

use super::Kiln;
use crate::fs::{ls, mounts_mentioning};
use crate::{ArchiveStyle, FixtureImage};

impl Kiln {
    /// Loads `images` from a docker-archive of `style` that testkit
    /// writes (not kiln), with `kiln load`.
    #[track_caller]
    pub fn load(&self, images: &[FixtureImage], style: ArchiveStyle) {
        let archive = self.path(&format!(
            "fixture-{}.tar",
            images[0].repo_tag.replace([':', '/'], "_")
        ));
        crate::write_docker_archive(&archive, images, style, false).expect("write fixture archive");
        self.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    }

    /// The image ID (`sha256:…`) of `image`.
    #[track_caller]
    pub fn id(&self, image: &str) -> String {
        self.ok(&["inspect", "-f", "{{.Id}}", image])
            .trim()
            .to_string()
    }

    /// Names of the blob files (`blobs/sha256/`), sorted.
    pub fn blobs(&self) -> Vec<String> {
        ls(&self.root.join("blobs/sha256"))
    }

    /// Names under `layers/`, sorted.
    pub fn layer_dirs(&self) -> Vec<String> {
        ls(&self.root.join("layers"))
    }

    /// Names under `tmp/` (areas of live or dead processes), sorted.
    pub fn tmp_entries(&self) -> Vec<String> {
        ls(&self.root.join("tmp"))
    }

    /// Lines of `/proc/self/mountinfo` that mention the state directory.
    pub fn mounts_under_root(&self) -> Vec<String> {
        mounts_mentioning(&self.root)
    }

    /// Asserts every blob file hashes to its name.
    #[track_caller]
    pub fn assert_blobs_intact(&self) {
        for name in self.blobs() {
            let data = std::fs::read(self.root.join("blobs/sha256").join(&name)).unwrap();
            assert_eq!(
                crate::sha256(&data),
                format!("sha256:{name}"),
                "blob {name} is corrupt"
            );
        }
    }

    /// Asserts the blob `digest` (`sha256:…`) is not in the store.
    #[track_caller]
    pub fn assert_no_blob(&self, digest: &str) {
        let hex = digest.trim_start_matches("sha256:");
        assert!(
            !self.blobs().iter().any(|b| b == hex),
            "blob {digest} is in the store"
        );
    }
}
