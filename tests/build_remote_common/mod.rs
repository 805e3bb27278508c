//! Shared helpers of the `build_remote*` tests: state directories (the
//! `build_common` ones) whose `kiln` runs use a private, empty docker
//! config and no proxy, a seeded registry holding the busybox fixture,
//! and readers for what a registry holds (manifests, cache configs) and
//! for what a fault proxy saw.

#![allow(dead_code)]

#[path = "../build_common/mod.rs"]
pub(crate) mod build_common;

use std::process::Output;

pub(crate) use build_common::{Kiln, outcome, steps};
use testkit::registry::TestRegistry;

/// `kiln ARGS…` in `k`'s state directory, isolated from the host's
/// docker config, proxies and registry settings; `env` adds variables.
pub(crate) fn run(k: &Kiln, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = k.cmd(args);
    c.env("DOCKER_CONFIG", k.path("docker-config"))
        .env_remove("KILN_INSECURE_REGISTRIES")
        .env_remove("KILN_REGISTRY_TIMEOUT")
        .env_remove("KILN_REGISTRY_RETRIES")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kiln")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and expects success; returns (stdout, stderr).
pub(crate) fn ok(k: &Kiln, args: &[&str]) -> (String, String) {
    ok_env(k, args, &[])
}

/// [`ok`] with extra environment.
pub(crate) fn ok_env(k: &Kiln, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = run(k, args, env);
    assert!(
        out.status.success(),
        "kiln {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Runs and expects failure; returns stderr.
pub(crate) fn fails(k: &Kiln, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(k, args, env);
    assert!(
        !out.status.success(),
        "kiln {args:?} should have failed; stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// `kiln build --progress=plain ARGS… CTX`, expecting success; returns
/// the progress (stderr).
pub(crate) fn build(k: &Kiln, args: &[&str]) -> String {
    build_env(k, args, &[])
}

/// [`build`] with extra environment.
pub(crate) fn build_env(k: &Kiln, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut a: Vec<&str> = vec!["build", "--progress=plain"];
    a.extend_from_slice(args);
    let ctx = k.ctx.to_str().unwrap().to_string();
    a.push(&ctx);
    ok_env(k, &a, env).1
}

/// `kiln build … CTX` expecting failure; returns stderr.
pub(crate) fn build_fails(k: &Kiln, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut a: Vec<&str> = vec!["build", "--progress=plain"];
    a.extend_from_slice(args);
    let ctx = k.ctx.to_str().unwrap().to_string();
    a.push(&ctx);
    fails(k, &a, env)
}

/// The image ID of `image` in `k`'s store.
pub(crate) fn id(k: &Kiln, image: &str) -> String {
    ok(k, &["inspect", "-f", "{{.Id}}", image])
        .0
        .trim()
        .to_string()
}

/// A registry holding the busybox fixture as `HOST/busybox:latest`;
/// returns it and that reference.
pub(crate) fn seeded_registry() -> (TestRegistry, String) {
    let reg = TestRegistry::start();
    let seed = Kiln::new();
    let base = format!("{}/busybox:latest", reg.host());
    ok(&seed, &["push", "-q", "busybox:latest", &base]);
    (reg, base)
}

/// Steps of plain progress that are Dockerfile steps (not `[internal]`
/// or the CLI's own), with their outcome.
pub(crate) fn dockerfile_steps(progress: &str) -> Vec<(String, String)> {
    steps(progress)
        .into_iter()
        .filter(|(n, _)| n.starts_with('[') && !n.starts_with("[internal]"))
        .collect()
}

/// A manifest (or any JSON document) a registry serves, by tag or digest.
pub(crate) fn get_json(host: &str, path: &str) -> serde_json::Value {
    let body = http_get(host, path);
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", String::from_utf8_lossy(&body)))
}

/// The body of `GET http://HOST/PATH` (following no redirects), with
/// manifest media types accepted.
pub(crate) fn http_get(host: &str, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/vnd.oci.image.manifest.v1+json, \
         application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let at = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&buf[..at]).into_owned();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}"
    );
    buf[at + 4..].to_vec()
}

/// The status of `GET http://HOST/PATH`.
pub(crate) fn http_status(host: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
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
        serde_json::from_str(&ok(k, &["inspect", "-f", "{{json .RootFS}}", image]).0).unwrap();
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}
