//! `kiln build` with registries, end to end against Debian's
//! `docker-registry` on 127.0.0.1: FROM pulls what the store lacks (and
//! `--pull` follows a moved tag), `--push` pushes every tag only after a
//! successful build, and the inline cache every image carries lets a
//! fresh state directory reuse an image's layers (`--cache-from IMAGE`,
//! after `kiln load` or from the registry).

mod build_remote_common;

use build_remote_common::*;
use testkit::registry::TestRegistry;

#[test]
fn from_pulls_a_missing_base_image_and_pins_its_digest() {
    let (reg, base) = seeded_registry();
    let pushed_digest = {
        let m = get_json(reg.host(), "/v2/busybox/manifests/latest");
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        format!(
            "sha256:{}",
            testkit::sha256(&http_get(reg.host(), "/v2/busybox/manifests/latest"))
                .trim_start_matches("sha256:")
        )
    };
    let k = Kiln::empty();
    k.write(
        "Dockerfile",
        format!(
            "FROM {base} AS one\nRUN echo one > /one\nFROM {base}\nCOPY --from=one /one /one\n"
        ),
    );
    let meta = k.path("meta.json");
    let progress = k.build(&["-t", "app:1", "--metadata-file", meta.to_str().unwrap()]);
    assert!(progress.contains(&format!("pulling {base}")), "{progress}");
    assert_eq!(
        progress.matches("pulling ").count(),
        1,
        "both stages name the image: it is pulled once\n{progress}"
    );
    // Both stages see the digest it resolved to (one FROM vertex: the
    // pinned references are identical, so the graph merged them).
    let pinned = format!("FROM {base}@{pushed_digest}");
    assert_eq!(progress.matches(&pinned).count(), 1, "{progress}");
    assert_eq!(k.file("app:1", "/one"), "one\n");
    // The pull is recorded as `kiln pull` would.
    let images = k.ok(&["images", "--digests", "--format", "json"]);
    assert!(images.contains(&pushed_digest), "{images}");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["kiln.base-images"][0]["name"], base);
    assert_eq!(meta["kiln.base-images"][0]["digest"], pushed_digest);
    assert_eq!(meta["containerimage.config.digest"], k.id("app:1"));

    // The store has it now: no registry needed.
    drop(reg);
    let again = k.build(&["-t", "app:1"]);
    assert!(!again.contains("pulling"), "{again}");
    assert_eq!(outcome(&again, "RUN echo one"), "CACHED");
}

#[test]
fn pull_flag_follows_a_moved_tag() {
    let (reg, base) = seeded_registry();
    let k = Kiln::empty();
    k.write(
        "Dockerfile",
        format!("FROM {base}\nRUN cat /version 2>/dev/null || echo none > /seen\n"),
    );
    k.build(&["-t", "app:1"]);
    assert_eq!(k.file("app:1", "/seen"), "none\n");

    // Someone pushes a new image under the same tag.
    let other = Kiln::new();
    other.write("Dockerfile", "FROM busybox\nRUN echo v2 > /version\n");
    other.build(&["-t", &base, "--push"]);
    let new_digest = testkit::sha256(&http_get(reg.host(), "/v2/busybox/manifests/latest"));

    // Without --pull the local image is used; with it, the new one.
    let p = k.build(&["-t", "app:2"]);
    assert!(!p.contains("pulling"), "{p}");
    assert_eq!(outcome(&p, "RUN cat"), "CACHED");
    let p = k.build(&["--pull", "-t", "app:3"]);
    assert!(p.contains(&format!("pulling {base}")), "{p}");
    assert!(p.contains(&format!("@{new_digest}")), "{p}");
    assert_eq!(outcome(&p, "RUN cat"), "DONE", "the base changed: {p}");
    assert!(k.files("app:3").contains_key("version"));
    // --pull when nothing moved pulls nothing and keeps the cache.
    let p = k.build(&["--pull", "-t", "app:3"]);
    assert!(!p.contains("layers downloaded"), "{p}");
    assert_eq!(outcome(&p, "RUN cat"), "CACHED");
}

#[test]
fn base_image_errors_name_the_reference() {
    let reg = TestRegistry::start();
    // No retries: every failure here is final.
    let k = Kiln::empty().var("KILN_REGISTRY_RETRIES", "0");
    let missing = format!("{}/nope:1", reg.host());
    k.write("Dockerfile", format!("FROM {missing}\n"));
    let e = k.build_fails(&[]);
    assert!(e.contains(&missing) && e.contains("not found"), "{e}");
    assert!(e.contains("Dockerfile:1"), "{e}");

    let auth = TestRegistry::start_with_auth("alice", "secret");
    let private = format!("{}/private:1", auth.host());
    k.write("Dockerfile", format!("FROM {private}\n"));
    let e = k.build_fails(&[]);
    assert!(e.contains(&private) && e.contains("unauthorized"), "{e}");
    assert!(e.contains("kiln login"), "{e}");

    // Nothing listens on port 1.
    k.write("Dockerfile", "FROM 127.0.0.1:1/gone:1\n");
    let e = k.build_fails(&[]);
    assert!(e.contains("127.0.0.1:1/gone:1"), "{e}");
    let images = k.ok(&["images", "-q"]);
    assert_eq!(images, "", "nothing stored");
}

#[test]
fn push_sends_every_tag_only_after_a_successful_build() {
    let (reg, base) = seeded_registry();
    let a = Kiln::empty();
    a.write(
        "Dockerfile",
        format!("FROM {base}\nCOPY a.txt /a.txt\nRUN echo built >> /a.txt\n"),
    );
    a.write("a.txt", "from the context\n");
    let t1 = format!("{}/team/app:1", reg.host());
    let t2 = format!("{}/team/app:latest", reg.host());
    let meta = a.path("meta.json");
    let p = a.build(&[
        "-t",
        &t1,
        "-t",
        &t2,
        "--push",
        "--metadata-file",
        meta.to_str().unwrap(),
    ]);
    assert!(p.contains(&format!("pushing {t1}")), "{p}");
    assert!(p.contains(&format!("pushing {t2}")), "{p}");
    let image_id = a.id(&t1);
    let digest = testkit::sha256(&http_get(reg.host(), "/v2/team/app/manifests/1"));
    assert_eq!(
        digest,
        testkit::sha256(&http_get(reg.host(), "/v2/team/app/manifests/latest"))
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], digest);

    // skopeo reads what was pushed; another state directory pulls the
    // very same image.
    testkit::cli::run_ok(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{t1}")),
    );
    let b = Kiln::empty();
    b.ok(&["pull", "-q", &t1]);
    assert_eq!(b.id(&t1), image_id);
    assert_eq!(b.file(&t1, "/a.txt"), "from the context\nbuilt\n");

    // A failed build pushes nothing.
    a.write("Dockerfile", format!("FROM {base}\nRUN exit 3\n"));
    let bad = format!("{}/team/app:bad", reg.host());
    a.build_fails(&["-t", &bad, "--push"]);
    assert_eq!(
        testkit::registry::http_get(reg.host(), "/v2/team/app/manifests/bad").0,
        404
    );
    // --push without a tag is refused before any work.
    let e = a.build_fails(&["--push"]);
    assert!(e.contains("--push needs"), "{e}");
}

#[test]
fn cache_from_a_loaded_image_in_a_fresh_state_dir() {
    let dockerfile = "FROM busybox\nCOPY src /src\nRUN cat /src/a /src/b > /joined\n\
                      COPY other.txt /other.txt\nRUN wc -c /joined /other.txt > /sizes\n";
    let a = Kiln::new();
    a.write("Dockerfile", dockerfile);
    a.write("src/a", "a\n");
    a.write("src/b", "b\n");
    a.write("other.txt", "other\n");
    a.build(&["-t", "app:1"]);
    let a_id = a.id("app:1");
    let config = a.config_json("app:1");
    assert!(
        config["moby.buildkit.cache.v0"].is_string(),
        "every image carries its inline cache: {config}"
    );
    let archive = a.path("app.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "app:1"]);

    // Another state directory, another context path, other mtimes.
    let b = Kiln::new();
    b.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    b.write("Dockerfile", dockerfile);
    b.write("src/a", "a\n");
    b.write("src/b", "b\n");
    b.write("other.txt", "other\n");
    let p = b.build(&["-t", "app:1", "--cache-from", "app:1", "--explain-cache"]);
    assert_all_cached(&p);
    assert!(
        p.contains("cache hit: imported from inline cache of image app:1"),
        "{p}"
    );
    assert_eq!(b.id("app:1"), a_id, "same image");

    // A changed file misses from its COPY on; earlier steps still hit.
    b.write("other.txt", "changed\n");
    let p = b.build(&["-t", "app:2", "--cache-from", "app:1"]);
    assert_eq!(outcome(&p, "COPY src /src"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "RUN cat"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "COPY other.txt"), "DONE", "{p}");
    assert_eq!(outcome(&p, "RUN wc"), "DONE", "{p}");
    assert_eq!(b.file("app:2", "/other.txt"), "changed\n");
    // Without --cache-from, the records imported before are local now.
    b.write("other.txt", "other\n");
    let p = b.build(&["-t", "app:3"]);
    assert_eq!(outcome(&p, "RUN wc"), "CACHED", "{p}");
    assert_eq!(b.id("app:3"), a_id);
}

#[test]
fn cache_from_a_registry_image_fetches_only_the_layers_it_reuses() {
    let (reg, base) = seeded_registry();
    let proxy = testkit::registry::FaultProxy::start(reg.host());
    let dockerfile = format!(
        "FROM {base}\nRUN echo one > /one\nCOPY two.txt /two.txt\nRUN echo three > /three\n"
    );
    let a = Kiln::empty();
    a.write("Dockerfile", &dockerfile);
    a.write("two.txt", "two\n");
    let pushed = format!("{}/app:1", reg.host());
    a.build(&["-t", &pushed, "--push"]);
    let layers = diff_ids(&a, &pushed);
    assert_eq!(layers.len(), 4);

    // B changes the last step's input only: the first two steps come from
    // the image's inline cache, through the proxy.
    let b = Kiln::empty();
    b.write("Dockerfile", dockerfile.replace("three", "THREE"));
    b.write("two.txt", "two\n");
    let via_proxy = format!("{}/app:1", proxy.host());
    let p = b.build(&["-t", "app:b", "--cache-from", &via_proxy]);
    assert_eq!(outcome(&p, "RUN echo one"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "COPY two.txt"), "CACHED", "{p}");
    assert_eq!(outcome(&p, "RUN echo THREE"), "DONE", "{p}");
    assert_eq!(diff_ids(&b, "app:b")[..3], layers[..3]);
    // The two reused layers and the config came through the proxy; the
    // replaced layer did not (the base came from the registry itself).
    let m = get_json(reg.host(), "/v2/app/manifests/1");
    let blob = |i: usize| m["layers"][i]["digest"].as_str().unwrap().to_string();
    let gets = blob_gets(&proxy.log(), "app");
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let mut want = vec![config, blob(1), blob(2)];
    want.sort();
    let mut got = gets.clone();
    got.sort();
    assert_eq!(got, want, "fetched: {gets:?}");
}

#[test]
fn push_writes_a_delta_copy_layer_on_demand() {
    let (reg, base) = seeded_registry();
    let a = Kiln::empty();
    a.write("Dockerfile", format!("FROM {base}\nCOPY src /app\n"));
    for i in 0..10 {
        a.write(&format!("src/f{i}"), format!("{i}\n"));
    }
    a.build(&["-t", "app:1"]);
    a.write("src/f7", "seven\n");
    let t = format!("{}/team/delta:1", reg.host());
    // The rebuild is a delta copy: its image layer has no blob until the
    // push needs one (compressed from the regenerated tar).
    let out = testkit::cli::run_ok(
        a.build_cmd(&["-t", &t, "--push"])
            .env("KILN_LOG", "solver::solve::file=debug"),
    );
    let p = String::from_utf8_lossy(&out.stderr);
    assert!(p.contains("delta copy wrote 1 entries"), "{p}");
    let b = Kiln::empty();
    b.ok(&["pull", "-q", &t]);
    assert_eq!(b.id(&t), a.id(&t));
    assert_eq!(diff_ids(&b, &t), diff_ids(&a, &t));
    assert_eq!(b.file(&t, "/app/f7"), "seven\n");
    assert_eq!(b.file(&t, "/app/f6"), "6\n");
}
