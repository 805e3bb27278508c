//! Compilation: graph shape, image config and history strings, ARG/ENV
//! scoping, stage resolution, determinism of digests.

use std::collections::BTreeMap;

use solver::llb::{FileAction, Image, ImageConfig, LayerSource, MountKind, Op, Platform};

use super::*;
use crate::lint::Rule;

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn opts() -> CompileOptions {
    CompileOptions {
        target_platform: Some(amd64()),
        build_platform: Some(amd64()),
        ..CompileOptions::default()
    }
}

fn build(src: &str, o: &CompileOptions) -> Result<Compiled> {
    let ast = crate::parse(src.as_bytes())?;
    compile(&ast, o, &ScratchResolver)
}

fn ok(src: &str) -> Compiled {
    build(src, &opts()).unwrap()
}

fn history(c: &Compiled) -> Vec<String> {
    c.definition
        .target_stage()
        .image
        .history
        .iter()
        .map(|h| h.created_by.clone())
        .collect()
}

fn exec_of(c: &Compiled, nth: usize) -> solver::llb::Exec {
    c.definition
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .nth(nth)
        .expect("exec vertex")
}

#[test]
fn simple_build_graph_config_and_history() {
    let c = ok(
        "FROM alpine:3.20\nENV A=1 B=\"two words\"\nWORKDIR /app\nCOPY src/ ./\nRUN make\nUSER app\nCMD make run\nEXPOSE 80 443/UDP 9000-9001\n",
    );
    let d = &c.definition;
    d.verify().unwrap();
    let kinds: Vec<&str> = d.vertices.iter().map(|v| v.op.kind()).collect();
    assert_eq!(kinds, vec!["image", "file", "local", "file", "exec"]);
    let Op::Image(img) = &d.vertices[0].op else {
        panic!()
    };
    assert_eq!(img.reference, "docker.io/library/alpine:3.20");
    let Op::Local(l) = &d.vertices[2].op else {
        panic!()
    };
    assert_eq!(l.include_patterns, vec!["src"]);
    assert_eq!(
        history(&c),
        vec![
            "ENV A=1 B=two words",
            "WORKDIR /app",
            "COPY src/ ./ # buildkit",
            "RUN /bin/sh -c make # buildkit",
            "USER app",
            "CMD [\"/bin/sh\" \"-c\" \"make run\"]",
            "EXPOSE [443/udp 80/tcp 9000/tcp 9001/tcp]",
        ]
    );
    let st = d.target_stage();
    assert_eq!(
        st.image.config.env,
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words"
        ]
    );
    assert_eq!(st.image.config.working_dir, "/app");
    assert_eq!(st.image.config.user, "app");
    assert!(st.image.config.args_escaped);
    assert_eq!(st.image.history[0].comment, "buildkit.dockerfile.v0");
    assert!(st.image.history[0].empty_layer);
    assert!(!st.image.history[1].empty_layer);
    assert_eq!(
        st.layers[3],
        LayerSource::Vertex(solver::llb::Output::of(4))
    );
    let e = exec_of(&c, 0);
    assert_eq!(e.args, vec!["/bin/sh", "-c", "make"]);
    assert_eq!(e.cwd, "/app");
    assert!(e.env.contains(&"B=two words".to_string()));
    let Op::File(f) = &d.vertices[3].op else {
        panic!()
    };
    let FileAction::Copy(cp) = &f.actions[0] else {
        panic!()
    };
    assert_eq!((cp.src_path.as_str(), cp.dest.as_str()), ("/src", "/app/"));
    assert!(cp.dir_contents_only && cp.allow_wildcard && cp.follow_symlinks && cp.create_dest_path);
    assert_eq!(
        d.target_stage()
            .image
            .config
            .exposed_ports
            .as_ref()
            .unwrap()
            .len(),
        4
    );
    // JSON round trip of the definition.
    let json = serde_json::to_string(d).unwrap();
    let back: solver::llb::Definition = serde_json::from_str(&json).unwrap();
    assert_eq!(back.vertices.len(), d.vertices.len());
}

#[test]
fn digests_are_stable_and_depend_on_args() {
    let src = "ARG V=1\nFROM busybox AS a\nARG V\nRUN echo $V > /v\nFROM a\nCOPY --from=a /v /w\n";
    let a = build(src, &opts()).unwrap();
    let b = build(src, &opts()).unwrap();
    let da: Vec<String> = a
        .definition
        .vertices
        .iter()
        .map(|v| v.digest.to_string())
        .collect();
    let db: Vec<String> = b
        .definition
        .vertices
        .iter()
        .map(|v| v.digest.to_string())
        .collect();
    assert_eq!(da, db);
    let mut o = opts();
    o.build_args.insert("V".into(), "2".into());
    let c = build(src, &o).unwrap();
    assert_eq!(
        a.definition.vertices[0].digest, c.definition.vertices[0].digest,
        "image source unchanged"
    );
    assert_ne!(
        a.definition.vertices[1].digest, c.definition.vertices[1].digest,
        "RUN depends on V"
    );
    assert_eq!(
        history(&a)[..2],
        [
            "ARG V=1".to_string(),
            "RUN |1 V=1 /bin/sh -c echo $V > /v # buildkit".to_string()
        ]
    );
}

#[test]
fn arg_and_env_scoping() {
    let src = "ARG BASE=alpine\nARG TAG\nARG UNUSED=x\nFROM ${BASE}:${TAG:-3}\nARG UNUSED\nARG LOCAL=$UNUSED-l\nENV E=$LOCAL\nRUN echo\nENV LOCAL=env\nARG LOCAL\nLABEL l=$LOCAL\n";
    let c = ok(src);
    let Op::Image(img) = &c.definition.vertices[0].op else {
        panic!()
    };
    assert_eq!(img.reference, "docker.io/library/alpine:3");
    let h = history(&c);
    assert_eq!(h[0], "ARG UNUSED=x");
    assert_eq!(h[1], "ARG LOCAL=x-l");
    assert_eq!(h[2], "ENV E=x-l");
    assert_eq!(h[3], "RUN |2 UNUSED=x LOCAL=x-l /bin/sh -c echo # buildkit");
    // ENV wins over a later bare ARG for expansion.
    assert_eq!(h.last().unwrap(), "LABEL l=env");
    let e = exec_of(&c, 0);
    assert!(
        e.env.contains(&"UNUSED=x".to_string()),
        "ARG values reach RUN: {:?}",
        e.env
    );
    let img = &c.definition.target_stage().image;
    assert!(
        !img.config.env.iter().any(|e| e.starts_with("UNUSED")),
        "ARGs stay out of the config"
    );
    // --build-arg overrides both global and stage defaults.
    let mut o = opts();
    o.build_args.insert("TAG".into(), "edge".into());
    o.build_args.insert("LOCAL".into(), "cli".into());
    let c = build(src, &o).unwrap();
    let Op::Image(img) = &c.definition.vertices[0].op else {
        panic!()
    };
    assert_eq!(img.reference, "docker.io/library/alpine:edge");
    assert_eq!(history(&c)[1], "ARG LOCAL=cli");
}

#[test]
fn automatic_platform_args() {
    let mut o = opts();
    o.target_platform = Some(Platform::parse("linux/arm64").unwrap());
    let c = build("FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo $TARGETARCH\n", &o).unwrap();
    let Op::Image(img) = &c.definition.vertices[0].op else {
        panic!()
    };
    assert_eq!(img.platform.to_string(), "linux/amd64");
    assert_eq!(history(&c)[0], "ARG TARGETARCH=arm64");
    assert_eq!(history(&c)[1], "ARG TARGETPLATFORM=linux/arm64");
    let e = exec_of(&c, 0);
    assert!(e.env.contains(&"TARGETARCH=arm64".to_string()));
}

#[test]
fn target_prunes_unneeded_stages() {
    let src = "FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM scratch AS c\nCOPY --from=a /x /x\n";
    let c = ok(src);
    let names: Vec<Option<String>> = c.definition.stages.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, vec![Some("a".into()), Some("c".into())]);
    assert!(
        !c.definition
            .vertices
            .iter()
            .any(|v| matches!(&v.op, Op::Exec(e) if e.args[2] == "b"))
    );
    let mut o = opts();
    o.target = Some("B".into());
    let c = build(src, &o).unwrap();
    assert_eq!(c.definition.stages.len(), 1);
    assert_eq!(c.definition.target_stage().name.as_deref(), Some("b"));
    o.target = Some("d".into());
    let e = build(src, &o).unwrap_err();
    assert_eq!(e.message, "target stage \"d\" could not be found");
}

#[test]
fn copy_from_stage_index_and_image() {
    let c = ok(
        "FROM busybox AS build\nRUN make\nFROM scratch\nCOPY --from=0 /out /a\nCOPY --from=nginx:1 /etc/nginx /b\n",
    );
    let d = &c.definition;
    let refs: Vec<String> = d
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Image(i) => Some(i.reference.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        refs,
        vec![
            "docker.io/library/nginx:1",
            "docker.io/library/busybox:latest"
        ]
    );
    assert_eq!(d.stages.len(), 2);
    let st = d.target_stage();
    assert!(st.base_image.is_none());
    assert_eq!(st.image.history.len(), 2);
}

#[test]
fn stage_errors() {
    let e = build(
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n",
        &opts(),
    )
    .unwrap_err();
    assert!(
        e.message
            .starts_with("circular dependency detected on stage: "),
        "{}",
        e.message
    );
    let e = build("FROM busybox\nCOPY --from=5 /x /x\n", &opts()).unwrap_err();
    assert_eq!(e.message, "invalid stage index 5");
    assert_eq!(
        e.span.unwrap().start,
        crate::Position { line: 2, column: 6 }
    );
    let e = build("FROM busybox AS a\nCOPY --from=1 /x /x\nFROM busybox\n", &{
        let mut o = opts();
        o.target = Some("a".into());
        o
    })
    .unwrap_err();
    assert!(
        e.message.starts_with(
            "cannot copy from stage \"1\", it needs to be defined before current stage"
        ),
        "{}",
        e.message
    );
    let e = build("ARG X\nFROM busybox\nCOPY --from=$X /a /b\n", &opts()).unwrap_err();
    assert!(
        e.message
            .starts_with("variable expansion is not supported for --from")
    );
    let e = build("ARG B\nFROM $B\n", &opts()).unwrap_err();
    assert_eq!(e.message, "base name ($B) should not be blank");
    let e = build("FROM Alpine\n", &opts()).unwrap_err();
    assert!(e.message.contains("must be lowercase"), "{}", e.message);
    let e = build(
        "FROM busybox\nRUN echo ${X:?is required}\nENV A=${B:?}\n",
        &opts(),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "failed to process \"${B:?}\": B: is not allowed to be unset"
    );
    assert_eq!(e.span.unwrap().start.line, 3);
}

#[test]
fn heredocs_in_run_and_copy() {
    let c = ok(
        "FROM busybox\nENV NAME=world\nRUN <<EOF\necho hi\nEOF\nRUN <<EOF\n#!/bin/sh\necho script\nEOF\nCOPY <<A <<'B' /files/\nhello $NAME\nA\nraw $NAME\nB\nRUN cat <<X > /f\nbody\nX\n",
    );
    let e0 = exec_of(&c, 0);
    assert_eq!(e0.args, vec!["/bin/sh", "-c", "echo hi\n"]);
    let e1 = exec_of(&c, 1);
    assert_eq!(e1.args, vec!["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert!(matches!(
        &e1.mounts[0].kind,
        MountKind::Bind { readonly: true, .. }
    ));
    assert_eq!(e1.mounts[0].target, "/dev/pipes/");
    let e2 = exec_of(&c, 2);
    assert_eq!(e2.args, vec!["/bin/sh", "-c", "cat <<X > /f\nbody\nX"]);
    let mk: Vec<(String, String)> = c
        .definition
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::File(f) => match &f.actions[0] {
                FileAction::Mkfile(m) => Some((m.path.clone(), m.data.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        mk.contains(&("/A".into(), "hello world\n".into())),
        "{mk:?}"
    );
    assert!(mk.contains(&("/B".into(), "raw $NAME\n".into())), "{mk:?}");
    assert!(history(&c).contains(&"COPY <<A <<B /files/ # buildkit".to_string()));
}

#[test]
fn run_mounts_network_security() {
    let c = ok(
        "FROM busybox AS deps\nFROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=.cache,sharing=locked --mount=type=bind,from=deps,source=/lib,target=/l,rw --mount=type=secret,id=tok,env=TOKEN --mount=type=ssh --mount=type=tmpfs,target=/t,size=1m --mount=target=/ctx,source=sub --network=none --security=insecure make\n",
    );
    let e = exec_of(&c, 0);
    assert_eq!(e.network, solver::llb::NetworkMode::None);
    assert_eq!(e.security, solver::llb::SecurityMode::Insecure);
    let MountKind::Cache {
        id,
        sharing,
        readonly,
        ..
    } = &e.mounts[0].kind
    else {
        panic!()
    };
    assert_eq!(
        (id.as_str(), *sharing, *readonly),
        ("/.cache", solver::llb::CacheSharing::Locked, false)
    );
    assert_eq!(e.mounts[0].target, "/w/.cache");
    let MountKind::Bind {
        source,
        readonly,
        input,
    } = &e.mounts[1].kind
    else {
        panic!()
    };
    assert_eq!(
        (source.as_str(), *readonly, input.is_some()),
        ("/lib", false, true)
    );
    let MountKind::Secret {
        id,
        env,
        required,
        mode,
        ..
    } = &e.mounts[2].kind
    else {
        panic!()
    };
    assert_eq!(
        (id.as_str(), env.as_deref(), *required, *mode),
        ("tok", Some("TOKEN"), false, 0o400)
    );
    assert_eq!(e.mounts[3].target, "/run/buildkit/ssh_agent.0");
    assert!(matches!(
        e.mounts[4].kind,
        MountKind::Tmpfs { size: 1048576 }
    ));
    let Op::Local(l) = &c
        .definition
        .vertices
        .iter()
        .find(|v| v.op.kind() == "local")
        .unwrap()
        .op
    else {
        panic!()
    };
    assert_eq!(l.include_patterns, vec!["sub"]);
    let e = build("FROM busybox\nRUN --mount=type=bind,target=/ x\n", &opts()).unwrap_err();
    assert_eq!(e.message, "invalid mount target \"/\"");
}

#[test]
fn link_makes_a_merge_and_chmod_disables_it() {
    let c = ok(
        "FROM busybox\nCOPY --link a /a\nCOPY --link --chmod=755 b /b\nADD --chown=1:2 --chmod=u+x https://example.com/f.tgz /d/\n",
    );
    let kinds: Vec<&str> = c.definition.vertices.iter().map(|v| v.op.kind()).collect();
    assert_eq!(
        kinds,
        vec!["image", "local", "file", "merge", "file", "http", "file"]
    );
    let Op::File(f) = &c.definition.vertices[2].op else {
        panic!()
    };
    assert_eq!(f.base, None, "linked copy starts from scratch");
    assert_eq!(
        c.definition.target_stage().layers[0],
        LayerSource::Vertex(solver::llb::Output::of(2))
    );
    assert_eq!(
        history(&c)[2],
        "ADD --chown=1:2 --chmod=u+x https://example.com/f.tgz /d/ # buildkit"
    );
    let e = build("FROM busybox\nCOPY --chmod=8888 a b\n", &opts()).unwrap_err();
    assert_eq!(
        e.message,
        "invalid chmod parameter: '8888'. it should be octal string and between 0 and 07777"
    );
    let e = build("FROM busybox\nCOPY https://x/y /z\n", &opts()).unwrap_err();
    assert_eq!(e.message, "source can't be a URL for COPY");
    let e = build("FROM busybox\nADD --checksum=sha256:abc a b\n", &opts()).unwrap_err();
    assert_eq!(e.message, "checksum requires HTTP(S) or Git sources");
}

#[test]
fn cmd_entrypoint_healthcheck_and_friends() {
    let c = ok(
        "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"e\"]\nSHELL [\"/bin/bash\", \"-c\"]\nRUN x\nHEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/\nSTOPSIGNAL SIGKILL\nVOLUME /data /logs\nLABEL a=b\nMAINTAINER me\nONBUILD RUN echo hi\n",
    );
    let img = &c.definition.target_stage().image;
    assert_eq!(img.config.entrypoint, Some(vec!["e".to_string()]));
    assert_eq!(
        img.config.cmd,
        Some(vec!["a".to_string()]),
        "CMD set earlier in the stage survives ENTRYPOINT"
    );
    assert_eq!(exec_of(&c, 0).args, vec!["/bin/bash", "-c", "x"]);
    let h = history(&c);
    assert_eq!(h[0], "CMD [\"a\"]");
    assert_eq!(h[2], "SHELL [/bin/bash -c]");
    assert_eq!(
        h[4],
        "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}"
    );
    assert_eq!(h[5], "STOPSIGNAL SIGKILL");
    assert_eq!(h[6], "VOLUME [/data /logs]");
    assert_eq!(h[8], "MAINTAINER me");
    assert_eq!(img.author.as_deref(), Some("me"));
    assert_eq!(img.config.on_build, vec!["RUN echo hi"]);
    let e = build("FROM busybox\nSTOPSIGNAL SIGFOO\n", &opts()).unwrap_err();
    assert_eq!(e.message, "Invalid signal: SIGFOO");
    let c = ok("FROM busybox\nENTRYPOINT []\n");
    assert_eq!(c.definition.target_stage().image.config.entrypoint, None);
}

struct OnbuildResolver;

impl ImageMetaResolver for OnbuildResolver {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> std::result::Result<ResolvedImage, String> {
        if reference.contains("missing") {
            return Err("not found".into());
        }
        Ok(ResolvedImage {
            reference: format!("{reference}@sha256:{}", "1".repeat(64)),
            config: Image {
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
                config: ImageConfig {
                    env: vec!["PATH=/bin".into(), "HOME=/root".into()],
                    working_dir: "/srv".into(),
                    user: "nobody".into(),
                    on_build: if reference.contains("base/img") {
                        vec![
                            "COPY --from=helper /tool /tool".into(),
                            "RUN echo $HOME".into(),
                        ]
                    } else {
                        vec![]
                    },
                    ..ImageConfig::default()
                },
                history: vec![solver::llb::History {
                    created_by: "base".into(),
                    ..Default::default()
                }],
                ..Image::default()
            },
            no_layers: false,
        })
    }
}

#[test]
fn base_image_config_and_onbuild_triggers() {
    let src = "FROM busybox AS helper\nFROM base/img\nRUN ls\n";
    let ast = crate::parse(src.as_bytes()).unwrap();
    let c = compile(&ast, &opts(), &OnbuildResolver).unwrap();
    let d = &c.definition;
    assert_eq!(
        d.stages.len(),
        2,
        "the trigger's COPY --from pulls in the helper stage"
    );
    let st = d.target_stage();
    assert_eq!(st.image.config.on_build, Vec::<String>::new());
    assert_eq!(st.layers[0], LayerSource::Base);
    assert_eq!(
        st.base_image.as_deref().unwrap(),
        format!("docker.io/base/img:latest@sha256:{}", "1".repeat(64))
    );
    let h: Vec<&str> = st
        .image
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert_eq!(
        h,
        vec![
            "base",
            "COPY /tool /tool # buildkit",
            "RUN /bin/sh -c echo $HOME # buildkit",
            "RUN /bin/sh -c ls # buildkit"
        ]
    );
    let e = exec_of(&c, 0);
    assert_eq!((e.cwd.as_str(), e.user.as_str()), ("/srv", "nobody"));
    assert!(e.env.contains(&"HOME=/root".to_string()));
    let e = compile(
        &crate::parse(b"FROM missing\n").unwrap(),
        &opts(),
        &OnbuildResolver,
    )
    .unwrap_err();
    assert_eq!(e.message, "missing: not found");
    assert_eq!(e.kind, ErrorKind::Resolve);
}

#[test]
fn onbuild_from_base_stage() {
    let c = ok("FROM busybox AS base\nONBUILD RUN echo triggered\nFROM base\nRUN after\n");
    let h = history(&c);
    assert_eq!(
        h,
        vec![
            "RUN /bin/sh -c echo triggered # buildkit",
            "RUN /bin/sh -c after # buildkit"
        ]
    );
}

#[test]
fn lints_from_compilation() {
    let c = ok(
        "FROM busybox AS b\nCMD echo\nCMD [\"x\"]\nENV key value\nARG API_TOKEN\nWORKDIR rel\nRUN echo $UNDEFINED_THING $API_TOKEN\nCOPY $SRCX /d\n",
    );
    let rules: Vec<Rule> = c.warnings.iter().map(|w| w.rule).collect();
    for r in [
        Rule::JSONArgsRecommended,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::SecretsUsedInArgOrEnv,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
    ] {
        assert!(rules.contains(&r), "{r} missing from {rules:?}");
    }
    let undefined: Vec<&str> = c
        .warnings
        .iter()
        .filter(|w| w.rule == Rule::UndefinedVar)
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(
        undefined,
        vec!["Usage of undefined variable '$SRCX'"],
        "RUN text is not expanded"
    );
    let c = ok("FROM ${IMG:-busybox}\n");
    assert_eq!(c.warnings[0].message, "FROM argument 'IMG' is not declared");
    let c = ok("# check=skip=JSONArgsRecommended\nFROM busybox\nCMD echo\n");
    assert!(c.warnings.is_empty());
    let e = build("# check=error=true\nFROM busybox\nCMD echo\n", &opts()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Lint);
    let r = check(b"# check=error=true\nFROM busybox\nCMD echo\n", &opts()).unwrap();
    assert!(r.fail);
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn labels_and_platform_on_target() {
    let mut o = opts();
    o.labels = BTreeMap::from([("org.x".to_string(), "1".to_string())]);
    o.target_platform = Some(Platform::parse("linux/arm/v7").unwrap());
    let c = build("FROM scratch\nCOPY a /\n", &o).unwrap();
    let img = &c.definition.target_stage().image;
    assert_eq!(img.config.labels.as_ref().unwrap()["org.x"], "1");
    assert_eq!(
        (img.architecture.as_str(), img.variant.as_str()),
        ("arm", "v7")
    );
    assert_eq!(img.config.working_dir, "/");
}

#[test]
fn a_long_chain_of_stages_compiles() {
    let mut src = String::from("FROM busybox AS s0\n");
    for i in 1..1000 {
        src.push_str(&format!(
            "FROM s{} AS s{i}\nCOPY --from=s{} /a /a{i}\n",
            i - 1,
            i - 1
        ));
    }
    let c = ok(&src);
    assert_eq!(c.definition.stages.len(), 1000);
    c.definition.verify().unwrap();
}
