//! Shared helpers of the registry integration tests: a state directory
//! with a fixture image loaded, `kiln` runs with an isolated docker
//! config directory, and store-cleanliness checks.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use testkit::{ArchiveStyle, FixtureImage};

/// A fresh state directory plus a private `DOCKER_CONFIG`.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) docker_config: PathBuf,
    /// Extra environment for every run.
    pub(crate) vars: Vec<(String, String)>,
}

impl Env {
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let docker_config = dir.path().join("docker");
        Env {
            dir,
            root,
            docker_config,
            vars: Vec::new(),
        }
    }

    /// Another state directory sharing this one's docker config.
    pub(crate) fn sibling(&self, name: &str) -> Env {
        let mut e = Env::new();
        e.root = self.dir.path().join(name);
        e.docker_config = self.docker_config.clone();
        e.vars = self.vars.clone();
        // Keep `self.dir` alive for as long as the caller holds `self`.
        e
    }

    pub(crate) fn var(mut self, k: &str, v: &str) -> Env {
        self.vars.push((k.into(), v.into()));
        self
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("KILN_INSECURE_REGISTRIES")
            .env_remove("KILN_REGISTRY_TIMEOUT")
            .env_remove("KILN_REGISTRY_RETRIES")
            .env_remove("KILN_REGISTRY_CHUNK_SIZE")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs and expects success; returns (stdout, stderr).
    pub(crate) fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.cmd(args).output().expect("run kiln");
        check_ok(args, &out);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and expects failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run kiln");
        assert!(
            !out.status.success(),
            "kiln {args:?} should have failed; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Loads `images` from a docker-archive testkit writes.
    pub(crate) fn load(&self, images: &[FixtureImage]) {
        let archive = self.path(&format!(
            "fixture-{}.tar",
            images[0].repo_tag.replace([':', '/'], "_")
        ));
        testkit::write_docker_archive(&archive, images, ArchiveStyle::Docker25, false).unwrap();
        self.ok(&["load", "-i", archive.to_str().unwrap()]);
    }

    /// The image ID of `image` in this store.
    pub(crate) fn id(&self, image: &str) -> String {
        self.ok(&["inspect", "-f", "{{.Id}}", image])
            .0
            .trim()
            .to_string()
    }

    /// Names under `blobs/sha256`.
    pub(crate) fn blobs(&self) -> Vec<String> {
        ls(&self.root.join("blobs/sha256"))
    }

    /// Asserts a failed command left nothing: no image, no temporary
    /// file, no blob — except complete, verified layers a failed pull
    /// finished before the failure, which nothing references (a retry
    /// reuses them) and which `kiln prune` removes.
    pub(crate) fn assert_empty_store(&self) {
        let (images, _) = self.ok(&["images", "-q"]);
        assert_eq!(images, "", "an image is visible");
        let tmp = ls(&self.root.join("tmp"));
        assert!(tmp.is_empty(), "tmp left: {tmp:?}");
        for name in self.blobs() {
            let data = std::fs::read(self.root.join("blobs/sha256").join(&name)).unwrap();
            assert_eq!(
                sha256(&data),
                format!("sha256:{name}"),
                "blob {name} is corrupt"
            );
        }
        self.ok(&["prune"]);
        assert!(self.blobs().is_empty(), "blobs left: {:?}", self.blobs());
        let layers = ls(&self.root.join("layers"));
        assert!(layers.is_empty(), "layers left: {layers:?}");
    }

    /// Asserts the blob `digest` (`sha256:…`) is not in the store.
    pub(crate) fn assert_no_blob(&self, digest: &str) {
        let hex = digest.trim_start_matches("sha256:");
        assert!(
            !self.blobs().iter().any(|b| b == hex),
            "blob {digest} is in the store"
        );
    }
}

fn check_ok(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "kiln {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn ls(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// busybox plus a small second layer.
pub(crate) fn two_layer_image(tag: &str) -> FixtureImage {
    use testkit::rawtar::RawEntry as E;
    let mut img = FixtureImage::busybox(tag);
    img.layers.push(testkit::rawtar::raw_tar(&[
        E::dir("srv/"),
        E::file("srv/hello", b"hello from the second layer\n"),
    ]));
    img
}

/// `sha256:<hex>` of bytes.
pub(crate) fn sha256(data: &[u8]) -> String {
    testkit::sha256(data)
}

/// Runs a command and expects success; returns stdout.
pub(crate) fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
