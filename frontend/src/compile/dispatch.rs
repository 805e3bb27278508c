//! Dispatch: runs each compiled stage's instructions in order, expanding
//! variables where BuildKit does, adding vertices and editing the stage's
//! image config and history (BuildKit's `dispatch*` functions). RUN and
//! COPY/ADD live in their own modules.

use std::collections::{BTreeMap, BTreeSet};

use solver::llb::{
    Chown, DefinitionBuilder, Empty, FileAction, FileOp, HISTORY_COMMENT, History, Image,
    LayerSource, LocalSource, MkdirAction, Op, Output, Platform, StageResult,
};

use super::CompileOptions;
use super::paths;
use super::stages::{Base, Cmd, Prepared, lint_secret};
use crate::instructions::{Command, Instruction, format_go_duration};
use crate::lint::{Linter, Rule, suggest};
use crate::parser::go_quote;
use crate::shell::{Env, EnvList, Lexer};
use crate::{Error, ErrorKind, Result, Span};

/// The mutable state of a stage while it is dispatched.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    /// The current filesystem (None: empty).
    pub(crate) fs: Option<Output>,
    /// The LLB env: image Env + ENV + ARGs with values.
    pub(crate) env: EnvList,
    pub(crate) cwd: String,
    pub(crate) user: String,
    pub(crate) image: Image,
    pub(crate) layers: Vec<LayerSource>,
    /// ARGs declared in the stage (and inherited from the base stage).
    pub(crate) build_args: Vec<(String, Option<String>)>,
    pub(crate) platform: Platform,
    pub(crate) base_image: Option<String>,
    pub(crate) workdir_set: bool,
    pub(crate) cmd_at: Option<Span>,
    pub(crate) entrypoint_at: Option<Span>,
    pub(crate) healthcheck_at: Option<Span>,
    pub(crate) cmd_index: usize,
    pub(crate) cmd_total: usize,
}

/// What one dispatch run produces.
pub(crate) struct RunOutput {
    pub(crate) definition: solver::llb::Definition,
    /// Context paths read (absolute, cleaned).
    pub(crate) context_paths: BTreeSet<String>,
}

/// Shared state of one dispatch run.
pub(crate) struct Ctx<'a> {
    pub(crate) prep: &'a Prepared,
    pub(crate) opts: &'a CompileOptions,
    pub(crate) b: DefinitionBuilder,
    pub(crate) lint: Option<&'a mut Linter>,
    /// Context include paths, known in the second run.
    includes: Option<Vec<String>>,
    context: Option<Output>,
    pub(crate) context_paths: BTreeSet<String>,
    pub(crate) lives: Vec<Option<Live>>,
    pub(crate) stage_display: String,
    pub(crate) ssh_count: usize,
}

impl Ctx<'_> {
    /// The build context vertex (added on first use).
    pub(crate) fn context(&mut self) -> Output {
        if let Some(c) = self.context {
            return c;
        }
        let op = Op::Local(LocalSource {
            name: "context".into(),
            include_patterns: self.includes.clone().unwrap_or_default(),
            exclude_patterns: self.opts.context_excludes.clone(),
        });
        let o = self
            .b
            .add(op, vec![], "[internal] load build context", None);
        self.context = Some(o);
        o
    }

    /// Reports a lint finding (first run only).
    pub(crate) fn report(&mut self, rule: Rule, span: Span, msg: impl Into<String>) {
        if let Some(l) = self.lint.as_deref_mut() {
            l.report(rule, span, msg);
        }
    }

    /// Expands one word with the stage env, reporting undefined variables.
    pub(crate) fn expand(&mut self, live: &Live, word: &str, span: Span) -> Result<String> {
        let lexer = self.prep.lexer;
        self.expand_with(&lexer, live, word, span)
    }

    pub(crate) fn expand_with(
        &mut self,
        lexer: &Lexer,
        live: &Live,
        word: &str,
        span: Span,
    ) -> Result<String> {
        let p = lexer
            .process(word, &live.env)
            .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(span)))?;
        self.report_unmatched(live, &p.unmatched, span);
        Ok(p.result)
    }

    fn report_unmatched(&mut self, live: &Live, unmatched: &BTreeSet<String>, span: Span) {
        if self.lint.is_none() {
            return;
        }
        for v in unmatched {
            if live.build_args.iter().any(|(k, _)| k == v) {
                continue;
            }
            let mut msg = format!("Usage of undefined variable '${v}'");
            if let Some(s) = suggest(v, live.env.keys()) {
                msg.push_str(&format!(" (did you mean ${s}?)"));
            }
            self.report(Rule::UndefinedVar, span, msg);
        }
    }

    /// `[stage N/M] TEXT` progress label.
    pub(crate) fn label(&self, live: &Live, text: &str) -> String {
        if self.stage_display.is_empty() {
            format!("[{}/{}] {text}", live.cmd_index, live.cmd_total)
        } else {
            format!(
                "[{} {}/{}] {text}",
                self.stage_display, live.cmd_index, live.cmd_total
            )
        }
    }

    /// The instruction text for labels: keyword upper-cased, variables
    /// that are set expanded (BuildKit's `processCmdEnv`).
    pub(crate) fn label_text(&self, live: &Live, original: &str) -> String {
        let t = original.trim_start();
        let (kw, rest) = t.split_once([' ', '\t']).unwrap_or((t, ""));
        let text = if rest.is_empty() {
            kw.to_uppercase()
        } else {
            format!("{} {rest}", kw.to_uppercase())
        };
        let mut lx = self.prep.lexer;
        lx.raw_quotes = true;
        lx.raw_escapes = true;
        lx.skip_unset_env = true;
        lx.process_word(&text, &live.env).unwrap_or(text)
    }
}

/// Appends a history entry.
pub(crate) fn commit(live: &mut Live, created_by: String, layer: Option<Output>) {
    live.image.history.push(History {
        created_by,
        comment: HISTORY_COMMENT.into(),
        empty_layer: layer.is_none(),
        ..History::default()
    });
    live.layers
        .push(layer.map_or(LayerSource::Empty, LayerSource::Vertex));
}

/// Parses `user[:group]` for chown.
pub(crate) fn chown_of(s: &str) -> Chown {
    match s.split_once(':') {
        Some((u, g)) => Chown {
            user: u.to_string(),
            group: Some(g.to_string()),
        },
        None => Chown {
            user: s.to_string(),
            group: None,
        },
    }
}

fn go_slice(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

fn go_quoted_slice(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// The shell of the image (SHELL, or `/bin/sh -c`) followed by `args`
/// joined.
pub(crate) fn with_shell(live: &Live, args: &[String]) -> Vec<String> {
    let mut v = if live.image.config.shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        live.image.config.shell.clone()
    };
    v.push(args.join(" "));
    v
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn initial_live(ctx: &mut Ctx, i: usize) -> Result<Live> {
    let plan = &ctx.prep.stages[i];
    let platform = plan
        .platform
        .clone()
        .unwrap_or_else(|| ctx.prep.target_platform.clone());
    let total = usize::from(matches!(plan.base, Base::Image(..)))
        + plan
            .commands
            .iter()
            .filter(|c| {
                matches!(
                    c.command.instruction,
                    Instruction::Add(_)
                        | Instruction::Copy(_)
                        | Instruction::Run(_)
                        | Instruction::Workdir(_)
                )
            })
            .count();
    let mut live = match &plan.base {
        Base::Stage(b) => {
            let mut l = ctx.lives[*b].clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Stage,
                    "base stage was not compiled",
                    Some(plan.span),
                )
            })?;
            l.image.config.on_build.clear();
            l.cmd_at = None;
            l.entrypoint_at = None;
            l.healthcheck_at = None;
            l
        }
        Base::Scratch => Live {
            fs: None,
            env: EnvList::new(),
            cwd: "/".into(),
            user: String::new(),
            image: Image {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                config: solver::llb::ImageConfig {
                    working_dir: "/".into(),
                    env: vec![format!("PATH={DEFAULT_PATH}")],
                    ..Default::default()
                },
                ..Image::default()
            },
            layers: Vec::new(),
            build_args: Vec::new(),
            platform: platform.clone(),
            base_image: None,
            workdir_set: false,
            cmd_at: None,
            entrypoint_at: None,
            healthcheck_at: None,
            cmd_index: 0,
            cmd_total: 0,
        },
        Base::Image(r, resolved) => {
            let resolved = resolved.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Resolve,
                    format!("{r}: not resolved"),
                    Some(plan.span),
                )
            })?;
            let mut image = resolved.config.clone();
            image.created = None;
            image.config.on_build.clear();
            let layers = image
                .history
                .iter()
                .map(|h| {
                    if h.empty_layer {
                        LayerSource::Empty
                    } else {
                        LayerSource::Base
                    }
                })
                .collect();
            let fs = if resolved.no_layers {
                None
            } else {
                let name = if plan.unregistered {
                    format!("[internal] load image {}", resolved.reference)
                } else if ctx.stage_display.is_empty() {
                    format!("[1/{total}] FROM {}", resolved.reference)
                } else {
                    format!(
                        "[{} 1/{total}] FROM {}",
                        ctx.stage_display, resolved.reference
                    )
                };
                let o = ctx.b.add(
                    Op::Image(solver::llb::ImageSource {
                        reference: resolved.reference.clone(),
                        platform: platform.clone(),
                    }),
                    vec![],
                    name,
                    Some((plan.span.start.line, plan.span.end.line)),
                );
                Some(o)
            };
            Live {
                fs,
                env: EnvList::new(),
                cwd: "/".into(),
                user: String::new(),
                image,
                layers,
                build_args: Vec::new(),
                platform: platform.clone(),
                base_image: (!resolved.no_layers).then(|| resolved.reference.clone()),
                workdir_set: false,
                cmd_at: None,
                entrypoint_at: None,
                healthcheck_at: None,
                cmd_index: 0,
                cmd_total: 0,
            }
        }
    };
    if !matches!(plan.base, Base::Stage(_)) {
        if !live.image.config.env.iter().any(|e| e.starts_with("PATH="))
            && live.platform.os != "windows"
        {
            live.image.config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        live.env = EnvList::from_env_strings(&live.image.config.env);
        let wd = live.image.config.working_dir.clone();
        if !wd.is_empty() {
            live.cwd = paths::normalize(&live.cwd, &wd, false);
            live.image.config.working_dir = live.cwd.clone();
        }
        live.user = live.image.config.user.clone();
    }
    live.cmd_index = 0;
    live.cmd_total = total;
    if matches!(plan.base, Base::Image(..)) {
        live.cmd_index = 1;
    }
    Ok(live)
}

/// Dispatches every needed stage; `includes` are the context paths from a
/// previous run (None in the first run).
pub(crate) fn run_all(
    prep: &Prepared,
    opts: &CompileOptions,
    includes: Option<BTreeSet<String>>,
    lint: Option<&mut Linter>,
) -> Result<RunOutput> {
    let includes = includes.map(|paths| {
        if paths.contains("/") {
            Vec::new()
        } else {
            paths.iter().map(|p| paths::join(&[".", p])).collect()
        }
    });
    // The first run's graph is thrown away: do not hash it.
    let b = if includes.is_none() {
        DefinitionBuilder::dry()
    } else {
        DefinitionBuilder::new()
    };
    let mut ctx = Ctx {
        prep,
        opts,
        b,
        lint,
        includes,
        context: None,
        context_paths: BTreeSet::new(),
        lives: vec![None; prep.stages.len()],
        stage_display: String::new(),
        ssh_count: 0,
    };
    // Images named by COPY --from / mounts first: they have no commands.
    for i in prep.dockerfile_stages..prep.stages.len() {
        if prep.reachable.contains(&i) {
            ctx.stage_display = String::new();
            let live = initial_live(&mut ctx, i)?;
            ctx.lives[i] = Some(live);
        }
    }
    for i in 0..prep.dockerfile_stages {
        if !prep.reachable.contains(&i) {
            continue;
        }
        ctx.stage_display = prep.stages[i].display.clone();
        let mut live = initial_live(&mut ctx, i)?;
        for cmd in &prep.stages[i].commands {
            dispatch(&mut ctx, &mut live, i, cmd)?;
        }
        ctx.lives[i] = Some(live);
    }
    // The target image gets the build's labels and platform.
    let target = prep.target;
    if let Some(live) = ctx.lives[target].as_mut() {
        if !opts.labels.is_empty() {
            let labels = live.image.config.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(opts.labels.clone());
        }
        live.image.os = live.platform.os.clone();
        live.image.architecture = live.platform.architecture.clone();
        live.image.variant = live.platform.variant.clone();
    }
    let mut results = Vec::new();
    let mut target_pos = 0;
    for i in 0..prep.dockerfile_stages {
        let Some(live) = ctx.lives[i].take() else {
            continue;
        };
        if i == target {
            target_pos = results.len();
        }
        results.push(StageResult {
            name: prep.stages[i].name.clone(),
            index: i,
            output: live.fs,
            base_image: live.base_image,
            image: live.image,
            layers: live.layers,
        });
    }
    let context_paths = std::mem::take(&mut ctx.context_paths);
    Ok(RunOutput {
        definition: ctx.b.finish(results, target_pos),
        context_paths,
    })
}

fn dispatch(ctx: &mut Ctx, live: &mut Live, stage: usize, cmd: &Cmd) -> Result<()> {
    let c = &cmd.command;
    let span = c.span;
    let r = match &c.instruction {
        Instruction::Env(kvs) => {
            // Every pair sees the env from before the instruction: expand
            // them all first, then apply.
            let mut pairs = Vec::with_capacity(kvs.len());
            for kv in kvs {
                if kv.legacy {
                    ctx.report(
                        Rule::LegacyKeyValueFormat,
                        span,
                        format!("\"{0} key=value\" should be used instead of legacy \"{0} key value\" format", c.name()),
                    );
                }
                let k = ctx.expand(live, &kv.key.value, kv.key.span)?;
                let v = ctx.expand(live, &kv.value.value, kv.value.span)?;
                if let Some(l) = ctx.lint.as_deref_mut() {
                    lint_secret(l, "ENV", &k, span);
                }
                pairs.push((k, v));
            }
            let mut msg = String::from("ENV");
            for (k, v) in pairs {
                msg.push_str(&format!(" {k}={v}"));
                live.env.set(&k, &v);
                add_env(&mut live.image.config.env, &k, &v);
            }
            commit(live, msg, None);
            Ok(())
        }
        Instruction::Label(kvs) => {
            let mut pairs = Vec::with_capacity(kvs.len());
            for kv in kvs {
                if kv.legacy {
                    ctx.report(
                        Rule::LegacyKeyValueFormat,
                        span,
                        format!("\"{0} key=value\" should be used instead of legacy \"{0} key value\" format", c.name()),
                    );
                }
                let k = ctx.expand(live, &kv.key.value, kv.key.span)?;
                let v = ctx.expand(live, &kv.value.value, kv.value.span)?;
                pairs.push((k, v));
            }
            let mut msg = String::from("LABEL");
            for (k, v) in pairs {
                msg.push_str(&format!(" {k}={v}"));
                live.image
                    .config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, v);
            }
            commit(live, msg, None);
            Ok(())
        }
        Instruction::Maintainer(m) => {
            live.image.author = Some(m.clone());
            commit(live, format!("MAINTAINER {m}"), None);
            Ok(())
        }
        Instruction::User(u) => {
            let u = ctx.expand(live, &u.value, u.span)?;
            live.user = u.clone();
            live.image.config.user = u.clone();
            commit(live, format!("USER {u}"), None);
            Ok(())
        }
        Instruction::Workdir(w) => {
            let p = ctx.expand(live, &w.value, w.span)?;
            workdir(ctx, live, &p, c)
        }
        Instruction::Volume(vs) => {
            let mut out = Vec::new();
            for v in vs {
                let e = ctx.expand(live, &v.value, v.span)?;
                if e.is_empty() {
                    return Err(Error::instruction(
                        "VOLUME specified can not be an empty string",
                        v.span,
                    ));
                }
                out.push(e);
            }
            let vols = live.image.config.volumes.get_or_insert_with(BTreeMap::new);
            for v in &out {
                vols.insert(v.clone(), Empty {});
            }
            commit(live, format!("VOLUME {}", go_slice(&out)), None);
            Ok(())
        }
        Instruction::StopSignal(s) => {
            let sig = ctx.expand(live, &s.value, s.span)?;
            if !valid_signal(&sig) {
                return Err(Error::instruction(format!("Invalid signal: {sig}"), s.span));
            }
            live.image.config.stop_signal = sig.clone();
            commit(live, format!("STOPSIGNAL {sig}"), None);
            Ok(())
        }
        Instruction::Shell(sh) => {
            live.image.config.shell = sh.clone();
            commit(live, format!("SHELL {}", go_slice(sh)), None);
            Ok(())
        }
        Instruction::Cmd(cl) => {
            if let Some(prev) = live.cmd_at {
                ctx.report(
                    Rule::MultipleInstructionsDisallowed,
                    prev,
                    "Multiple CMD instructions should not be used in the same stage because only the last one will be used",
                );
            }
            live.cmd_at = Some(span);
            let mut args = cl.args.clone();
            if cl.prepend_shell {
                if live.image.config.shell.is_empty() {
                    ctx.report(
                        Rule::JSONArgsRecommended,
                        span,
                        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
                    );
                }
                args = with_shell(live, &args);
            }
            commit(live, format!("CMD {}", go_quoted_slice(&args)), None);
            live.image.config.cmd = Some(args);
            live.image.config.args_escaped = true;
            Ok(())
        }
        Instruction::Entrypoint(cl) => {
            if let Some(prev) = live.entrypoint_at {
                ctx.report(
                    Rule::MultipleInstructionsDisallowed,
                    prev,
                    "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used",
                );
            }
            live.entrypoint_at = Some(span);
            let mut args = cl.args.clone();
            if cl.prepend_shell {
                if live.image.config.shell.is_empty() {
                    ctx.report(
                        Rule::JSONArgsRecommended,
                        span,
                        "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
                    );
                }
                args = with_shell(live, &args);
            }
            commit(live, format!("ENTRYPOINT {}", go_quoted_slice(&args)), None);
            live.image.config.entrypoint = if args.is_empty() { None } else { Some(args) };
            if live.cmd_at.is_none() {
                live.image.config.cmd = None;
            }
            Ok(())
        }
        Instruction::Healthcheck(h) => {
            if let Some(prev) = live.healthcheck_at {
                ctx.report(
                    Rule::MultipleInstructionsDisallowed,
                    prev,
                    "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used",
                );
            }
            live.healthcheck_at = Some(span);
            let hc = solver::llb::Healthcheck {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            };
            let msg = format!(
                "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                go_slice(&hc.test),
                format_go_duration(hc.interval),
                format_go_duration(hc.timeout),
                format_go_duration(hc.start_period),
                format_go_duration(hc.start_interval),
                hc.retries
            );
            live.image.config.healthcheck = Some(hc);
            commit(live, msg, None);
            Ok(())
        }
        Instruction::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports {
                let words = ctx
                    .prep
                    .lexer
                    .process(&p.value, &live.env)
                    .map_err(|e| Error::new(ErrorKind::Expansion, e.0, Some(p.span)))?;
                ctx.report_unmatched(live, &words.unmatched, span);
                for w in words.words {
                    all.extend(
                        parse_port(ctx, &w, span).map_err(|e| Error::instruction(e, p.span))?,
                    );
                }
            }
            let map = live
                .image
                .config
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in &all {
                map.insert(p.clone(), Empty {});
            }
            commit(live, format!("EXPOSE {}", go_slice(&all)), None);
            Ok(())
        }
        Instruction::Arg(defs) => {
            let mut parts = Vec::new();
            for d in defs {
                let key = d.key.value.clone();
                if let Some(l) = ctx.lint.as_deref_mut() {
                    lint_secret(l, "ARG", &key, span);
                }
                let given = ctx.opts.build_args.get(&key).cloned();
                let mut value = None;
                if d.default.is_none() && given.is_none() {
                    value = ctx.prep.global_args.get(&key).map(str::to_string);
                }
                if let Some(g) = given {
                    value = Some(g);
                } else if let Some(def) = &d.default {
                    value = Some(ctx.expand(live, &def.value, def.span)?);
                }
                if let Some(v) = &value {
                    live.env.set(&key, v);
                }
                parts.push(match &value {
                    Some(v) => format!("{key}={v}"),
                    None => key.clone(),
                });
                live.build_args.push((key, value));
            }
            commit(live, format!("ARG {}", parts.join(" ")), None);
            Ok(())
        }
        Instruction::Onbuild(expr) => {
            live.image.config.on_build.push(expr.clone());
            Ok(())
        }
        Instruction::Run(r) => super::run::dispatch_run(ctx, live, stage, cmd, r),
        Instruction::Copy(cp) | Instruction::Add(cp) => {
            super::copy::dispatch_copy(ctx, live, stage, cmd, cp)
        }
    };
    r.map_err(|e| e.or_span(span))
}

fn add_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(a, _)| a) == k)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

fn workdir(ctx: &mut Ctx, live: &mut Live, p: &str, c: &Command) -> Result<()> {
    if !live.workdir_set && !p.starts_with('/') {
        ctx.report(
            Rule::WorkdirRelativePath,
            c.span,
            format!(
                "Relative workdir {} can have unexpected results if the base image changes",
                go_quote(p)
            ),
        );
    }
    live.workdir_set = true;
    let wd = paths::normalize(&live.image.config.working_dir, p, false);
    live.image.config.working_dir = wd.clone();
    live.cwd = wd.clone();
    live.cmd_index += 1;
    if wd == "/" {
        commit(live, format!("WORKDIR {wd}"), None);
        return Ok(());
    }
    let user = live.image.config.user.clone();
    let op = Op::File(FileOp {
        base: live.fs.map(|_| 0),
        actions: vec![FileAction::Mkdir(MkdirAction {
            path: wd.clone(),
            mode: 0o755,
            make_parents: true,
            chown: (!user.is_empty()).then(|| chown_of(&user)),
        })],
    });
    let name = ctx.label(live, &ctx.label_text(live, &c.original));
    let out = ctx.b.add(
        op,
        live.fs.into_iter().collect(),
        name,
        Some((c.span.start.line, c.span.end.line)),
    );
    live.fs = Some(out);
    commit(live, format!("WORKDIR {wd}"), Some(out));
    Ok(())
}

fn valid_signal(s: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return n != 0;
    }
    let up = s.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        return rt.is_empty()
            || rt
                .strip_prefix('+')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 15);
    }
    if let Some(rt) = name.strip_prefix("RTMAX") {
        return rt.is_empty()
            || rt
                .strip_prefix('-')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 14);
    }
    NAMES.contains(&name)
}

/// Parses one EXPOSE word into `port/proto` keys (ranges expanded).
fn parse_port(ctx: &mut Ctx, raw: &str, span: Span) -> std::result::Result<Vec<String>, String> {
    // [ip:][hostPort:]containerPort[/proto]
    let (rest, proto) = match raw.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (raw, "tcp"),
    };
    if proto.is_empty() {
        return Err(format!(
            "invalid port: {}: no port specified: {raw}<empty>",
            go_quote(raw)
        ));
    }
    if proto != proto.to_lowercase() {
        ctx.report(
            Rule::ExposeProtoCasing,
            span,
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
        );
    }
    let container = rest.rsplit(':').next().unwrap_or(rest);
    let range = |s: &str| -> std::result::Result<(u32, u32), String> {
        let num = |x: &str| x.parse::<u32>().ok().filter(|n| *n <= 65535);
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (Some(a), Some(b)) = (num(a), num(b)) else {
            return Err(format!("invalid containerPort: {s}"));
        };
        if b < a {
            return Err(format!("invalid containerPort: {s}"));
        }
        Ok((a, b))
    };
    let (a, b) = range(container)?;
    Ok((a..=b)
        .map(|p| format!("{p}/{}", proto.to_lowercase()))
        .collect())
}
