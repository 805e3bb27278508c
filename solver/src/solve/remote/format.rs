//! The wire formats of the remote build cache, in BuildKit's shapes.
//!
//! - **Cache config** (`application/vnd.buildkit.cacheconfig.v0`): the
//!   config blob of a cache manifest. `layers` is a forest of layer blobs
//!   (each names its parent by index, `-1` for none, so a node stands for
//!   a whole chain bottom-up), `records` map cache keys to layer nodes.
//!   Every kiln record is a root record (no `inputs`) whose `digest` is
//!   `sha256:<kiln cache key>`: kiln's keys already digest the step's
//!   definition, its inputs' content ids and its context sources, so one
//!   level suffices. BuildKit can parse these configs; its own keys never
//!   equal kiln's, so the two never reuse each other's records.
//! - **Inline cache** (image config key `moby.buildkit.cache.v0`): the
//!   same records as a JSON array, base64-encoded (Go's `[]byte`), whose
//!   layer indexes point at the image's own layers (the chain of layers
//!   `0..=index`).

use std::collections::HashMap;

use base64::Engine as _;
use cache::{Descriptor, Digest};
use serde::{Deserialize, Serialize};

/// Media type of the cache config blob (BuildKit's).
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";
/// The image config key holding the inline cache (BuildKit's).
pub const INLINE_CACHE_KEY: &str = "moby.buildkit.cache.v0";
/// Layer descriptor annotation: the uncompressed digest (diffID).
pub const ANNOTATION_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// Layer descriptor annotation: when the layer was made.
pub const ANNOTATION_CREATED: &str = "buildkit/createdat";

/// `application/vnd.buildkit.cacheconfig.v0`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheConfig {
    /// Layer nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) layers: Vec<CacheLayer>,
    /// Cache records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) records: Vec<CacheRecord>,
}

/// A layer node: a blob on top of its parent node's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheLayer {
    /// The layer blob's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) blob: Option<Digest>,
    /// The parent node, `-1` for none. Go omits `0`, so a missing field
    /// means node 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) parent: i64,
    /// What the blob is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<LayerAnnotations>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `CacheLayer.annotations` (BuildKit's `LayerAnnotations`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerAnnotations {
    /// The blob's media type.
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub(crate) media_type: String,
    /// The layer's diffID.
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub(crate) diff_id: Option<Digest>,
    /// The blob's size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) size: i64,
}

/// A cache record: a key and the layer chains that answer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheRecord {
    /// `sha256:<key>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) digest: String,
    /// Results: layer node indexes.
    #[serde(rename = "layers", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) results: Vec<CacheResult>,
    /// Links to the records this one is derived from (BuildKit's chains;
    /// kiln writes none and ignores records that have them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) inputs: Vec<serde_json::Value>,
}

/// One result of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheResult {
    /// The layer node (or, inline, the image layer index).
    pub(crate) layer: i64,
    /// When the result was made (RFC 3339).
    #[serde(
        rename = "createdAt",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub(crate) created_at: String,
}

/// A cache entry to export: a key and the layers (diffIDs, bottom first)
/// of its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The kiln cache key (hex).
    pub(crate) key: String,
    /// The result's layers.
    pub(crate) layers: Vec<Digest>,
    /// When the result was made.
    pub(crate) created: String,
}

/// The record digest of a kiln key.
fn record_digest(key: &str) -> String {
    format!("sha256:{key}")
}

/// The kiln key of a record digest, if it is one kiln could have written.
fn record_key(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| hex.to_string())
}

/// The inline cache of an image whose layers are `image_layers`: every
/// entry whose result is a prefix of them. `None` when there is none.
pub(crate) fn inline_value(entries: &[Entry], image_layers: &[Digest]) -> Option<String> {
    let mut records: Vec<CacheRecord> = Vec::new();
    for e in entries {
        if e.layers.is_empty()
            || e.layers.len() > image_layers.len()
            || image_layers[..e.layers.len()] != e.layers[..]
            || records.iter().any(|r| r.digest == record_digest(&e.key))
        {
            continue;
        }
        records.push(CacheRecord {
            digest: record_digest(&e.key),
            results: vec![CacheResult {
                layer: e.layers.len() as i64 - 1,
                created_at: e.created.clone(),
            }],
            inputs: Vec::new(),
        });
    }
    if records.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(&records).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(json))
}

/// The entries of an inline cache value, given the image's layers.
/// Records that are not kiln's, or that point past the image, are skipped.
pub(crate) fn parse_inline(value: &str, image_layers: &[Digest]) -> Result<Vec<Entry>, String> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| format!("{INLINE_CACHE_KEY} is not base64: {e}"))?;
    let records: Vec<CacheRecord> = serde_json::from_slice(&json)
        .map_err(|e| format!("{INLINE_CACHE_KEY} is not a list of cache records: {e}"))?;
    let mut out = Vec::new();
    for r in records {
        let Some(key) = record_key(&r.digest) else {
            continue;
        };
        if !r.inputs.is_empty() {
            continue;
        }
        for res in &r.results {
            let Ok(i) = usize::try_from(res.layer) else {
                continue;
            };
            if i < image_layers.len() {
                out.push(Entry {
                    key: key.clone(),
                    layers: image_layers[..=i].to_vec(),
                    created: res.created_at.clone(),
                });
                break;
            }
        }
    }
    Ok(out)
}

/// A cache config and the blobs it names, for the given entries: one
/// layer node per distinct chain prefix. `blob` gives each diffID's blob
/// descriptor.
pub(crate) fn build_config(
    entries: &[Entry],
    blob: &HashMap<Digest, Descriptor>,
) -> Result<CacheConfig, String> {
    let mut cfg = CacheConfig::default();
    // Chain (as diffIDs, bottom first) → node index.
    let mut nodes: HashMap<Vec<Digest>, usize> = HashMap::new();
    for e in entries {
        if e.layers.is_empty()
            || cfg
                .records
                .iter()
                .any(|r| r.digest == record_digest(&e.key))
        {
            continue;
        }
        let mut parent: i64 = -1;
        for n in 1..=e.layers.len() {
            let prefix = &e.layers[..n];
            if let Some(&i) = nodes.get(prefix) {
                parent = i as i64;
                continue;
            }
            let d = &prefix[n - 1];
            let desc = blob
                .get(d)
                .ok_or_else(|| format!("no blob for layer {d}"))?;
            cfg.layers.push(CacheLayer {
                blob: Some(desc.digest.clone()),
                parent,
                annotations: Some(LayerAnnotations {
                    media_type: desc.media_type.clone(),
                    diff_id: Some(d.clone()),
                    size: desc.size as i64,
                }),
            });
            let i = cfg.layers.len() - 1;
            nodes.insert(prefix.to_vec(), i);
            parent = i as i64;
        }
        cfg.records.push(CacheRecord {
            digest: record_digest(&e.key),
            results: vec![CacheResult {
                layer: parent,
                created_at: e.created.clone(),
            }],
            inputs: Vec::new(),
        });
    }
    Ok(cfg)
}

/// A layer blob a cache config names, with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteBlob {
    /// The blob.
    pub(crate) desc: Descriptor,
    /// Its diffID.
    pub(crate) diff_id: Digest,
}

/// The entries of a cache config. `described` gives what the manifest
/// says about blobs (descriptor, diffID annotation); the config's own
/// annotations fill in what it lacks. Records whose chains name a blob
/// without a known diffID are skipped (kiln keys layers by diffID).
/// Returns the entries and every usable blob by diffID.
pub(crate) fn parse_config(
    cfg: &CacheConfig,
    described: &HashMap<Digest, RemoteBlob>,
) -> (Vec<Entry>, HashMap<Digest, Descriptor>) {
    let mut blobs: HashMap<Digest, Descriptor> = HashMap::new();
    // Each node's diffID and its blob, if known.
    let info: Vec<Option<(Digest, Descriptor)>> = cfg
        .layers
        .iter()
        .map(|l| {
            let digest = l.blob.clone()?;
            let ann = l.annotations.clone().unwrap_or_default();
            let known = described.get(&digest);
            let diff_id = known.map(|b| b.diff_id.clone()).or(ann.diff_id.clone())?;
            let desc = match known {
                Some(b) => b.desc.clone(),
                None => Descriptor {
                    media_type: ann.media_type.clone(),
                    digest,
                    size: u64::try_from(ann.size).ok()?,
                },
            };
            Some((diff_id, desc))
        })
        .collect();
    // Chains, bottom first; None where a node is unusable or loops.
    let chain = |mut i: i64| -> Option<Vec<Digest>> {
        let mut out = Vec::new();
        while i >= 0 {
            let idx = usize::try_from(i).ok()?;
            if out.len() > cfg.layers.len() {
                return None; // a cycle
            }
            let (d, _) = info.get(idx)?.as_ref()?;
            out.push(d.clone());
            i = cfg.layers[idx].parent;
        }
        out.reverse();
        Some(out)
    };
    for (d, desc) in info.iter().flatten() {
        blobs.entry(d.clone()).or_insert_with(|| desc.clone());
    }
    let mut entries = Vec::new();
    for r in &cfg.records {
        let Some(key) = record_key(&r.digest) else {
            continue;
        };
        if !r.inputs.is_empty() {
            continue;
        }
        if let Some((layers, res)) = r
            .results
            .iter()
            .find_map(|res| chain(res.layer).filter(|c| !c.is_empty()).map(|c| (c, res)))
        {
            entries.push(Entry {
                key,
                layers,
                created: res.created_at.clone(),
            });
        }
    }
    (entries, blobs)
}

/// The cache manifest: an OCI image manifest whose config is the cache
/// config and whose layers are the blobs, each annotated with its diffID.
pub(crate) fn build_manifest(config: &Descriptor, layers: &[(Descriptor, Digest)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, diff_id)| {
            serde_json::json!({
                "mediaType": d.media_type,
                "digest": d.digest,
                "size": d.size,
                "annotations": { ANNOTATION_UNCOMPRESSED: diff_id },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": cache::media::OCI_MANIFEST,
        "config": {
            "mediaType": CACHE_CONFIG_MEDIA_TYPE,
            "digest": config.digest,
            "size": config.size,
        },
        "layers": layers,
    }))
    .expect("manifest serialises")
}

/// A descriptor as it appears in a manifest or index, with annotations.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AnnotatedDescriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    #[serde(default)]
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) annotations: HashMap<String, String>,
}

impl AnnotatedDescriptor {
    /// The plain descriptor.
    pub(crate) fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }

    /// The diffID annotation, if any.
    pub(crate) fn diff_id(&self) -> Option<Digest> {
        self.annotations
            .get(ANNOTATION_UNCOMPRESSED)
            .and_then(|d| Digest::parse(d).ok())
    }
}

/// An image manifest or an index, as far as the cache needs it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    #[serde(default)]
    pub(crate) config: Option<AnnotatedDescriptor>,
    #[serde(default)]
    pub(crate) layers: Vec<AnnotatedDescriptor>,
    #[serde(default)]
    pub(crate) manifests: Vec<AnnotatedDescriptor>,
}

impl Manifest {
    /// Parses manifest or index bytes.
    pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("{what}: invalid manifest: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn entry(key: u8, layers: &[u8]) -> Entry {
        Entry {
            key: hex::encode([key; 32]),
            layers: layers.iter().map(|n| d(*n)).collect(),
            created: format!("2024-01-0{key}T00:00:00Z"),
        }
    }

    #[test]
    fn inline_cache_round_trips_and_is_buildkit_shaped() {
        let image = vec![d(1), d(2), d(3)];
        let entries = vec![entry(1, &[1, 2]), entry(2, &[1, 2, 3]), entry(3, &[9])];
        let v = inline_value(&entries, &image).unwrap();
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(&v)
                .unwrap(),
        )
        .unwrap();
        // A JSON array of records; layer indexes into the image.
        assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
        assert_eq!(json[0]["digest"], format!("sha256:{}", entries[0].key));
        assert_eq!(json[0]["layers"][0]["layer"], 1);
        assert_eq!(json[1]["layers"][0]["layer"], 2);
        assert_eq!(json[1]["layers"][0]["createdAt"], "2024-01-02T00:00:00Z");
        let back = parse_inline(&v, &image).unwrap();
        assert_eq!(back, entries[..2].to_vec());
        // Against a shorter image, the record past its end is dropped.
        assert_eq!(
            parse_inline(&v, &image[..2]).unwrap(),
            entries[..1].to_vec()
        );
        assert!(inline_value(&entries[2..], &image).is_none());
        assert!(parse_inline("!!", &image).is_err());
    }

    #[test]
    fn config_shares_chain_prefixes_and_round_trips() {
        let entries = vec![
            entry(1, &[1, 2]),
            entry(2, &[1, 2, 3]),
            entry(3, &[1, 4]),
            entry(4, &[5]),
        ];
        let blob: HashMap<Digest, Descriptor> = (1..=5)
            .map(|n| {
                (
                    d(n),
                    Descriptor {
                        media_type: cache::media::OCI_LAYER_GZIP.into(),
                        digest: Digest::of(&[n, n]),
                        size: n as u64 * 10,
                    },
                )
            })
            .collect();
        let cfg = build_config(&entries, &blob).unwrap();
        // Nodes: [1], [1,2], [1,2,3], [1,4], [5].
        assert_eq!(cfg.layers.len(), 5);
        assert_eq!(cfg.layers[0].parent, -1);
        assert_eq!(cfg.layers[1].parent, 0);
        assert_eq!(cfg.layers[3].parent, 0);
        assert_eq!(cfg.layers[4].parent, -1);
        let json = serde_json::to_value(&cfg).unwrap();
        assert!(json["layers"][1].get("parent").is_none(), "Go omits 0");
        assert_eq!(json["layers"][0]["parent"], -1);
        assert_eq!(json["layers"][0]["annotations"]["diffID"], d(1).to_string());
        assert_eq!(json["records"][2]["layers"][0]["layer"], 3);
        let bytes = serde_json::to_vec(&cfg).unwrap();
        let back: CacheConfig = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, cfg);
        let (got, blobs) = parse_config(&back, &HashMap::new());
        assert_eq!(got, entries);
        assert_eq!(blobs.len(), 5);
        assert_eq!(blobs[&d(3)], blob[&d(3)]);
        assert!(build_config(&entries, &HashMap::new()).is_err());
    }

    #[test]
    fn foreign_records_are_skipped() {
        let cfg: CacheConfig = serde_json::from_value(serde_json::json!({
            "layers": [
                {"blob": Digest::of(b"a"), "parent": -1,
                 "annotations": {"mediaType": cache::media::OCI_LAYER_GZIP, "diffID": d(1), "size": 3}},
                {"blob": Digest::of(b"b"), "parent": 0},
                {"blob": Digest::of(b"c"), "parent": 2, "annotations": {"diffID": d(3), "size": 1}},
            ],
            "records": [
                {"digest": "sha256:abc"},
                {"digest": format!("sha256:{}", "1".repeat(64)), "layers": [{"layer": 1}]},
                {"digest": format!("sha256:{}", "2".repeat(64)), "layers": [{"layer": 0}],
                 "inputs": [[{"selector": "", "link": 0}]]},
                {"digest": format!("sha256:{}", "3".repeat(64)), "layers": [{"layer": 2}]},
                {"digest": format!("sha256:{}", "4".repeat(64)), "layers": [{"layer": 0}]},
            ],
        }))
        .unwrap();
        let (got, _) = parse_config(&cfg, &HashMap::new());
        // Only the last: the second's chain has a blob without a diffID,
        // the third has inputs, the fourth loops.
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].key, "4".repeat(64));
        assert_eq!(got[0].layers, vec![d(1)]);
    }
}
