//! Helpers for the crate's unit tests.

use crate::{Digest, Image, ImageRef, LayerHints, NewImage, Store};

/// A fresh store in a temporary directory.
pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("root")).unwrap();
    (t, s)
}

/// A minimal config for `diff_ids`.
pub(crate) fn config_for(diff_ids: &[Digest], created: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Cmd": ["sh"], "Labels": {"test": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// Ingests `layers` (tar bytes, possibly compressed) and stores an image
/// tagged `tags`.
pub(crate) fn image(s: &Store, layers: &[Vec<u8>], tags: &[&str], created: &str) -> Image {
    let ids: Vec<Digest> = layers
        .iter()
        .map(|l| {
            s.ingest_layer(&l[..], LayerHints::default())
                .unwrap()
                .diff_id
        })
        .collect();
    let tags: Vec<ImageRef> = tags.iter().map(|t| ImageRef::parse(t).unwrap()).collect();
    let config = config_for(&ids, created);
    s.put_image(&NewImage {
        config: &config,
        layers: &ids,
        tags: &tags,
        ..Default::default()
    })
    .unwrap()
}

/// Names of the files under `dir` (non-recursive), sorted.
pub(crate) use testkit::fs::ls;
