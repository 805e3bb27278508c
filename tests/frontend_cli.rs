//! End-to-end tests of the frontend commands through the `kiln` binary:
//! `debug parse`, `debug graph`, `check`, and the exact `file:line:col`
//! and caret of Dockerfile errors.

use std::path::Path;

use assert_cmd::Command;

fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], dir: &Path) -> Out {
    let o = kiln()
        .args(args)
        .current_dir(dir)
        .env("KILN_ROOT", dir.join("root"))
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

#[test]
fn debug_parse_prints_buildkit_dump() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "Dockerfile",
        "FROM busybox\nCOPY --chown=1:1 a b /c/\nRUN <<EOF\necho hi\nEOF\nCMD [\"sh\"]\n",
    );
    let o = run(&["debug", "parse"], d.path());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "(from \"busybox\")\n(copy [\"--chown=1:1\"] \"a\" \"b\" \"/c/\")\n(run \"<<EOF\")\n(cmd \"sh\")\n"
    );
}

#[test]
fn debug_parse_reads_stdin_and_reports_parse_errors_with_location() {
    let d = tempfile::tempdir().unwrap();
    let o = kiln()
        .args(["debug", "parse", "-f", "-"])
        .write_stdin("FROM x\nRUN <<EOF\necho\n")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(
        err,
        "error: unterminated heredoc\n --> <stdin>:2:1\n  |\n2 | RUN <<EOF\n  | ^^^^^^^^^\n"
    );
    let f = write(d.path(), "Df", "");
    let o = run(&["debug", "parse", "-f", &f], d.path());
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with("error: file with no instructions\n"),
        "{}",
        o.stderr
    );
    let o = run(&["debug", "parse", "-f", "missing"], d.path());
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("reading missing"), "{}", o.stderr);
}

#[test]
fn unknown_flag_error_has_line_col_and_caret() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "Dockerfile",
        "FROM busybox\nRUN true\nCOPY --bogus=1 a /b\n",
    );
    let o = run(&["debug", "graph"], d.path());
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "error: unknown flag: --bogus\n --> Dockerfile:3:6\n  |\n3 | COPY --bogus=1 a /b\n  |      ^^^^^^^^^\n"
    );
}

#[test]
fn errors_point_at_the_offending_word() {
    let d = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "FROM busybox\n  RUNN x\n",
            "unknown instruction: RUNN (did you mean run?)",
            "Dockerfile:2:3",
        ),
        (
            "FROM busybox\nRUN --network=bridge x\n",
            "invalid network mode \"bridge\"",
            "Dockerfile:2:5",
        ),
        (
            "FROM busybox\nCOPY \\\n  --from=9 a b\n",
            "invalid stage index 9",
            "Dockerfile:3:3",
        ),
        (
            "FROM busybox\nENV A=${B:-x\n",
            "failed to process \"${B:-x\": syntax error: missing '}'",
            "Dockerfile:2:7",
        ),
        (
            "FROM busybox AS 1st\n",
            "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
            "Dockerfile:1:17",
        ),
        (
            "FROM busybox\nHEALTHCHECK --interval=5 CMD true\n",
            "time: missing unit in duration \"5\"",
            "Dockerfile:2:13",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,mode=999 x\n",
            "invalid value 999 for mode",
            "Dockerfile:2:5",
        ),
    ];
    for (src, msg, loc) in cases {
        write(d.path(), "Dockerfile", src);
        let o = run(&["debug", "graph"], d.path());
        assert_eq!(o.code, 1, "{src}");
        let mut lines = o.stderr.lines();
        assert_eq!(lines.next().unwrap(), format!("error: {msg}"), "{src}");
        assert_eq!(lines.next().unwrap(), format!(" --> {loc}"), "{src}");
    }
}

#[test]
fn debug_graph_text_dot_json_and_args() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "Dockerfile",
        "ARG BASE=busybox\nFROM $BASE AS build\nARG V=1\nRUN echo $V > /out\nFROM scratch AS unused\nFROM scratch\nCOPY --from=build /out /out\n",
    );
    let text = run(
        &["debug", "graph", "--build-arg", "BASE=alpine:3"],
        d.path(),
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("image docker.io/library/alpine:3"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("exec [\"/bin/sh\", \"-c\", \"echo $V > /out\"]"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("stage 2 -> v2 (target)"),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains("unused"),
        "unreachable stage pruned: {}",
        text.stdout
    );
    let dot = run(&["debug", "graph", "--format", "dot"], d.path());
    assert!(dot.stdout.starts_with("digraph llb {"), "{}", dot.stdout);
    assert!(dot.stdout.contains("v0 -> v1;"));
    let json = run(
        &["debug", "graph", "--format", "json", "--target", "build"],
        d.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["stages"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["stages"][0]["image"]["history"][1]["created_by"],
        "RUN |1 V=1 /bin/sh -c echo $V > /out # buildkit"
    );
    // Same input, same digests; another build arg, another digest.
    let again = run(
        &["debug", "graph", "--build-arg", "BASE=alpine:3"],
        d.path(),
    );
    assert_eq!(text.stdout, again.stdout);
    let other = run(
        &[
            "debug",
            "graph",
            "--build-arg",
            "BASE=alpine:3",
            "--build-arg",
            "V=2",
        ],
        d.path(),
    );
    assert_ne!(text.stdout, other.stdout);
    let bad = run(&["debug", "graph", "--target", "nope"], d.path());
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "error: target stage \"nope\" could not be found\n"
    );
}

#[test]
fn check_prints_warnings_with_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "Dockerfile",
        "FROM busybox as Build\nMAINTAINER me\nENV name value\nCMD echo $NOPE\n",
    );
    let o = run(&["check"], d.path());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "Dockerfile:1: StageNameCasing: Stage name 'Build' should be lowercase\n\
         Dockerfile:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n\
         Dockerfile:2: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n\
         Dockerfile:3: LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format\n\
         Dockerfile:4: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n"
    );
    assert_eq!(o.stderr, "Check complete, 5 warnings have been found.\n");
}

#[test]
fn check_fails_on_errors_and_with_check_error_true() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "Dockerfile",
        "# check=error=true\nFROM busybox\nCMD echo\n",
    );
    let o = run(&["check"], d.path());
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.starts_with("Dockerfile:3: JSONArgsRecommended"),
        "{}",
        o.stdout
    );
    write(
        d.path(),
        "Dockerfile",
        "# check=skip=JSONArgsRecommended;error=true\nFROM busybox\nCMD echo\n",
    );
    let o = run(&["check"], d.path());
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stdout, "");
    write(
        d.path(),
        "Dockerfile",
        "FROM busybox AS a\nCOPY --from=b x y\nFROM busybox AS b\nFROM a\n",
    );
    let o = run(&["check"], d.path());
    assert_eq!(o.code, 1);
    assert!(o.stderr.starts_with("error: cannot copy from stage \"b\", it needs to be defined before current stage \"a\"\n --> Dockerfile:2:6"), "{}", o.stderr);
}
