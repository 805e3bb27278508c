//! The shared build cache of issue 6, end to end against Debian's
//! `docker-registry` on 127.0.0.1: state directory A builds and exports
//! its cache (`--cache-to type=registry|local`), an empty state
//! directory B imports it (`--cache-from`) and reuses every unchanged
//! step, fetching only the layers it needs, and gets the very same image.
//! Also `mode=min` against `mode=max`, and what happens when a cache
//! cannot be imported or exported.

mod build_remote_common;

use build_remote_common::build_common::dockerfile_steps;
use build_remote_common::*;
use testkit::registry::{FaultProxy, TestRegistry};

/// A two-stage build: the builder's RUN output is only used through
/// `COPY --from`, so its layer is not part of the final image.
fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS builder\n\
         COPY src /src\n\
         RUN cat /src/*.c > /program && echo built >> /program\n\
         FROM {base}\n\
         COPY config.txt /etc/app.conf\n\
         COPY --from=builder /program /usr/bin/program\n\
         RUN wc -l /usr/bin/program > /lines\n"
    )
}

fn context(k: &Kiln, base: &str) {
    k.write("Dockerfile", dockerfile(base));
    k.write("src/main.c", "int main() { return 0; }\n");
    k.write("src/util.c", "int util() { return 1; }\n");
    k.write("config.txt", "level=1\n");
}

#[test]
fn an_empty_state_dir_reuses_a_registry_cache_and_gets_the_same_image() {
    let (reg, base) = seeded_registry();
    let proxy = FaultProxy::start(reg.host());
    let a = Kiln::empty();
    context(&a, &base);
    let cache = format!("{}/cache:main", reg.host());
    let a_push = format!("{}/app:a", reg.host());
    let p = a.build(&[
        "-t",
        &a_push,
        "--push",
        "--cache-to",
        &format!("type=registry,ref={cache},mode=max"),
    ]);
    assert!(p.contains("exporting cache to registry cache"), "{p}");
    let a_id = a.id(&a_push);

    // The cache: an OCI manifest whose config is BuildKit's cache config
    // and whose layers carry their diffIDs.
    let (m, cfg) = cache_manifest(reg.host(), "cache", "main");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    let layers = m["layers"].as_array().unwrap();
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(
            l["annotations"]["containerd.io/uncompressed"].is_string(),
            "{l}"
        );
    }
    assert_eq!(cfg["records"].as_array().unwrap().len(), 5, "{cfg}");
    assert_eq!(cfg["layers"][0]["parent"], -1);

    // B: empty, another context path, fresh mtimes; the cache through a
    // proxy that records what is fetched.
    let b = Kiln::empty();
    context(&b, &base);
    let via_proxy = format!("type=registry,ref={}/cache:main", proxy.host());
    let p = b.build(&["-t", "app:b", "--cache-from", &via_proxy, "--explain-cache"]);
    let steps = dockerfile_steps(&p);
    assert_eq!(
        steps.len(),
        6,
        "one FROM (both stages share it) and five steps: {p}"
    );
    assert_all_cached(&p);
    assert!(
        p.contains(&format!(
            "cache hit: imported from registry cache {}/cache:main",
            proxy.host()
        )),
        "{p}"
    );
    assert_eq!(b.id("app:b"), a_id, "the same image");
    assert_eq!(b.file("app:b", "/lines").trim(), "3 /usr/bin/program");

    // Only what the image reuses came from the cache: its three built
    // layers (the base came from its own repository) and the config; not
    // the builder's layers.
    let image_layers = diff_ids(&b, "app:b");
    let blob_of = |diff_id: &str| {
        layers
            .iter()
            .find(|l| l["annotations"]["containerd.io/uncompressed"] == diff_id)
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .unwrap()
    };
    let mut want: Vec<String> = image_layers[1..].iter().map(|d| blob_of(d)).collect();
    want.push(m["config"]["digest"].as_str().unwrap().to_string());
    want.sort();
    let mut got = blob_gets(&proxy.log(), "cache");
    got.sort();
    assert_eq!(got, want);
    assert!(layers.len() > want.len(), "the builder's layers were left");

    // Pushed from B, the image has A's manifest digest too (same blobs).
    let b_push = format!("{}/app:b", reg.host());
    b.ok(&["tag", "app:b", &b_push]);
    b.ok(&["push", "-q", &b_push]);
    assert_eq!(
        testkit::sha256(&http_get(reg.host(), "/v2/app/manifests/b")),
        testkit::sha256(&http_get(reg.host(), "/v2/app/manifests/a"))
    );

    // B exports what it imported (mode=max) without fetching the builder's
    // layers: the registry has them. Same records, same layers: the very
    // same cache manifest.
    let again = format!("{}/cache:again", reg.host());
    b.build(&[
        "-t",
        "app:b",
        "--cache-from",
        &via_proxy,
        "--cache-to",
        &format!("type=registry,ref={again},mode=max"),
    ]);
    // The cache config is read again (each import reads it); no layer.
    let config_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut got = blob_gets(&proxy.log(), "cache");
    got.retain(|d| *d != config_digest);
    got.sort();
    let mut layers_before = want.clone();
    layers_before.retain(|d| *d != config_digest);
    assert_eq!(got, layers_before, "no layer fetched again");
    assert_eq!(
        testkit::sha256(&http_get(reg.host(), "/v2/cache/manifests/again")),
        testkit::sha256(&http_get(reg.host(), "/v2/cache/manifests/main"))
    );

    // A change runs what depends on it and nothing else.
    b.write("config.txt", "level=2\n");
    let p = b.build(&["-t", "app:b2", "--cache-from", &via_proxy]);
    assert_eq!(outcome(&p, "RUN cat /src"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "COPY src /src"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "COPY config.txt"), "DONE", "{p}");
    assert_eq!(outcome(&p, "COPY --from=builder"), "DONE", "{p}");
    assert_eq!(outcome(&p, "RUN wc"), "DONE", "{p}");
    assert_eq!(b.file("app:b2", "/etc/app.conf"), "level=2\n");
}

#[test]
fn mode_min_exports_the_final_chain_and_mode_max_every_stage() {
    let (reg, base) = seeded_registry();
    let a = Kiln::empty();
    context(&a, &base);
    let min = format!("{}/cache:min", reg.host());
    let max = format!("{}/cache:max", reg.host());
    a.build(&[
        "-t",
        "app:a",
        "--cache-to",
        &format!("type=registry,ref={min}"),
        "--cache-to",
        &format!("type=registry,ref={max},mode=max"),
    ]);
    let (_, cfg_min) = cache_manifest(reg.host(), "cache", "min");
    let (_, cfg_max) = cache_manifest(reg.host(), "cache", "max");
    let records = |c: &serde_json::Value| -> Vec<String> {
        c["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let (rmin, rmax) = (records(&cfg_min), records(&cfg_max));
    assert_eq!(rmin.len(), 3, "the final stage's steps: {cfg_min}");
    assert_eq!(rmax.len(), 5, "and the builder's: {cfg_max}");
    assert!(rmin.iter().all(|r| rmax.contains(r)));

    // With min, the builder stage runs again (its RUN makes a new layer,
    // so what copies from it runs too); with max nothing runs.
    let b = Kiln::empty();
    context(&b, &base);
    let p = b.build(&["-t", "app:b", "--cache-from", &min]);
    assert_eq!(outcome(&p, "RUN cat /src"), "DONE", "{p}");
    assert_eq!(outcome(&p, "COPY config.txt"), "CACHED", "{p}");
    let c = Kiln::empty();
    context(&c, &base);
    let p = c.build(&["-t", "app:c", "--cache-from", &max]);
    assert_all_cached(&p);
    assert_eq!(c.id("app:c"), a.id("app:a"));
}

#[test]
fn a_local_cache_directory_round_trips() {
    let (_reg, base) = seeded_registry();
    let a = Kiln::empty();
    context(&a, &base);
    let dir = a.path("cache-dir");
    a.build(&[
        "-t",
        "app:a",
        "--cache-to",
        &format!("type=local,dest={},mode=max", dir.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert!(dir.join("oci-layout").exists());
    let b = Kiln::empty();
    context(&b, &base);
    let p = b.build(&[
        "-t",
        "app:b",
        "--cache-from",
        &format!("type=local,src={}", dir.display()),
    ]);
    assert_all_cached(&p);
    assert_eq!(b.id("app:b"), a.id("app:a"));
}

#[test]
fn import_failures_warn_and_export_failures_fail() {
    let (reg, base) = seeded_registry();
    // No retries: every failure here is final.
    let k = Kiln::empty().var("KILN_REGISTRY_RETRIES", "0");
    context(&k, &base);
    let missing = format!("{}/cache:nothing-here", reg.host());
    let p = k.build(&[
        "-t",
        "app:1",
        "--cache-from",
        &missing,
        "--cache-from",
        "type=registry,ref=127.0.0.1:1/cache:x",
        "--cache-from",
        "type=local,src=/nonexistent/kiln-cache",
    ]);
    assert!(
        p.contains(&format!("warning: importing registry cache {missing}")),
        "{p}"
    );
    assert!(
        p.contains("warning: importing registry cache 127.0.0.1:1/cache:x"),
        "{p}"
    );
    assert!(
        p.contains("warning: importing local cache /nonexistent/kiln-cache"),
        "{p}"
    );
    assert_eq!(outcome(&p, "RUN wc"), "DONE", "built without them: {p}");

    // An export that cannot be done fails the build (after the image is
    // stored, as BuildKit's exporters run first)...
    k.write("config.txt", "level=9\n");
    let e = k.build_fails(&[
        "-t",
        "app:2",
        "--cache-to",
        "type=registry,ref=127.0.0.1:1/cache:x",
    ]);
    assert!(
        e.contains("exporting registry cache 127.0.0.1:1/cache:x"),
        "{e}"
    );
    // ...unless ignore-error=true.
    let p = k.build(&[
        "-t",
        "app:3",
        "--cache-to",
        "type=registry,ref=127.0.0.1:1/cache:x,ignore-error=true",
    ]);
    assert!(
        p.contains("warning: exporting registry cache 127.0.0.1:1/cache:x"),
        "{p}"
    );
    // Bad specs are refused before any work.
    let e = k.build_fails(&["--cache-to", "type=registry,ref=x,mode=all"]);
    assert!(e.contains("invalid --cache-to"), "{e}");
    let e = k.build_fails(&["--cache-from", "type=gha"]);
    assert!(e.contains("invalid --cache-from"), "{e}");
}

#[test]
fn a_cache_manifest_is_readable_by_other_tools() {
    // skopeo copies the cache artifact (every blob verified on the way).
    let reg = TestRegistry::start();
    let k = Kiln::new();
    k.write("Dockerfile", "FROM busybox\nRUN echo hi > /hi\n");
    let cache = format!("{}/cache:tools", reg.host());
    k.build(&["--cache-to", &format!("type=registry,ref={cache}")]);
    let out = k.path("copied");
    testkit::cli::run_ok(
        std::process::Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{cache}"))
            .arg(format!("oci:{}:x", out.display())),
    );
}
