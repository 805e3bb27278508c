//! The build cache hits and misses exactly when it should, as seen in
//! `--progress=plain` (`#N CACHED` vs `#N DONE`). Needs root.

mod build_common;

use build_common::{Kiln, outcome, steps};

const DOCKERFILE: &str = "\
FROM busybox
RUN echo first > /first
COPY copied.txt /copied.txt
ARG USED=one
RUN echo \"used=$USED\" > /used
RUN cat /copied.txt > /after-copy
";

fn setup() -> Kiln {
    let k = Kiln::new();
    k.write("Dockerfile", DOCKERFILE);
    k.write("copied.txt", "v1\n");
    k.write("unrelated.txt", "u1\n");
    k.write("ignored.log", "i1\n");
    k.write(".dockerignore", "*.log\n");
    k
}

/// (first RUN, COPY, RUN used, RUN after-copy) outcomes.
fn outcomes(p: &str) -> [String; 4] {
    [
        outcome(p, "RUN echo first"),
        outcome(p, "COPY copied.txt"),
        outcome(p, "RUN echo \"used"),
        outcome(p, "RUN cat /copied.txt"),
    ]
}

fn all(o: &str) -> [String; 4] {
    [o.into(), o.into(), o.into(), o.into()]
}

#[test]
fn unchanged_unrelated_and_ignored_files_keep_the_cache() {
    let k = setup();
    let first = k.build(&["-t", "c:1"]);
    assert_eq!(outcomes(&first), all("DONE"));
    let id1 = k.inspect("c:1")["Id"].clone();
    // Nothing changed.
    let p = k.build(&["-t", "c:1"]);
    assert_eq!(outcomes(&p), all("CACHED"));
    assert!(
        p.contains("(unchanged)"),
        "the same image is not rewritten: {p}"
    );
    assert_eq!(
        k.inspect("c:1")["Id"],
        id1,
        "a cached rebuild gives the same image"
    );
    // Touched (mtime only) copied file, changed unrelated and ignored files.
    let now = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(k.ctx.join("copied.txt"))
        .unwrap()
        .set_modified(now)
        .unwrap();
    k.write("unrelated.txt", "u2\n");
    k.write("ignored.log", "i2\n");
    k.write("new-unrelated.txt", "new\n");
    let p = k.build(&["-t", "c:1"]);
    assert_eq!(outcomes(&p), all("CACHED"));
    assert_eq!(k.inspect("c:1")["Id"], id1);
}

#[test]
fn a_changed_copied_file_misses_from_the_copy_on() {
    let k = setup();
    k.build(&["-t", "c:1"]);
    k.write("copied.txt", "v2\n");
    let p = k.build(&["-t", "c:2"]);
    assert_eq!(outcomes(&p), ["CACHED", "DONE", "DONE", "DONE"]);
    assert_eq!(k.files("c:2")["after-copy"].data, b"v2\n");
    // Back to the old content: everything comes from the cache again.
    k.write("copied.txt", "v1\n");
    let p = k.build(&["-t", "c:3"]);
    assert_eq!(outcomes(&p), all("CACHED"));
    assert_eq!(k.inspect("c:3")["Id"], k.inspect("c:1")["Id"]);
    // A mode change is a change.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        k.ctx.join("copied.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let p = k.build(&[]);
    assert_eq!(outcomes(&p), ["CACHED", "DONE", "DONE", "DONE"]);
}

#[test]
fn a_build_arg_misses_from_the_step_that_uses_it() {
    let k = setup();
    k.build(&[]);
    let p = k.build(&["--build-arg", "USED=two"]);
    // Steps before the ARG keep the cache; from the first RUN after it
    // (ARG values are in every later RUN's environment, as in BuildKit)
    // everything misses.
    assert_eq!(outcomes(&p), ["CACHED", "CACHED", "DONE", "DONE"]);
    let p = k.build(&["--build-arg", "USED=two", "-t", "arg:2"]);
    assert_eq!(outcomes(&p), all("CACHED"));
    assert_eq!(k.files("arg:2")["used"].data, b"used=two\n");
    // An argument the Dockerfile does not declare changes nothing.
    let p = k.build(&["--build-arg", "USED=two", "--build-arg", "OTHER=x"]);
    assert_eq!(outcomes(&p), all("CACHED"));
}

#[test]
fn a_changed_instruction_misses_from_that_step_on() {
    let k = setup();
    k.build(&[]);
    k.write(
        "Dockerfile",
        DOCKERFILE.replace(
            "RUN echo \"used=$USED\" > /used",
            "RUN echo \"used=$USED\" > /used2",
        ),
    );
    let p = k.build(&[]);
    assert_eq!(outcome(&p, "RUN echo first"), "CACHED");
    assert_eq!(outcome(&p, "COPY copied.txt"), "CACHED");
    assert_eq!(outcome(&p, "/used2"), "DONE");
    assert_eq!(outcome(&p, "RUN cat /copied.txt"), "DONE");
}

#[test]
fn the_cache_is_shared_by_dockerfiles_with_a_common_prefix() {
    let k = setup();
    k.build(&[]);
    let other = k.ctx.join("Other.Dockerfile");
    std::fs::write(
        &other,
        "FROM busybox\nRUN echo first > /first\nCOPY copied.txt /copied.txt\nRUN echo different\n",
    )
    .unwrap();
    let p = k.build(&["-f", other.to_str().unwrap()]);
    assert_eq!(outcome(&p, "RUN echo first"), "CACHED");
    assert_eq!(outcome(&p, "COPY copied.txt"), "CACHED");
    assert_eq!(outcome(&p, "RUN echo different"), "DONE");
}

#[test]
fn no_cache_and_no_cache_filter() {
    let k = Kiln::new();
    k.write(
        "Dockerfile",
        "FROM busybox AS one\nRUN echo one > /one\n\nFROM busybox AS two\nRUN echo two > /two\nCOPY --from=one /one /one\n",
    );
    k.build(&[]);
    let p = k.build(&["--no-cache"]);
    let s = steps(&p);
    assert!(
        s.iter()
            .filter(|(n, _)| n.contains("RUN") || n.contains("COPY"))
            .all(|(_, o)| o == "DONE"),
        "{s:?}"
    );
    // Results of --no-cache builds are recorded: the next build hits.
    let p = k.build(&[]);
    assert_eq!(outcome(&p, "RUN echo one"), "CACHED");
    let p = k.build(&["--no-cache-filter", "two"]);
    assert_eq!(outcome(&p, "RUN echo one"), "CACHED");
    assert_eq!(outcome(&p, "RUN echo two"), "DONE");
    assert_eq!(outcome(&p, "COPY --from=one"), "DONE");
}

#[test]
fn the_cache_survives_lost_layers_in_a_new_store_only_by_rebuilding() {
    // A fresh state directory has no cache: everything runs.
    let k = setup();
    k.build(&[]);
    let k2 = setup();
    let p = k2.build(&[]);
    assert_eq!(outcomes(&p), all("DONE"));
    // prune --all drops the build cache; the next build runs again.
    k.ok(&["prune", "--all"]);
    let p = k.build(&[]);
    assert_eq!(outcomes(&p), all("DONE"));
}

#[test]
fn a_changed_context_is_copied_as_a_delta_that_matches_a_full_copy() {
    let k = Kiln::new();
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY . /app/\nRUN find /app -type f | sort | xargs cat > /all\n",
    );
    for i in 0..50 {
        k.write(&format!("src/d{}/f{i}.txt", i % 5), format!("file {i}\n"));
    }
    k.write("gone.txt", "will be removed\n");
    k.build(&["-t", "d:1"]);
    // Change one file, add one, remove one: three builds, each a delta on
    // the one before.
    k.write("src/d0/f0.txt", "changed\n");
    let out = testkit::cli::run_ok(
        k.cmd(&["build", "--progress=plain", "-t", "d:2", "."])
            .env("KILN_LOG", "solver::solve::file=debug"),
    );
    let p = String::from_utf8_lossy(&out.stderr);
    assert_eq!(outcome(&p, "COPY . /app/"), "DONE");
    assert!(
        p.contains("delta copy wrote 1 entries, 0 whiteouts"),
        "only the changed file is written: {p}"
    );
    k.write("src/new/added.txt", "added\n");
    k.build(&["-t", "d:3"]);
    std::fs::remove_file(k.ctx.join("gone.txt")).unwrap();
    k.build(&["-t", "d:4"]);
    // The same context built from scratch in a fresh store.
    let fresh = Kiln::new();
    fresh.add_dir(&k.ctx);
    fresh.build(&["-t", "d:4"]);
    let strip = |mut m: std::collections::BTreeMap<String, build_common::FsEntry>| {
        // Directory times of the copy's parents are not compared; content,
        // modes and ownership are.
        for e in m.values_mut() {
            if e.kind == 'd' {
                e.data.clear();
            }
        }
        m
    };
    let delta = strip(k.files("d:4"));
    let full = strip(fresh.files("d:4"));
    assert_eq!(
        delta.keys().collect::<Vec<_>>(),
        full.keys().collect::<Vec<_>>()
    );
    assert_eq!(delta, full);
    assert!(!delta.contains_key("app/gone.txt"));
    assert_eq!(delta["app/src/d0/f0.txt"].data, b"changed\n");
    assert_eq!(delta["app/src/new/added.txt"].data, b"added\n");
    // The image has one layer per instruction, as BuildKit's.
    let c = k.config_json("d:4");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    // And the layer of the COPY is the same as a full copy's in content.
    assert_eq!(k.files("d:4")["all"].data, fresh.files("d:4")["all"].data);
}

#[test]
fn explain_cache_says_why_each_step_missed() {
    let k = setup();
    let p = k.build(&["--explain-cache"]);
    assert!(
        p.contains("cache miss: no earlier build of this step"),
        "{p}"
    );
    k.write("copied.txt", "v2\n");
    let p = k.build(&["--explain-cache", "--build-arg", "USED=secret-value"]);
    assert!(
        p.contains("cache miss: context files of copy[0] /copied.txt: changed copied.txt"),
        "{p}"
    );
    assert!(
        p.contains("cache miss: environment (ENV/ARG) changed: USED; the step it builds on produced different files"),
        "{p}"
    );
    assert!(
        !p.lines()
            .any(|l| l.contains("cache miss") && l.contains("secret-value")),
        "argument values are not shown: {p}"
    );
    k.write(
        "Dockerfile",
        DOCKERFILE.replace("RUN echo first > /first", "RUN echo second > /first"),
    );
    let p = k.build(&["--explain-cache", "--build-arg", "USED=secret-value"]);
    assert!(p.contains("cache miss: the command changed"), "{p}");
    let p = k.build(&["--explain-cache", "--no-cache"]);
    assert!(
        p.contains("cache miss: the cache is disabled for this step"),
        "{p}"
    );
}

#[test]
fn a_delta_copy_layer_is_written_only_when_the_image_leaves_the_store() {
    let k = Kiln::new();
    k.write("Dockerfile", "FROM busybox\nCOPY src /app\n");
    for i in 0..20 {
        k.write(&format!("src/f{i}.txt"), format!("file {i}\n"));
    }
    k.build(&["-t", "lazy:1"]);
    // The full copy's layer is lazy too: its directory is the layer.
    let first = k.config_json("lazy:1")["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    k.assert_no_blob(&first);
    k.write("src/f3.txt", "changed\n");
    let out = k
        .cmd(&["build", "--progress=plain", "-t", "lazy:2", "."])
        .env("KILN_LOG", "solver::solve::file=debug")
        .output()
        .unwrap();
    let p = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{p}");
    assert!(p.contains("delta copy wrote 1 entries"), "{p}");
    let diff_ids: Vec<String> = k.config_json("lazy:2")["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let top = diff_ids.last().unwrap().clone();
    let blob = k
        .root
        .join("blobs/sha256")
        .join(top.trim_start_matches("sha256:"));
    assert!(
        !blob.exists(),
        "the delta copy's image layer has no blob yet"
    );

    // A later build on the image unpacks the layer: its tar is written
    // then, and must hash to the diffID the config names (checked by the
    // store while writing it).
    k.write(
        "Dockerfile.next",
        "FROM lazy:2\nRUN cat /app/f3.txt /app/f4.txt > /seen\n",
    );
    k.build(&["-f", "Dockerfile.next", "-t", "next:1"]);
    assert_eq!(k.file("next:1", "/seen"), "changed\nfile 4\n");
    assert!(blob.exists(), "written when first unpacked");

    // The saved archive holds every layer, each hashing to its diffID, and
    // skopeo reads and copies it.
    let saved = k.path("lazy.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "lazy:2"]);
    let mut ar = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    let mut members = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        members.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    let hashes: Vec<String> = layers
        .iter()
        .map(|l| testkit::sha256(&members[l.as_str().unwrap()]))
        .collect();
    assert_eq!(hashes, diff_ids);
    let oci = k.path("oci");
    for args in [
        vec![
            "inspect".to_string(),
            format!("docker-archive:{}", saved.display()),
        ],
        vec![
            "copy".to_string(),
            format!("docker-archive:{}", saved.display()),
            format!("oci:{}:lazy", oci.display()),
        ],
    ] {
        let o = std::process::Command::new("skopeo")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_delta_copy_layer_is_written_by_save_when_nothing_unpacked_it() {
    let k = Kiln::new();
    k.write("Dockerfile", "FROM busybox\nCOPY src /app\n");
    k.write("src/a.txt", "a\n");
    k.write("src/b.txt", "b\n");
    k.build(&["-t", "lazy:1"]);
    std::fs::remove_file(k.ctx.join("src/b.txt")).unwrap();
    k.build(&["-t", "lazy:2"]);
    let saved = k.path("lazy.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "lazy:2"]);
    // Loaded into a fresh store, the image is the same image.
    let fresh = Kiln::new();
    fresh.ok(&["load", "-q", "-i", saved.to_str().unwrap()]);
    assert_eq!(fresh.config_json("lazy:2"), k.config_json("lazy:2"));
    let files = fresh.files("lazy:2");
    assert_eq!(files["app/a.txt"].data, b"a\n");
    assert!(!files.contains_key("app/b.txt"));
}

/// `kiln build --progress=plain ARGS… .` with the first-copy debug line on.
fn build_logged(k: &Kiln, args: &[&str]) -> String {
    let mut cmd = k.cmd(&["build", "--progress=plain"]);
    cmd.args(args)
        .arg(".")
        .env("KILN_LOG", "solver::solve::firstcopy=debug");
    let out = testkit::cli::run_ok(&mut cmd);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_first_context_copy_runs_beside_its_key_only_when_nothing_can_hit() {
    const BESIDE: &str = "cache key (beside the copy)";
    let k = Kiln::new();
    k.write("Dockerfile", "FROM busybox\nCOPY src /src\n");
    k.write("src/a.txt", "a1\n");
    k.write("src/d/b.txt", "b1\n");
    // Nothing of this step's shape was ever recorded: copied at once.
    let p = build_logged(&k, &["-t", "first:1"]);
    assert_eq!(outcome(&p, "COPY src /src"), "DONE");
    assert!(p.contains(BESIDE), "{p}");
    assert_eq!(k.file("first:1", "/src/d/b.txt"), "b1\n");
    // ... and recorded under the key computed beside it.
    let p = build_logged(&k, &["-t", "first:1"]);
    assert_eq!(outcome(&p, "COPY src /src"), "CACHED");
    assert!(!p.contains(BESIDE), "{p}");
    // Another Dockerfile (no earlier build of its steps) with the same
    // COPY on the same base, other content: an entry of that shape exists,
    // so the key comes first (it could hit).
    k.write(
        "other.Dockerfile",
        "FROM busybox\nCOPY src /src\nRUN true\n",
    );
    k.write("src/a.txt", "a2\n");
    let p = build_logged(&k, &["-f", "other.Dockerfile", "-t", "first:2"]);
    assert_eq!(outcome(&p, "COPY src /src"), "DONE");
    assert!(!p.contains(BESIDE), "{p}");
    assert_eq!(k.file("first:2", "/src/a.txt"), "a2\n");
    // Back to the first content: that other Dockerfile hits the entry the
    // first build recorded.
    k.write("src/a.txt", "a1\n");
    let p = build_logged(&k, &["-f", "other.Dockerfile"]);
    assert_eq!(outcome(&p, "COPY src /src"), "CACHED");
    // --no-cache: nothing can hit.
    let p = build_logged(&k, &["--no-cache", "-t", "first:3"]);
    assert_eq!(outcome(&p, "COPY src /src"), "DONE");
    assert!(p.contains(BESIDE), "{p}");
    assert_eq!(k.file("first:3", "/src/a.txt"), "a1\n");
}

#[test]
fn a_first_copy_of_a_missing_source_names_it() {
    let k = Kiln::new();
    k.write("Dockerfile", "FROM busybox\nCOPY nosuch.txt /x\n");
    for args in [
        &["-t", "missing:1"][..],
        &["--no-cache", "-t", "missing:1"][..],
    ] {
        let e = k.build_fails(args);
        assert!(
            e.contains("\"/nosuch.txt\": not found") && e.contains("Dockerfile:2"),
            "{e}"
        );
    }
    let out = k.cmd(&["inspect", "missing:1"]).output().unwrap();
    assert!(!out.status.success(), "nothing is tagged");
}
