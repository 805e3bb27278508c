//! Image indexes (OCI index, docker manifest list): reading them,
//! choosing the manifest for a platform, and writing them; image
//! manifests for push (OCI or docker schema 2).

use serde::Deserialize;
use serde_json::json;

use super::error::{Error, Result};
use super::platform::Platform;
use crate::digest::Digest;
use crate::records::{Descriptor, media};

/// One entry of an index.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// The manifest it points to.
    pub descriptor: Descriptor,
    /// Its platform, if the entry says.
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    manifests: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Parses an OCI index or docker manifest list; `what` names it in errors.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<Vec<IndexEntry>> {
    let raw: RawIndex = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(what, format!("invalid index: {e}")))?;
    if raw.schema_version != 2 {
        return Err(Error::invalid(
            what,
            format!("unsupported schemaVersion {}", raw.schema_version),
        ));
    }
    raw.manifests
        .into_iter()
        .map(|m| {
            let digest = Digest::parse(&m.digest)
                .map_err(|e| Error::invalid(what, format!("entry {}: {e}", m.digest)))?;
            Ok(IndexEntry {
                descriptor: Descriptor {
                    media_type: m.media_type,
                    digest,
                    size: m.size,
                },
                platform: m.platform.map(|p| Platform {
                    os: p.os,
                    architecture: p.architecture,
                    variant: p.variant.filter(|v| !v.is_empty()),
                }),
            })
        })
        .collect()
}

/// The entry of `entries` for `want`; the error lists what is available.
pub fn select_platform<'e>(
    entries: &'e [IndexEntry],
    want: &Platform,
    reference: &str,
) -> Result<&'e IndexEntry> {
    let images: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| {
            e.descriptor.media_type.is_empty()
                || e.descriptor.media_type == media::OCI_MANIFEST
                || e.descriptor.media_type == media::DOCKER_MANIFEST
        })
        .collect();
    // Exact variant matches first, then ones matching through defaults.
    let hit = images
        .iter()
        .find(|e| {
            e.platform.as_ref().is_some_and(|p| {
                p.os == want.os && p.architecture == want.architecture && p.variant == want.variant
            })
        })
        .or_else(|| {
            images.iter().find(|e| {
                e.platform
                    .as_ref()
                    .is_some_and(|p| want.matches(&p.os, &p.architecture, p.variant.as_deref()))
            })
        })
        .or_else(|| {
            // A lone entry without a platform is the image.
            (images.len() == 1 && images[0].platform.is_none()).then(|| &images[0])
        });
    match hit {
        Some(e) => Ok(e),
        None => Err(Error::NoPlatform {
            reference: reference.to_string(),
            platform: want.to_string(),
            available: {
                let list: Vec<String> = images
                    .iter()
                    .filter_map(|e| e.platform.as_ref())
                    .filter(|p| p.os != "unknown")
                    .map(|p| p.to_string())
                    .collect();
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            },
        }),
    }
}

/// An OCI index (bytes) of `manifests`, each with its platform.
pub fn build_index(manifests: &[(Descriptor, Option<Platform>)]) -> Vec<u8> {
    let entries: Vec<_> = manifests
        .iter()
        .map(|(d, p)| {
            let mut e = json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size});
            if let Some(p) = p {
                let mut pj = json!({"architecture": p.architecture, "os": p.os});
                if let Some(v) = &p.variant {
                    pj["variant"] = json!(v);
                }
                e["platform"] = pj;
            }
            e
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    }))
    .expect("index serialises")
}

/// The manifest format to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    /// OCI image manifest (the default).
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2.
    Docker,
}

/// An image manifest for `config` and `layers` (blob descriptors whose
/// media types say their compression, in OCI terms).
pub fn build_manifest(
    format: ManifestFormat,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Vec<u8> {
    let (manifest_type, config_type) = match format {
        ManifestFormat::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
        ManifestFormat::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
    };
    let layers: Vec<_> = layers
        .iter()
        .map(|l| {
            let t = match format {
                ManifestFormat::Oci => oci_layer_type(&l.media_type),
                ManifestFormat::Docker => docker_layer_type(&l.media_type),
            };
            json!({"mediaType": t, "digest": l.digest, "size": l.size})
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config.digest, "size": config.size},
        "layers": layers,
    }))
    .expect("manifest serialises")
}

fn oci_layer_type(t: &str) -> &str {
    match t {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP,
        media::DOCKER_LAYER => media::OCI_LAYER,
        other => other,
    }
}

fn docker_layer_type(t: &str) -> &str {
    match t {
        media::OCI_LAYER_GZIP => media::DOCKER_LAYER_GZIP,
        media::OCI_LAYER => media::DOCKER_LAYER,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Descriptor {
        Descriptor {
            media_type: media::OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: n as u64,
        }
    }

    #[test]
    fn index_roundtrip_and_selection() {
        let bytes = build_index(&[
            (d(1), Some(Platform::parse("linux/amd64").unwrap())),
            (d(2), Some(Platform::parse("linux/arm64/v8").unwrap())),
            (d(3), Some(Platform::parse("linux/arm/v7").unwrap())),
            (d(4), Some(Platform::parse("linux/arm/v6").unwrap())),
        ]);
        let entries = parse_index(&bytes, "index").unwrap();
        assert_eq!(entries.len(), 4);
        let pick = |p: &str| {
            select_platform(&entries, &Platform::parse(p).unwrap(), "x").map(|e| e.descriptor.size)
        };
        assert_eq!(pick("linux/amd64").unwrap(), 1);
        assert_eq!(pick("linux/arm64").unwrap(), 2);
        assert_eq!(pick("linux/arm").unwrap(), 3);
        assert_eq!(pick("linux/arm/v6").unwrap(), 4);
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert_eq!(
            e,
            "no matching manifest for linux/s390x in x (available: linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6)"
        );
        let e = parse_index(b"{\"schemaVersion\":1,\"manifests\":[]}", "idx")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idx: unsupported schemaVersion 1"), "{e}");
    }

    #[test]
    fn manifests_in_both_formats() {
        let config = Descriptor {
            media_type: media::OCI_CONFIG.into(),
            digest: Digest::of(b"c"),
            size: 1,
        };
        let layer = Descriptor {
            media_type: media::OCI_LAYER_GZIP.into(),
            digest: Digest::of(b"l"),
            size: 2,
        };
        let oci = build_manifest(ManifestFormat::Oci, &config, std::slice::from_ref(&layer));
        let m = crate::oci::parse_manifest(&oci, "m").unwrap();
        assert_eq!(m.media_type, media::OCI_MANIFEST);
        assert_eq!(m.config.media_type, media::OCI_CONFIG);
        let docker = build_manifest(ManifestFormat::Docker, &config, &[layer]);
        let m = crate::oci::parse_manifest(&docker, "m").unwrap();
        assert_eq!(m.media_type, media::DOCKER_MANIFEST);
        assert_eq!(m.config.media_type, media::DOCKER_CONFIG);
        assert_eq!(m.layers[0].media_type, media::DOCKER_LAYER_GZIP);
    }
}
