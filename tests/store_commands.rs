//! The image-management commands as a user sees them: images, inspect,
//! history, tag, rmi, import, export, prune, system df.

mod store_common;

use store_common::{Kiln, kiln};
use testkit::cli::{require, run_ok, run_stdout};
use testkit::fs::{tree, untar};
use testkit::{ArchiveStyle, FixtureImage};

fn with_busybox() -> Kiln {
    testkit::require_busybox();
    let k = kiln();
    k.load(
        &[FixtureImage::busybox("busybox:latest")],
        ArchiveStyle::Legacy,
    );
    k
}

#[test]
fn images_table_quiet_json_and_filters() {
    let k = with_busybox();
    let id = k.id("busybox");
    let table = k.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE"
    );
    assert!(
        lines[1].starts_with(&format!("busybox      latest    {}   ", &id[7..19])),
        "{table}"
    );
    assert!(lines[1].ends_with("MB"), "{table}");
    assert_eq!(k.ok(&["images", "-q"]), format!("{}\n", &id[7..19]));
    assert_eq!(k.ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    let j: serde_json::Value =
        serde_json::from_str(k.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(
        (j["Repository"].as_str(), j["Tag"].as_str()),
        (Some("busybox"), Some("latest"))
    );

    // A second image takes the tag: the first becomes dangling.
    std::fs::write(k.path("rootfs.tar"), testkit::busybox_layer()).unwrap();
    let new_id = k.ok(&[
        "import",
        "-c",
        "LABEL team=store",
        "-c",
        "CMD [\"sh\"]",
        k.path("rootfs.tar").to_str().unwrap(),
        "busybox:latest",
    ]);
    assert_eq!(
        k.ok(&["images", "-q", "--filter", "dangling=true"]),
        format!("{}\n", &id[7..19])
    );
    assert_eq!(
        k.ok(&["images", "-q", "-f", "dangling=false"]),
        format!("{}\n", &new_id[7..19])
    );
    assert_eq!(
        k.ok(&["images", "-q", "-f", "label=team=store"]),
        format!("{}\n", &new_id[7..19])
    );
    assert_eq!(
        k.ok(&["images", "-q", "-f", "label=team"]),
        format!("{}\n", &new_id[7..19])
    );
    assert_eq!(k.ok(&["images", "-q", "-f", "label=team=other"]), "");
    assert_eq!(
        k.ok(&["images", "-q", "busybox"]),
        format!("{}\n", &new_id[7..19])
    );
    assert_eq!(k.ok(&["images", "-q", "alpine"]), "");
    let table = k.ok(&["images"]);
    assert!(table.contains("<none>       <none>"), "{table}");
    let err = k.fails(&["images", "-f", "color=blue"]);
    assert!(err.contains("color=blue"), "{err}");
}

#[test]
fn inspect_history_and_tag() {
    let k = with_busybox();
    let doc: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "busybox"])).unwrap();
    let d = &doc[0];
    assert_eq!(d["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(d["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(d["Os"], "linux");
    assert_eq!(
        d["RootFS"]["Layers"][0],
        testkit::sha256(&testkit::busybox_layer())
    );
    assert_eq!(
        k.ok(&["inspect", "-f", "{{json .Config.Cmd}}", "busybox"]),
        "[\"sh\"]\n"
    );
    let err = k.fails(&["inspect", "busybox", "nope"]);
    assert!(err.contains("no such image: nope"), "{err}");

    let h = k.ok(&["history", "busybox"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(lines[0].starts_with("IMAGE          CREATED"), "{h}");
    assert!(lines[1].contains("testkit fixture"), "{h}");
    assert_eq!(k.ok(&["history", "-q", "busybox"]).lines().count(), 1);

    k.ok(&["tag", "busybox", "localhost:5000/tools/bb:v1"]);
    k.ok(&["tag", "busybox:latest", "bb"]);
    let tags = k.ok(&["inspect", "-f", "{{.RepoTags}}", "bb"]);
    assert_eq!(
        tags,
        "[bb:latest busybox:latest localhost:5000/tools/bb:v1]\n"
    );
}

#[test]
fn rmi_untags_deletes_and_refuses_ambiguity() {
    let k = with_busybox();
    k.ok(&["tag", "busybox", "other:1"]);
    let id = k.ok(&["images", "-q"]).lines().next().unwrap().to_string();
    let err = k.fails(&["rmi", &id]);
    assert!(err.contains("must be forced"), "{err}");
    assert_eq!(k.ok(&["rmi", "other:1"]), "Untagged: other:1\n");
    assert!(!k.blobs().is_empty());
    let out = k.ok(&["rmi", "busybox"]);
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(k.ok(&["images", "-q"]), "");
    assert!(
        k.blobs().is_empty(),
        "blobs nothing references are deleted: {:?}",
        k.blobs()
    );
    let err = k.fails(&["rmi", "busybox"]);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn import_export_prune_and_df() {
    let k = with_busybox();
    // export → import → export gives the same tree.
    let e1 = k.path("e1.tar");
    k.ok(&["export", "-o", e1.to_str().unwrap(), "busybox"]);
    let gz = k.path("e1.tar.gz");
    std::fs::write(&gz, testkit::gzip(&std::fs::read(&e1).unwrap())).unwrap();
    let id = k.ok(&[
        "import",
        "-m",
        "from test",
        "-c",
        "ENV A=1",
        gz.to_str().unwrap(),
        "copy:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    let doc: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "copy:1"])).unwrap();
    assert_eq!(doc[0]["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(doc[0]["Comment"], "from test");
    let e2 = k.path("e2.tar");
    k.ok(&["export", "-o", e2.to_str().unwrap(), "copy:1"]);
    let (r1, r2) = (k.path("r1"), k.path("r2"));
    untar(&e1, &r1);
    untar(&e2, &r2);
    assert_eq!(tree(&r1), tree(&r2));
    // import from stdin.
    run_ok(
        k.cmd(&["import", "-", "stdin:1"])
            .stdin(std::fs::File::open(&e1).unwrap()),
    );
    // bzip2 and xz, as docker import takes them.
    for (tool, ext) in [("bzip2", "bz2"), ("xz", "xz")] {
        require(tool);
        let p = k.path(&format!("e1.tar.{ext}"));
        let data = run_stdout(std::process::Command::new("sh").arg("-c").arg(format!(
            "{tool} -c {} > {} && echo ok",
            e1.display(),
            p.display()
        )));
        assert_eq!(data.trim(), "ok");
        k.ok(&["import", p.to_str().unwrap(), &format!("{ext}:1")]);
        let q = "{{json .RootFS.Layers}}";
        assert_eq!(
            k.ok(&["inspect", "-f", q, &format!("{ext}:1")]),
            k.ok(&["inspect", "-f", q, "stdin:1"])
        );
        k.ok(&["rmi", &format!("{ext}:1")]);
    }
    let bad = k.fails(&["import", "-c", "RUN rm -rf /", e1.to_str().unwrap(), "x:1"]);
    assert!(bad.contains("RUN is not supported"), "{bad}");

    let df = k.ok(&["system", "df"]);
    assert!(
        df.starts_with("TYPE") && df.contains("Images            3         3"),
        "{df}"
    );
    k.ok(&["rmi", "copy:1", "stdin:1"]);
    let out = k.ok(&["prune", "--all"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(k.ok(&["images", "-q"]).lines().count(), 1);
    let tars = run_stdout(std::process::Command::new("tar").arg("-tf").arg(&e1));
    assert!(tars.lines().any(|l| l == "bin/busybox"), "{tars}");
}
