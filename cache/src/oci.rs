//! Reading OCI (and docker v2s2) manifests and indexes with oci-spec's
//! image model, converted to the crate's own [`Descriptor`].
//!
//! oci-spec checks the structure (schema version, required fields,
//! digest syntax); docker's media types parse as well, since oci-spec
//! keeps unknown media types as strings.

use std::collections::HashMap;

use oci_spec::image::{Descriptor as OciDescriptor, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::records::{Descriptor, media};

/// The parts of a manifest kiln uses.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub(crate) media_type: String,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}

/// One entry of an index.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub(crate) descriptor: Descriptor,
    pub(crate) annotations: HashMap<String, String>,
    /// `(os, architecture)`, if the entry says.
    pub(crate) platform: Option<(String, String)>,
}

fn convert(d: &OciDescriptor, what: &str) -> Result<Descriptor> {
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest: Digest::parse(d.digest().as_ref()).map_err(|e| Error::InvalidImage {
            what: what.to_string(),
            reason: e.to_string(),
        })?,
        size: d.size(),
    })
}

/// Parses a manifest; `what` names it in errors.
pub(crate) fn parse_manifest(bytes: &[u8], what: &str) -> Result<Manifest> {
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| Error::InvalidImage {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Manifest {
        media_type: m
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
        config: convert(m.config(), what)?,
        layers: m
            .layers()
            .iter()
            .map(|l| convert(l, what))
            .collect::<Result<_>>()?,
    })
}

/// Whether manifest bytes are an index (OCI index or docker list).
pub(crate) fn is_index(bytes: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let mt = v
        .get("mediaType")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    mt == media::OCI_INDEX || mt == media::DOCKER_MANIFEST_LIST || v.get("manifests").is_some()
}

/// Parses an index; `what` names it in errors.
pub(crate) fn parse_index(bytes: &[u8], what: &str) -> Result<Vec<IndexEntry>> {
    let idx: ImageIndex = serde_json::from_slice(bytes).map_err(|e| Error::InvalidImage {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    idx.manifests()
        .iter()
        .map(|d| {
            Ok(IndexEntry {
                descriptor: convert(d, what)?,
                annotations: d.annotations().clone().unwrap_or_default(),
                platform: d
                    .platform()
                    .as_ref()
                    .map(|p| (p.os().to_string(), p.architecture().to_string())),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_oci_manifests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[{{"mediaType":"{}","digest":"{d}","size":2}}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP
        );
        let m = parse_manifest(docker.as_bytes(), "m").unwrap();
        assert_eq!(m.media_type, media::DOCKER_MANIFEST);
        assert_eq!(m.layers[0].media_type, media::DOCKER_LAYER_GZIP);
        assert_eq!(m.layers[0].size, 2);
        assert!(!is_index(docker.as_bytes()));
        let e = parse_manifest(b"{\"schemaVersion\":2}", "manifest X").unwrap_err();
        assert!(e.to_string().contains("manifest X"), "{e}");
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{d}","size":3,"platform":{{"os":"linux","architecture":"arm64"}},"annotations":{{"a":"b"}}}}]}}"#,
            media::OCI_MANIFEST
        );
        assert!(is_index(idx.as_bytes()));
        let entries = parse_index(idx.as_bytes(), "i").unwrap();
        assert_eq!(entries[0].platform, Some(("linux".into(), "arm64".into())));
        assert_eq!(entries[0].annotations["a"], "b");
    }
}
