//! Test fixtures for kiln.
//!
//! The tests may not download anything, so base images are made here from
//! Debian's `busybox-static` (`/bin/busybox`): a root filesystem with the
//! applet links, `/etc/passwd` and `/etc/group`, written as a plain
//! directory, as a layer tar, as a `docker save`-style archive (old and
//! Docker 25+ layouts) or as an OCI image layout. These writers are
//! deliberately independent of kiln's own archive code, so tests that load
//! them check kiln against something it did not write itself.
//!
//! The integration tests' shared helpers live here too: [`cli`] runs the
//! `kiln` binary on a private state directory (and any other program,
//! expecting success or failure), [`fs`] lists and compares directories,
//! [`registry`] starts a real registry and a fault-injecting proxy.

pub mod cli;
pub mod fs;
pub mod rawtar;
pub mod registry;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

/// Where the static busybox lives on the test machine.
pub const BUSYBOX: &str = "/bin/busybox";

/// A fixed timestamp for every fixture file, so fixtures are reproducible.
pub const FIXTURE_MTIME: u64 = 1_700_000_000;

/// `/etc/passwd` of the fixture image: root, a regular user `app` (1000)
/// and `nobody`.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// `/etc/group` of the fixture image: `app` is also in `staff` (50).
pub const GROUP: &str = "root:x:0:\n\
staff:x:50:app\n\
app:x:1000:\n\
nogroup:x:65534:\n";

/// Panics with a clear message when the machine lacks busybox-static;
/// `.ci/run` installs it.
pub fn require_busybox() {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (see .ci/run)"
    );
}

/// The applet paths (relative, e.g. `bin/sh`) that busybox provides.
pub fn applets() -> Vec<String> {
    require_busybox();
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .expect("run busybox --list-full");
    let mut list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.ends_with('/') && l != "bin/busybox")
        .collect();
    list.sort();
    list.dedup();
    list
}

/// One entry of the fixture root filesystem.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A directory with its mode.
    Dir(u32),
    /// A regular file with its mode and content.
    File(u32, Vec<u8>),
    /// A symlink to the given target.
    Symlink(String),
}

/// The busybox root filesystem as a sorted list of (path, entry); paths are
/// relative without a leading `./`. Applets are absolute symlinks to
/// `/bin/busybox`.
pub fn busybox_entries() -> Vec<(String, Entry)> {
    let busybox = std::fs::read(BUSYBOX).expect("read /bin/busybox");
    let mut entries: Vec<(String, Entry)> = vec![
        ("bin".into(), Entry::Dir(0o755)),
        ("bin/busybox".into(), Entry::File(0o755, busybox)),
        ("dev".into(), Entry::Dir(0o755)),
        ("etc".into(), Entry::Dir(0o755)),
        (
            "etc/group".into(),
            Entry::File(0o644, GROUP.as_bytes().to_vec()),
        ),
        (
            "etc/passwd".into(),
            Entry::File(0o644, PASSWD.as_bytes().to_vec()),
        ),
        ("home".into(), Entry::Dir(0o755)),
        ("home/app".into(), Entry::Dir(0o755)),
        ("proc".into(), Entry::Dir(0o755)),
        ("root".into(), Entry::Dir(0o700)),
        ("sbin".into(), Entry::Dir(0o755)),
        ("sys".into(), Entry::Dir(0o755)),
        ("tmp".into(), Entry::Dir(0o1777)),
        ("usr".into(), Entry::Dir(0o755)),
        ("usr/bin".into(), Entry::Dir(0o755)),
        ("usr/sbin".into(), Entry::Dir(0o755)),
        ("var".into(), Entry::Dir(0o755)),
    ];
    for applet in applets() {
        entries.push((applet, Entry::Symlink("/bin/busybox".into())));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// Writes the busybox root filesystem into `dir` (created if missing).
pub fn write_busybox_rootfs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (path, entry) in busybox_entries() {
        let dest = dir.join(&path);
        match entry {
            Entry::Dir(mode) => {
                std::fs::create_dir_all(&dest)?;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
            }
            Entry::File(mode, data) => {
                std::fs::write(&dest, data)?;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
            }
            Entry::Symlink(target) => std::os::unix::fs::symlink(target, &dest)?,
        }
    }
    Ok(())
}

/// Writes `entries` as an uncompressed layer tar (owned by 0:0, fixed mtime).
pub fn write_layer_tar<W: Write>(w: W, entries: &[(String, Entry)]) -> io::Result<W> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(FIXTURE_MTIME);
        match entry {
            Entry::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Entry::File(mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Entry::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

/// The busybox root filesystem as one uncompressed layer tar.
pub fn busybox_layer() -> Vec<u8> {
    write_layer_tar(Vec::new(), &busybox_entries()).expect("write busybox layer")
}

/// Gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An image made of uncompressed layer tars and a config.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    /// The repository:tag it is saved under, e.g. `busybox:latest`.
    pub repo_tag: String,
    /// The layers, uncompressed tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// Config `Env`.
    pub env: Vec<String>,
    /// Config `Cmd`.
    pub cmd: Vec<String>,
}

impl FixtureImage {
    /// The busybox base image, one layer, `Cmd ["sh"]`.
    pub fn busybox(repo_tag: &str) -> Self {
        FixtureImage {
            repo_tag: repo_tag.to_string(),
            layers: vec![busybox_layer()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: vec!["sh".into()],
        }
    }

    /// The image config JSON (bytes exactly as written).
    pub fn config_json(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| sha256(l)).collect();
        let history: Vec<_> = self
            .layers
            .iter()
            .map(|_| json!({"created": "2023-11-14T22:13:20Z", "created_by": "testkit fixture"}))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": host_arch(),
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": self.env, "Cmd": self.cmd},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .expect("config json")
    }
}

/// The OCI architecture name of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// How a docker-archive fixture lays out its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveStyle {
    /// Pre-25 `docker save`: `<id>/layer.tar`, `<hex>.json`, `manifest.json`, `repositories`.
    Legacy,
    /// Docker 25+: also an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`),
    /// with `manifest.json` pointing into `blobs/`.
    Docker25,
}

fn tar_file<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, path, data)
}

fn tar_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, io::empty())
}

/// Writes `images` as one `docker save`-style archive at `path`; with
/// `gzip_layers` the layer files are gzip-compressed (as `docker load`
/// accepts).
pub fn write_docker_archive(
    path: &Path,
    images: &[FixtureImage],
    style: ArchiveStyle,
    gzip_layers: bool,
) -> io::Result<PathBuf> {
    let file = std::fs::File::create(path)?;
    let mut b = tar::Builder::new(file);
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    let mut index_manifests = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    if style == ArchiveStyle::Docker25 {
        tar_dir(&mut b, "blobs/")?;
        tar_dir(&mut b, "blobs/sha256/")?;
    }
    for image in images {
        let config = image.config_json();
        let config_digest = sha256(&config);
        let config_hex = config_digest.trim_start_matches("sha256:").to_string();
        let mut layer_paths = Vec::new();
        let mut oci_layers = Vec::new();
        let mut last_id = String::new();
        for layer in &image.layers {
            let data = if gzip_layers {
                gzip(layer)
            } else {
                layer.clone()
            };
            let digest = sha256(&data);
            let hex = digest.trim_start_matches("sha256:").to_string();
            let p = match style {
                ArchiveStyle::Legacy => {
                    if written.insert(hex.clone()) {
                        tar_dir(&mut b, &format!("{hex}/"))?;
                        tar_file(&mut b, &format!("{hex}/VERSION"), b"1.0")?;
                        tar_file(
                            &mut b,
                            &format!("{hex}/json"),
                            format!("{{\"id\":\"{hex}\"}}").as_bytes(),
                        )?;
                        tar_file(&mut b, &format!("{hex}/layer.tar"), &data)?;
                    }
                    format!("{hex}/layer.tar")
                }
                ArchiveStyle::Docker25 => {
                    if written.insert(hex.clone()) {
                        tar_file(&mut b, &format!("blobs/sha256/{hex}"), &data)?;
                    }
                    format!("blobs/sha256/{hex}")
                }
            };
            let media = if gzip_layers {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            oci_layers.push(json!({"mediaType": media, "digest": digest, "size": data.len()}));
            layer_paths.push(p);
            last_id = hex;
        }
        let config_path = match style {
            ArchiveStyle::Legacy => format!("{config_hex}.json"),
            ArchiveStyle::Docker25 => format!("blobs/sha256/{config_hex}"),
        };
        if written.insert(config_hex.clone()) {
            tar_file(&mut b, &config_path, &config)?;
        }
        manifest.push(
            json!({"Config": config_path, "RepoTags": [image.repo_tag], "Layers": layer_paths}),
        );
        let (repo, tag) = image
            .repo_tag
            .rsplit_once(':')
            .unwrap_or((&image.repo_tag, "latest"));
        repositories
            .entry(repo.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(tag.to_string(), json!(last_id));
        if style == ArchiveStyle::Docker25 {
            let m = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
                "layers": oci_layers,
            }))?;
            let md = sha256(&m);
            let mhex = md.trim_start_matches("sha256:").to_string();
            if written.insert(mhex.clone()) {
                tar_file(&mut b, &format!("blobs/sha256/{mhex}"), &m)?;
            }
            index_manifests.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md, "size": m.len(),
                "annotations": {
                    "io.containerd.image.name": format!("docker.io/library/{}", image.repo_tag),
                    "org.opencontainers.image.ref.name": tag,
                },
            }));
        }
    }
    if style == ArchiveStyle::Docker25 {
        tar_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index_manifests});
        tar_file(&mut b, "index.json", &serde_json::to_vec(&index)?)?;
    }
    tar_file(&mut b, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    tar_file(&mut b, "repositories", &serde_json::to_vec(&repositories)?)?;
    b.into_inner()?.sync_all()?;
    Ok(path.to_path_buf())
}

/// Writes `image` as an OCI image layout tar (no docker `manifest.json`),
/// tagged with the tag part of its `repo_tag`.
pub fn write_oci_archive(
    path: &Path,
    image: &FixtureImage,
    gzip_layers: bool,
) -> io::Result<PathBuf> {
    let file = std::fs::File::create(path)?;
    let mut b = tar::Builder::new(file);
    tar_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let config = image.config_json();
    let config_digest = sha256(&config);
    tar_file(
        &mut b,
        &format!("blobs/sha256/{}", &config_digest[7..]),
        &config,
    )?;
    let mut layers = Vec::new();
    for layer in &image.layers {
        let data = if gzip_layers {
            gzip(layer)
        } else {
            layer.clone()
        };
        let d = sha256(&data);
        tar_file(&mut b, &format!("blobs/sha256/{}", &d[7..]), &data)?;
        let media = if gzip_layers {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        layers.push(json!({"mediaType": media, "digest": d, "size": data.len()}));
    }
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    }))?;
    let md = sha256(&m);
    tar_file(&mut b, &format!("blobs/sha256/{}", &md[7..]), &m)?;
    let tag = image
        .repo_tag
        .rsplit_once(':')
        .map(|(_, t)| t)
        .unwrap_or("latest");
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": m.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]});
    tar_file(&mut b, "index.json", &serde_json::to_vec(&index)?)?;
    b.into_inner()?.sync_all()?;
    Ok(path.to_path_buf())
}
