//! Shared helpers of the `build_remote*` tests: the `build_common`
//! state directories, a seeded registry holding the busybox fixture,
//! and readers for what a registry holds (manifests, cache configs) and
//! for what a fault proxy saw.

#![allow(dead_code)]

#[path = "../build_common/mod.rs"]
pub(crate) mod build_common;

pub(crate) use build_common::{Kiln, assert_all_cached, outcome};
use testkit::registry::TestRegistry;

/// A registry holding the busybox fixture as `HOST/busybox:latest`;
/// returns it and that reference.
pub(crate) fn seeded_registry() -> (TestRegistry, String) {
    let reg = TestRegistry::start();
    let seed = Kiln::new();
    let base = format!("{}/busybox:latest", reg.host());
    seed.ok(&["push", "-q", "busybox:latest", &base]);
    (reg, base)
}

/// The body of `GET http://HOST/PATH`, which must answer 200.
pub(crate) fn http_get(host: &str, path: &str) -> Vec<u8> {
    let (status, body) = testkit::registry::http_get(host, path);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// A manifest (or any JSON document) a registry serves, by tag or digest.
pub(crate) fn get_json(host: &str, path: &str) -> serde_json::Value {
    let body = http_get(host, path);
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", String::from_utf8_lossy(&body)))
}

/// The cache manifest at `HOST/REPO:TAG` and its cache config.
pub(crate) fn cache_manifest(
    host: &str,
    repo: &str,
    tag: &str,
) -> (serde_json::Value, serde_json::Value) {
    let m = get_json(host, &format!("/v2/{repo}/manifests/{tag}"));
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let cfg = get_json(host, &format!("/v2/{repo}/blobs/{cfg_digest}"));
    (m, cfg)
}

/// Blob digests fetched (`GET …/blobs/sha256:…`) from repository `repo`
/// through a fault proxy, in order.
pub(crate) fn blob_gets(log: &[String], repo: &str) -> Vec<String> {
    let prefix = format!("GET /v2/{repo}/blobs/");
    log.iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split([' ', '?']).next().unwrap().to_string())
        .collect()
}

/// The image's layer diffIDs.
pub(crate) fn diff_ids(k: &Kiln, image: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&k.ok(&["inspect", "-f", "{{json .RootFS}}", image])).unwrap();
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}
