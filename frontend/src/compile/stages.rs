//! Stage resolution: global ARGs, FROM expansion, links between stages,
//! cycle detection, the target and the stages it needs, base image
//! resolution and ONBUILD triggers. The result ([`Prepared`]) is what
//! dispatch runs.

use std::collections::{BTreeMap, BTreeSet};

use solver::llb::Platform;

use super::{CompileOptions, ImageMetaResolver, ResolvedImage, reference};
use crate::instructions::{
    Command, Dockerfile, Instruction, MountSpec, parse_command, parse_mount,
};
use crate::lint::{Linter, Rule, suggest};
use crate::parser::go_quote;
use crate::shell::{EnvList, Lexer, NoEnv};
use crate::{Error, ErrorKind, Result, Span};

/// What a stage starts from.
#[derive(Debug, Clone)]
pub(crate) enum Base {
    /// An earlier stage (index).
    Stage(usize),
    /// A registry image (normalised reference), resolved if reachable.
    Image(String, Option<Box<ResolvedImage>>),
    /// `scratch`.
    Scratch,
}

/// One instruction of a stage with the stages it reads.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) command: Command,
    /// For COPY: `[from]`; for RUN: one entry per `--mount` (None: no
    /// `from`).
    pub(crate) sources: Vec<Option<usize>>,
}

/// A stage ready to dispatch.
#[derive(Debug, Clone)]
pub(crate) struct StagePlan {
    pub(crate) name: Option<String>,
    /// Name used in progress labels (`stage-N` when unnamed, empty when the
    /// Dockerfile has a single stage).
    pub(crate) display: String,
    pub(crate) base: Base,
    pub(crate) platform: Option<Platform>,
    pub(crate) span: Span,
    pub(crate) commands: Vec<Cmd>,
    /// Stages read by COPY --from / RUN --mount from=.
    pub(crate) deps: BTreeSet<usize>,
    /// Made for `COPY --from=<image>`: not a stage of the Dockerfile.
    pub(crate) unregistered: bool,
}

/// Everything dispatch needs.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) stages: Vec<StagePlan>,
    /// Number of Dockerfile stages (the rest are unregistered images).
    pub(crate) dockerfile_stages: usize,
    pub(crate) target: usize,
    pub(crate) reachable: BTreeSet<usize>,
    pub(crate) global_args: EnvList,
    pub(crate) lexer: Lexer,
    pub(crate) target_platform: Platform,
}

fn stage_err(msg: impl Into<String>, span: Span) -> Error {
    Error::new(ErrorKind::Stage, msg, Some(span))
}

/// The automatic platform args (BuildKit's `defaultArgs`).
fn default_args(
    build: &Platform,
    target: &Platform,
    overrides: &BTreeMap<String, String>,
    target_stage: &str,
) -> EnvList {
    let vals = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone()),
        (
            "TARGETSTAGE",
            if target_stage.is_empty() {
                "default".into()
            } else {
                target_stage.to_string()
            },
        ),
    ];
    let mut env = EnvList::new();
    for (k, v) in vals {
        env.set(k, overrides.get(k).map_or(v.as_str(), |s| s.as_str()));
    }
    env
}

fn stage_index_by_name(stages: &[StagePlan], name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    // The last stage with that name wins, like BuildKit's map.
    stages
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// Resolves the stage a `--from` names: an index, a stage name, or an image
/// (a new unregistered stage).
fn source_for(from: &str, span: Span, stages: &mut Vec<StagePlan>, lexer: &Lexer) -> Result<usize> {
    let expanded = lexer
        .process_word(from, &NoEnv)
        .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(span)))?;
    if expanded != from {
        return Err(stage_err(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            span,
        ));
    }
    if let Ok(i) = from.parse::<i64>() {
        if i < 0 || i as usize >= stages.len() {
            return Err(stage_err(format!("invalid stage index {i}"), span));
        }
        return Ok(i as usize);
    }
    if let Some(i) = stage_index_by_name(stages, from) {
        return Ok(i);
    }
    if let Some(i) = stages
        .iter()
        .position(|s| s.unregistered && matches!(&s.base, Base::Image(r, _) if r == from))
    {
        return Ok(i);
    }
    let base = if from == "scratch" {
        Base::Scratch
    } else {
        Base::Image(from.to_string(), None)
    };
    stages.push(StagePlan {
        name: None,
        display: String::new(),
        base,
        platform: None,
        span,
        commands: Vec::new(),
        deps: BTreeSet::new(),
        unregistered: true,
    });
    Ok(stages.len() - 1)
}

/// Finds the stages a command reads.
fn link(command: Command, stages: &mut Vec<StagePlan>, lexer: &Lexer) -> Result<Cmd> {
    let mut sources = Vec::new();
    match &command.instruction {
        Instruction::Copy(c) => {
            if let Some(f) = &c.from {
                sources.push(Some(source_for(&f.value, f.span, stages, lexer)?));
            }
        }
        Instruction::Run(r) => {
            for m in &r.mounts {
                let spec: MountSpec =
                    parse_mount(&m.value, None).map_err(|e| Error::instruction(e, m.span))?;
                if spec.from.is_empty() {
                    sources.push(None);
                } else {
                    sources.push(Some(source_for(&spec.from, m.span, stages, lexer)?));
                }
            }
        }
        _ => {}
    }
    Ok(Cmd { command, sources })
}

fn find_cycle(stages: &[StagePlan]) -> Option<usize> {
    // Iterative depth-first search (a long chain of stages must not exhaust
    // the stack). 0 = unvisited, 1 = on the current path, 2 = done.
    let edges = |i: usize| -> Vec<usize> {
        let mut next: Vec<usize> = stages[i].deps.iter().copied().collect();
        if let Base::Stage(b) = stages[i].base {
            next.push(b);
        }
        next
    };
    let mut state = vec![0u8; stages.len()];
    for start in 0..stages.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, edges(start))];
        state[start] = 1;
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(d) => match state[d] {
                    1 => return Some(d),
                    0 => {
                        state[d] = 1;
                        let e = edges(d);
                        stack.push((d, e));
                    }
                    _ => {}
                },
                None => {
                    state[*node] = 2;
                    stack.pop();
                }
            }
        }
    }
    None
}

fn reachable_from(stages: &[StagePlan], target: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !seen.insert(i) {
            continue;
        }
        if let Base::Stage(b) = stages[i].base {
            todo.push(b);
        }
        todo.extend(stages[i].deps.iter().copied());
    }
    seen
}

fn is_secret_name(key: &str) -> bool {
    // BuildKit: (?i)(?:_|^)(?:token...)(?:_|$), minus an allow list.
    let deny = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let allow = ["public", "file", "version"];
    let lower = key.to_lowercase();
    let words: Vec<&str> = lower.split('_').collect();
    words.iter().any(|w| deny.contains(w)) && !words.iter().any(|w| allow.contains(w))
}

/// Reports `SecretsUsedInArgOrEnv` for `key`.
pub(crate) fn lint_secret(lint: &mut Linter, instruction: &str, key: &str, span: Span) {
    if is_secret_name(key) {
        lint.report(
            Rule::SecretsUsedInArgOrEnv,
            span,
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
                go_quote(key)
            ),
        );
    }
}

/// Evaluates the global ARGs (BuildKit's `buildMetaArgs`).
fn meta_args(
    global: &mut EnvList,
    lexer: &Lexer,
    cmds: &[Command],
    build_args: &BTreeMap<String, String>,
) -> Result<()> {
    for c in cmds {
        let Instruction::Arg(defs) = &c.instruction else {
            continue;
        };
        for d in defs {
            let value = match build_args.get(&d.key.value) {
                Some(v) => Some(v.clone()),
                None => match &d.default {
                    Some(def) => Some(
                        lexer
                            .process_word(&def.value, global)
                            .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(c.span)))?,
                    ),
                    None => None,
                },
            };
            if let Some(v) = value {
                global.set(&d.key.value, &v);
            }
        }
    }
    Ok(())
}

/// Resolves stages, the target and what it needs.
pub(crate) fn prepare(
    df: &Dockerfile,
    opts: &CompileOptions,
    resolver: &dyn ImageMetaResolver,
    lint: &mut Linter,
) -> Result<Prepared> {
    let host = Platform::host();
    let target_platform = opts.target_platform.clone().unwrap_or_else(|| host.clone());
    let build_platform = opts.build_platform.clone().unwrap_or(host);
    let lexer = Lexer::new(df.escape);
    let target_name = opts
        .target
        .clone()
        .or_else(|| {
            df.stages
                .last()
                .and_then(|s| s.name.as_ref().map(|n| n.value.clone()))
        })
        .unwrap_or_default();
    let mut global = default_args(
        &build_platform,
        &target_platform,
        &opts.build_args,
        &target_name,
    );
    let automatic_args: BTreeSet<String> = global.keys().map(str::to_string).collect();
    let mut declared_meta: BTreeSet<String> = automatic_args.clone();
    for c in &df.meta_args {
        if let Instruction::Arg(defs) = &c.instruction {
            for d in defs {
                declared_meta.insert(d.key.value.clone());
                lint_secret(lint, "ARG", &d.key.value, c.span);
            }
        }
    }
    // InvalidDefaultArgInFrom: with defaults only, every FROM must give a
    // valid reference.
    {
        let mut defaults = default_args(
            &build_platform,
            &target_platform,
            &BTreeMap::new(),
            &target_name,
        );
        if meta_args(&mut defaults, &lexer, &df.meta_args, &BTreeMap::new()).is_ok() {
            for st in &df.stages {
                if let Ok(name) = lexer.process_word(&st.base.value, &defaults)
                    && name != "scratch"
                    && stage_index_by_name_raw(df, &name).is_none()
                    && reference::normalize(&name).is_err()
                {
                    lint.report(
                        Rule::InvalidDefaultArgInFrom,
                        st.span,
                        format!(
                            "Default value for ARG {} results in empty or invalid base image name",
                            st.base.value
                        ),
                    );
                }
            }
        }
    }
    meta_args(&mut global, &lexer, &df.meta_args, &opts.build_args)?;

    let mut stages: Vec<StagePlan> = Vec::new();
    for (i, st) in df.stages.iter().enumerate() {
        let m = lexer
            .process(&st.base.value, &global)
            .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(st.base.span)))?;
        for u in &m.unmatched {
            if !declared_meta.contains(u) {
                let mut msg = format!("FROM argument '{u}' is not declared");
                if let Some(s) = suggest(u, declared_meta.iter().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                lint.report(Rule::UndefinedArgInFrom, st.span, msg);
            }
        }
        if m.result.is_empty() {
            return Err(stage_err(
                format!("base name ({}) should not be blank", st.base.value),
                st.base.span,
            ));
        }
        let mut platform = None;
        if let Some(p) = &st.platform {
            let pm = lexer
                .process(&p.value, &global)
                .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(p.span)))?;
            for u in &pm.unmatched {
                if !declared_meta.contains(u) {
                    lint.report(
                        Rule::UndefinedArgInFrom,
                        st.span,
                        format!("FROM argument '{u}' is not declared"),
                    );
                }
            }
            if pm.matched.len() == 1
                && pm.unmatched.is_empty()
                && pm.matched.contains("TARGETPLATFORM")
                && crate::shell::Env::get(&global, "TARGETPLATFORM") == Some(pm.result.as_str())
            {
                lint.report(
                    Rule::RedundantTargetPlatform,
                    st.span,
                    format!("Setting platform to predefined {} in FROM is redundant as this is the default behavior", p.value),
                );
            }
            if pm.matched.is_empty()
                && pm.unmatched.is_empty()
                && let Ok(pp) = Platform::parse(&pm.result)
            {
                let n = st.name.as_ref().map(|n| n.value.as_str()).unwrap_or("");
                if !n.contains(&pp.os) && !n.contains(&pp.architecture) {
                    lint.report(
                        Rule::FromPlatformFlagConstDisallowed,
                        st.span,
                        format!(
                            "FROM --platform flag should not use constant value {}",
                            go_quote(&pm.result)
                        ),
                    );
                }
            }
            if pm.result.is_empty() {
                return Err(stage_err(
                    format!("empty platform value from expression {}", p.value),
                    p.span,
                ));
            }
            platform = Some(Platform::parse(&pm.result).map_err(|e| {
                stage_err(format!("failed to parse platform {}: {e}", p.value), p.span)
            })?);
        }
        let base = if let Some(j) = stage_index_by_name(&stages, &m.result).filter(|_| true) {
            // BuildKit matches the expanded base name exactly against
            // (lower-case) names of earlier stages.
            if stages[j].name.as_deref() == Some(m.result.as_str()) {
                Base::Stage(j)
            } else {
                image_or_scratch(&m.result, st.base.span)?
            }
        } else {
            image_or_scratch(&m.result, st.base.span)?
        };
        let display = st
            .name
            .as_ref()
            .map_or_else(|| format!("stage-{i}"), |n| n.value.clone());
        stages.push(StagePlan {
            name: st.name.as_ref().map(|n| n.value.clone()),
            display,
            base,
            platform,
            span: st.span,
            commands: Vec::new(),
            deps: BTreeSet::new(),
            unregistered: false,
        });
    }
    let dockerfile_stages = stages.len();
    let target = match &opts.target {
        None => dockerfile_stages - 1,
        Some(t) => stage_index_by_name(&stages[..dockerfile_stages], t).ok_or_else(|| {
            let mut msg = format!("target stage {} could not be found", go_quote(t));
            let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
            if let Some(s) = suggest(t, names) {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            Error::new(ErrorKind::Stage, msg, None)
        })?,
    };
    for (i, st) in df.stages.iter().enumerate() {
        for c in &st.commands {
            let cmd = link(c.clone(), &mut stages, &lexer)?;
            for s in cmd.sources.iter().flatten() {
                stages[i].deps.insert(*s);
            }
            stages[i].commands.push(cmd);
        }
    }
    if let Some(i) = find_cycle(&stages) {
        let name = stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"));
        return Err(stage_err(
            format!("circular dependency detected on stage: {name}"),
            stages[i].span,
        ));
    }
    if dockerfile_stages == 1 {
        stages[0].display = String::new();
    }

    // Resolve base images and apply ONBUILD triggers until no trigger adds
    // a dependency.
    let mut onbuild_done = vec![false; stages.len()];
    let mut reachable;
    loop {
        reachable = reachable_from(&stages, target);
        onbuild_done.resize(stages.len(), false);
        let mut new_deps = false;
        for &i in &reachable {
            let platform = stages[i]
                .platform
                .clone()
                .unwrap_or_else(|| target_platform.clone());
            if let Base::Image(r, None) = &stages[i].base {
                let normalized = reference::normalize(r).map_err(|e| {
                    stage_err(
                        format!("failed to parse stage name {}: {e}", go_quote(r)),
                        stages[i].span,
                    )
                })?;
                let resolved = resolver.resolve(&normalized, &platform).map_err(|e| {
                    Error::new(
                        ErrorKind::Resolve,
                        format!("{r}: {e}"),
                        Some(stages[i].span),
                    )
                })?;
                stages[i].base = Base::Image(r.clone(), Some(Box::new(resolved)));
            }
            if onbuild_done[i] {
                continue;
            }
            onbuild_done[i] = true;
            let triggers: Vec<String> = match &stages[i].base {
                Base::Image(_, Some(img)) => img.config.config.on_build.clone(),
                Base::Stage(b) => stages[*b]
                    .commands
                    .iter()
                    .filter_map(|c| match &c.command.instruction {
                        Instruction::Onbuild(e) => Some(e.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if triggers.is_empty() {
                continue;
            }
            let span = stages[i].span;
            let mut cmds = Vec::new();
            for t in &triggers {
                let ast = crate::parse(t.as_bytes())
                    .map_err(|e| Error::new(e.kind, e.message, Some(span)))?;
                if ast.nodes.len() != 1 {
                    return Err(Error::instruction(
                        "onbuild trigger should be a single expression",
                        span,
                    ));
                }
                let mut scratch = Linter::default();
                let mut c = parse_command(&ast.nodes[0], &mut scratch)
                    .map_err(|e| Error::new(e.kind, e.message, Some(span)))?;
                c.span = span;
                let cmd = link(c, &mut stages, &lexer)?;
                for s in cmd.sources.iter().flatten() {
                    if stages[i].deps.insert(*s) {
                        new_deps = true;
                    }
                }
                cmds.push(cmd);
            }
            cmds.append(&mut stages[i].commands);
            stages[i].commands = cmds;
        }
        if let Some(i) = find_cycle(&stages) {
            let name = stages[i]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{i}"));
            return Err(stage_err(
                format!("circular dependency detected on stage: {name}"),
                stages[i].span,
            ));
        }
        if !new_deps {
            break;
        }
    }
    Ok(Prepared {
        stages,
        dockerfile_stages,
        target,
        reachable,
        global_args: global,
        lexer,
        target_platform,
    })
}

fn stage_index_by_name_raw(df: &Dockerfile, name: &str) -> Option<usize> {
    df.stages
        .iter()
        .position(|s| s.name.as_ref().is_some_and(|n| n.value == name))
}

fn image_or_scratch(name: &str, span: Span) -> Result<Base> {
    if name == "scratch" {
        return Ok(Base::Scratch);
    }
    reference::normalize(name).map_err(|e| {
        stage_err(
            format!("failed to parse stage name {}: {e}", go_quote(name)),
            span,
        )
    })?;
    Ok(Base::Image(name.to_string(), None))
}
