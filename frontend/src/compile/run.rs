//! RUN: the command line (shell form, JSON form, heredocs), its mounts
//! (BuildKit's `convert_runmount.go`, `convert_secrets.go`,
//! `convert_ssh.go`) and its history entry.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use solver::llb::{
    CacheSharing, Exec, FileAction, FileOp, MkfileAction, Mount, MountKind, Op, Output, ProxyEnv,
};

use super::dispatch::{Ctx, Live, commit, with_shell};
use super::paths;
use super::stages::Cmd;
use crate::instructions::{MountSpec, MountType, Run, Sharing, parse_mount};
use crate::parser::{chomp_tabs, parse_heredoc};
use crate::shell::Env;
use crate::{Error, ErrorKind, Result};

/// Collects a vertex's inputs, deduplicated, and gives their positions.
#[derive(Default)]
pub(crate) struct Inputs {
    pub(crate) list: Vec<Output>,
}

impl Inputs {
    pub(crate) fn pos(&mut self, o: Output) -> usize {
        match self.list.iter().position(|x| *x == o) {
            Some(i) => i,
            None => {
                self.list.push(o);
                self.list.len() - 1
            }
        }
    }

    pub(crate) fn opt(&mut self, o: Option<Output>) -> Option<usize> {
        o.map(|o| self.pos(o))
    }
}

/// BuildKit's `runCommandString`: `|N K=V ... argv` for the stage's ARGs.
fn run_command_string(args: &[String], live: &Live) -> String {
    let mut vals: Vec<(String, String)> = Vec::new();
    for (k, v) in &live.build_args {
        let val = live
            .env
            .get(k)
            .map(str::to_string)
            .unwrap_or_else(|| v.clone().unwrap_or_default());
        match vals.iter_mut().find(|(kk, _)| kk == k) {
            Some(e) => e.1 = val,
            None => vals.push((k.clone(), val)),
        }
    }
    let mut parts = Vec::new();
    if !vals.is_empty() {
        parts.push(format!("|{}", vals.len()));
        parts.extend(vals.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(args.iter().cloned());
    parts.join(" ")
}

fn proxy_env(ctx: &Ctx) -> Option<ProxyEnv> {
    let mut vars = BTreeMap::new();
    for (k, v) in &ctx.opts.build_args {
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "FTP_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ] {
            if k.eq_ignore_ascii_case(name) {
                vars.insert(name.to_string(), v.clone());
            }
        }
    }
    (!vars.is_empty()).then_some(ProxyEnv { vars })
}

pub(crate) fn dispatch_run(
    ctx: &mut Ctx,
    live: &mut Live,
    _stage: usize,
    cmd: &Cmd,
    r: &Run,
) -> Result<()> {
    let c = &cmd.command;
    let span = c.span;
    let mut inputs = Inputs::default();
    let rootfs = inputs.opt(live.fs);
    let mut mounts = Vec::new();
    let mut args = r.cmd.args.clone();
    if !r.cmd.files.is_empty() {
        if args.len() != 1 || !r.cmd.prepend_shell {
            return Err(Error::instruction(
                format!("parsing produced an invalid run command: {args:?}"),
                span,
            ));
        }
        if parse_heredoc(&args[0]).ok().flatten().is_some() {
            let f = &r.cmd.files[0];
            let data = if f.chomp {
                chomp_tabs(&f.content)
            } else {
                f.content.clone()
            };
            if live.platform.os != "windows" && data.starts_with("#!") {
                let op = Op::File(FileOp {
                    base: None,
                    actions: vec![FileAction::Mkfile(MkfileAction {
                        path: format!("/{}", f.name),
                        mode: 0o755,
                        data,
                        chown: None,
                    })],
                });
                let script = ctx
                    .b
                    .add(op, vec![], "[internal] preparing inline document", None);
                let input = inputs.pos(script);
                mounts.push(Mount {
                    target: "/dev/pipes/".into(),
                    kind: MountKind::Bind {
                        input: Some(input),
                        source: "/".into(),
                        readonly: true,
                    },
                });
                args = vec![paths::join(&["/dev/pipes/", &f.name])];
            } else {
                args = vec![data];
            }
        } else {
            let mut s = args[0].clone();
            for f in &r.cmd.files {
                s.push('\n');
                s.push_str(&f.content);
                s.push_str(&f.name);
            }
            args = vec![s];
        }
    }
    if r.cmd.prepend_shell {
        args = with_shell(live, &args);
    }

    // Mounts, with every value expanded.
    let unmatched = RefCell::new(BTreeSet::new());
    let lexer = ctx.prep.lexer;
    let env = live.env.clone();
    let expander = |w: &str| -> std::result::Result<String, String> {
        let p = lexer.process(w, &env).map_err(|e| e.0)?;
        unmatched.borrow_mut().extend(p.unmatched);
        Ok(p.result)
    };
    let mut specs: Vec<MountSpec> = Vec::new();
    for m in &r.mounts {
        specs.push(
            parse_mount(&m.value, Some(&expander)).map_err(|e| Error::instruction(e, m.span))?,
        );
    }
    let unmatched = unmatched.into_inner();
    if !unmatched.is_empty() {
        let _ = ctx.expand_with(
            &lexer,
            live,
            &unmatched
                .iter()
                .map(|u| format!("${{{u}}}"))
                .collect::<String>(),
            span,
        );
    }
    for (i, mut m) in specs.into_iter().enumerate() {
        let mspan = r.mounts[i].span;
        let source_stage = cmd.sources.get(i).copied().flatten();
        if m.kind == MountType::Secret {
            let mut id = m.id.clone();
            if !m.source.is_empty() {
                id = m.source.clone();
            }
            if id.is_empty() {
                id = paths::base(&m.target);
            }
            let target = if !m.target.is_empty() {
                m.target.clone()
            } else if m.env.is_none() {
                format!("/run/secrets/{}", paths::base(&id))
            } else {
                String::new()
            };
            mounts.push(Mount {
                target,
                kind: MountKind::Secret {
                    id,
                    env: m.env.clone(),
                    required: m.required,
                    mode: m.mode.unwrap_or(0o400),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                },
            });
            continue;
        }
        if m.kind == MountType::Ssh {
            if !m.source.is_empty() {
                return Err(Error::instruction("ssh does not support source", mspan));
            }
            let target = if m.target.is_empty() {
                let t = format!("/run/buildkit/ssh_agent.{}", ctx.ssh_count);
                ctx.ssh_count += 1;
                t
            } else {
                m.target.clone()
            };
            mounts.push(Mount {
                target,
                kind: MountKind::Ssh {
                    id: if m.id.is_empty() {
                        "default".into()
                    } else {
                        m.id.clone()
                    },
                    required: m.required,
                    mode: m.mode.unwrap_or(0o600),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                },
            });
            continue;
        }
        // The filesystem the mount reads.
        let from_fs: Option<Output> = match source_stage {
            Some(s) => match ctx.lives.get(s).and_then(|l| l.as_ref()) {
                Some(l) => l.fs,
                None => {
                    return Err(Error::new(
                        ErrorKind::Stage,
                        format!(
                            "cannot mount from stage {}, stage needs to be defined before current command",
                            crate::parser::go_quote(&m.from)
                        ),
                        Some(mspan),
                    ));
                }
            },
            None if m.kind == MountType::Cache || m.kind == MountType::Tmpfs => None,
            None => Some(ctx.context()),
        };
        let mut target = m.target.clone();
        if !paths::clean(&target).starts_with('/') {
            target = paths::join(&["/", &live.cwd, &m.target]);
        }
        if target == "/" {
            return Err(Error::instruction(
                format!("invalid mount target {}", crate::parser::go_quote(&target)),
                mspan,
            ));
        }
        let source = paths::join(&["/", &m.source]);
        let kind = match m.kind {
            MountType::Tmpfs => MountKind::Tmpfs { size: m.size },
            MountType::Cache => {
                if m.id.is_empty() {
                    m.id = paths::clean(&m.target);
                }
                MountKind::Cache {
                    id: format!("{}/{}", ctx.opts.cache_id_namespace, m.id),
                    sharing: match m.sharing {
                        Some(Sharing::Private) => CacheSharing::Private,
                        Some(Sharing::Locked) => CacheSharing::Locked,
                        _ => CacheSharing::Shared,
                    },
                    from: inputs.opt(from_fs),
                    source: source.clone(),
                    mode: m.mode,
                    uid: m.uid,
                    gid: m.gid,
                    readonly: m.readonly,
                }
            }
            _ => MountKind::Bind {
                input: inputs.opt(from_fs),
                source: source.clone(),
                readonly: m.readonly,
            },
        };
        mounts.push(Mount { target, kind });
        if m.kind == MountType::Bind && source_stage.is_none() {
            ctx.context_paths.insert(source);
        }
    }
    live.cmd_index += 1;
    let exec = Exec {
        rootfs,
        args: args.clone(),
        env: live.env.to_env_strings(),
        cwd: live.cwd.clone(),
        user: live.user.clone(),
        platform: live.platform.clone(),
        network: r.network,
        security: r.security,
        mounts,
        proxy_env: proxy_env(ctx),
    };
    let name = ctx.label(live, &ctx.label_text(live, &c.original));
    let out = ctx.b.add(
        Op::Exec(exec),
        inputs.list,
        name,
        Some((span.start.line, span.end.line)),
    );
    live.fs = Some(out);
    let msg = format!("RUN {} # buildkit", run_command_string(&args, live));
    commit(live, msg, Some(out));
    Ok(())
}
