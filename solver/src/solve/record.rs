//! Cache keys and the cache entries stored under them.
//!
//! A vertex's key is the sha256 of the canonical JSON of: the op as the
//! frontend defined it (its definition, minus what BuildKit also leaves
//! out: proxy variables; secrets are never in an op), the content ids of its
//! inputs (the ChainID of each input filesystem's layers — so a stage that
//! is rebuilt into identical layers still hits below), and, for everything
//! read from the build context, the content digest of exactly the selected
//! files (names, modes, ownership, content; not mtimes, not other files).
//!
//! An entry ([`Record`]) keeps what the key was made of — the definition,
//! the input ids, the per-source digests and, for small sources, per-file
//! digests — so a later step can explain a miss by comparing it with the
//! entry the same step used last time (`last:` index, see [`step_key`]).
//! It also holds the result (layers) and when the layer was made.
//!
//! Index layout in the store's cache table: `k:<key>` → [`Record`] JSON,
//! pinning the result's layers; `last:<step>` → the key the step had in
//! its last build; `p:<shape>` → empty, present once any entry was
//! recorded for a definition and inputs (whatever the context content:
//! see [`shape_key`]); `s:…` is the context stat cache (`statcache.rs`).

use cache::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::value::Fs;

/// Version of the key derivation and record format. Bump it when either
/// changes meaning: old entries then simply stop matching.
pub(crate) const KEY_VERSION: u32 = 1;

/// The content digest of one source read from the build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceDigest {
    /// Which source: `copy[N] <path>` or `mount <target>`.
    pub(crate) what: String,
    /// The selection digest.
    pub(crate) digest: String,
    /// Per-file digests (path relative to the source, digest), for small
    /// sources only; empty when the source has too many entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) files: Vec<(String, String)>,
}

/// What a key is computed from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KeyParts {
    /// Normalised op definition.
    pub(crate) def: serde_json::Value,
    /// Content ids of the inputs, by input position.
    pub(crate) inputs: Vec<String>,
    /// Digests of context sources (only `what` and `digest` are keyed).
    #[serde(serialize_with = "ser_sources")]
    pub(crate) sources: Vec<SourceDigest>,
    /// `SOURCE_DATE_EPOCH`, when set: it changes the layer (timestamps are
    /// clamped), so it is part of the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) epoch: Option<i64>,
}

fn ser_sources<S: serde::Serializer>(v: &[SourceDigest], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for d in v {
        seq.serialize_element(&(&d.what, &d.digest))?;
    }
    seq.end()
}

impl KeyParts {
    /// The key: hex sha256 of the versioned canonical JSON.
    pub(crate) fn key(&self) -> String {
        #[derive(Serialize)]
        struct Versioned<'a> {
            v: u32,
            parts: &'a KeyParts,
        }
        let bytes = serde_json::to_vec(&Versioned {
            v: KEY_VERSION,
            parts: self,
        })
        .unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The `p:` index key of a key's *shape*: its definition, inputs and epoch
/// without the context sources. While no entry of a shape exists, no key
/// of that shape can hit, whatever the context holds — so a first build of
/// a context copy may copy before its key is known (see `firstcopy.rs`).
pub(crate) fn shape_key(def: &serde_json::Value, inputs: &[String], epoch: Option<i64>) -> String {
    #[derive(Serialize)]
    struct Shape<'a> {
        v: u32,
        def: &'a serde_json::Value,
        inputs: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<i64>,
    }
    let bytes = serde_json::to_vec(&Shape {
        v: KEY_VERSION,
        def,
        inputs,
        epoch,
    })
    .unwrap_or_default();
    format!("p:{}", hex::encode(Sha256::digest(&bytes)))
}

/// A cache entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// [`KEY_VERSION`] when written.
    pub(crate) v: u32,
    /// The op kind (`exec`, `file`, `http`).
    pub(crate) op: String,
    /// The vertex's progress name when recorded.
    pub(crate) name: String,
    /// The normalised definition that was keyed.
    pub(crate) def: serde_json::Value,
    /// The inputs' content ids.
    pub(crate) inputs: Vec<String>,
    /// Context sources and their digests.
    #[serde(default)]
    pub(crate) sources: Vec<SourceDigest>,
    /// The result.
    pub(crate) fs: Fs,
    /// The layer the vertex added (its history entry's layer).
    #[serde(default)]
    pub(crate) layer: Option<Digest>,
    /// When that layer was made (RFC 3339).
    pub(crate) created: String,
    /// How long the step took when it ran, in milliseconds.
    #[serde(default)]
    pub(crate) duration_ms: u64,
}

impl Record {
    /// The record's index key.
    pub(crate) fn index_key(key: &str) -> String {
        format!("k:{key}")
    }
}

/// The `last:` index key of a step: the Dockerfile, the target and the
/// step's position (`[build 2/5]`), so the same step of the next build can
/// find the entry it used before.
pub(crate) fn step_key(dockerfile: &str, target: &str, name: &str) -> String {
    let pos = match name.find(']') {
        Some(i) => &name[..=i],
        None => name,
    };
    let mut h = Sha256::new();
    h.update(dockerfile.as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    h.update([0]);
    h.update(pos.as_bytes());
    format!("last:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> KeyParts {
        KeyParts {
            def: serde_json::json!({"type": "exec", "args": ["sh"]}),
            inputs: vec!["scratch".into()],
            sources: vec![SourceDigest {
                what: "copy[0] /a".into(),
                digest: "sha256:1".into(),
                files: vec![("a".into(), "sha256:1".into())],
            }],
            epoch: None,
        }
    }

    #[test]
    fn keys_cover_definition_inputs_and_sources_only() {
        let a = parts();
        let mut b = parts();
        b.sources[0].files.clear();
        assert_eq!(a.key(), b.key(), "per-file detail is not keyed");
        b.sources[0].digest = "sha256:2".into();
        assert_ne!(a.key(), b.key());
        let mut c = parts();
        c.inputs[0] = "sha256:x".into();
        assert_ne!(a.key(), c.key());
        let mut d = parts();
        d.def = serde_json::json!({"type": "exec", "args": ["bash"]});
        assert_ne!(a.key(), d.key());
        assert_eq!(a.key().len(), 64);
    }

    #[test]
    fn step_keys_ignore_the_instruction_text() {
        assert_eq!(
            step_key("/d/Dockerfile", "", "[build 2/5] RUN make"),
            step_key("/d/Dockerfile", "", "[build 2/5] RUN make -j4")
        );
        assert_ne!(
            step_key("/d/Dockerfile", "", "[build 2/5] RUN make"),
            step_key("/d/Dockerfile", "", "[build 3/5] RUN make")
        );
    }
}
