//! Reading image configs.
//!
//! The config bytes are stored verbatim (their digest is the image ID), so
//! they are read here as loose JSON rather than through oci-spec's typed
//! `ImageConfiguration`, which would drop docker's extensions
//! (`Healthcheck`, `OnBuild`, `Shell`, `container_config`, …) that
//! `inspect` must show.

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// One `history` entry of a config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    /// RFC 3339 time.
    pub created: Option<String>,
    /// The instruction that made it.
    pub created_by: String,
    /// Free-form comment.
    pub comment: String,
    /// Whether it made no layer.
    pub empty_layer: bool,
}

/// A parsed image config.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    json: Map<String, Value>,
}

impl ImageConfig {
    /// Parses config bytes; `id` names it in errors.
    pub fn parse(bytes: &[u8], id: &Digest) -> Result<ImageConfig> {
        let bad = |reason: String| Error::InvalidImage {
            what: format!("config {id}"),
            reason,
        };
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match v {
            Value::Object(json) => Ok(ImageConfig { json }),
            _ => Err(bad("not a JSON object".into())),
        }
    }

    /// The whole document.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// `rootfs.diff_ids`.
    pub fn diff_ids(&self, id: &Digest) -> Result<Vec<Digest>> {
        let bad = |reason: &str| Error::InvalidImage {
            what: format!("config {id}"),
            reason: reason.to_string(),
        };
        let ids = self
            .json
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no rootfs.diff_ids"))?;
        ids.iter()
            .map(|d| {
                d.as_str()
                    .ok_or_else(|| bad("rootfs.diff_ids holds a non-string"))
                    .and_then(|s| Digest::parse(s).map_err(|_| bad(&format!("bad diffID {s:?}"))))
            })
            .collect()
    }

    /// `created`, as written.
    pub fn created(&self) -> Option<&str> {
        self.str("created")
    }

    /// A top-level string field.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }

    /// The runtime `config` object (Env, Cmd, Labels, …), empty if absent.
    pub fn container_config(&self) -> Map<String, Value> {
        self.json
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// `config.Labels`.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.json
            .get("config")
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `history`, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let Some(h) = self.json.get("history").and_then(Value::as_array) else {
            return Vec::new();
        };
        h.iter()
            .map(|e| HistoryEntry {
                created: e.get("created").and_then(Value::as_str).map(str::to_string),
                created_by: e
                    .get("created_by")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                comment: e
                    .get("comment")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                empty_layer: e
                    .get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        let raw = br#"{"architecture":"amd64","os":"linux","created":"2023-11-14T22:13:20Z",
            "config":{"Env":["A=1"],"Labels":{"k":"v"}},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"x","empty_layer":true},{"created_by":"y"}]}"#;
        let id = Digest::of(raw);
        let c = ImageConfig::parse(raw, &id).unwrap();
        assert_eq!(c.diff_ids(&id).unwrap().len(), 1);
        assert_eq!(c.created(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(c.labels(), vec![("k".to_string(), "v".to_string())]);
        let h = c.history();
        assert!(h[0].empty_layer && !h[1].empty_layer);
        assert!(ImageConfig::parse(b"[]", &id).is_err());
        let nofs = ImageConfig::parse(br#"{"os":"linux"}"#, &id).unwrap();
        assert!(
            nofs.diff_ids(&id)
                .unwrap_err()
                .to_string()
                .contains("rootfs")
        );
    }
}
