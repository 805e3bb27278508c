//! COPY and ADD (BuildKit's `convert_copy.go`): local, stage, image, URL,
//! git and heredoc sources; `--chown`, `--chmod`, `--link`, `--parents`,
//! `--exclude`, `--checksum`, `--unpack`, `--keep-git-dir`.

use solver::llb::{
    Chmod, CopyAction, FileAction, FileOp, GitSource, HttpSource, Merge, MkfileAction, Op, Output,
};

use super::dispatch::{Ctx, Live, chown_of, commit};
use super::paths;
use super::run::Inputs;
use super::stages::Cmd;
use crate::instructions::Copy;
use crate::parser::go_quote;
use crate::shell::Lexer;
use crate::{Error, ErrorKind, Result};

/// A git source: (remote, ref, subdir).
fn git_ref(src: &str) -> Option<(String, String, String)> {
    let (url, frag) = src.split_once('#').unwrap_or((src, ""));
    let is_git = url.starts_with("git://")
        || url.starts_with("git@")
        || url.starts_with("ssh://")
        || ((url.starts_with("http://") || url.starts_with("https://"))
            && url.split('?').next().is_some_and(|u| u.ends_with(".git")));
    if !is_git {
        return None;
    }
    let (r, sub) = frag.split_once(':').unwrap_or((frag, ""));
    Some((url.to_string(), r.to_string(), sub.to_string()))
}

fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && git_ref(src).is_none()
}

fn contains_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Validates a symbolic chmod (`u+x,g-w,o=r`, `a+X`).
fn valid_symbolic_mode(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|clause| {
            let who_len = clause.bytes().take_while(|c| b"ugoa".contains(c)).count();
            let mut rest = &clause[who_len..];
            if rest.is_empty() {
                return false;
            }
            while !rest.is_empty() {
                let Some(op) = rest.chars().next().filter(|c| "+-=".contains(*c)) else {
                    return false;
                };
                let _ = op;
                rest = &rest[1..];
                let n = rest
                    .bytes()
                    .take_while(|c| b"rwxXstugo".contains(c))
                    .count();
                rest = &rest[n..];
            }
            true
        })
}

fn chmod_of(s: &str, span: crate::Span) -> Result<Chmod> {
    let non_octal = || {
        Error::instruction(
            format!(
                "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
            ),
            span,
        )
    };
    if let Ok(p) = u32::from_str_radix(s, 8) {
        if p > 0o7777 {
            return Err(non_octal());
        }
        return Ok(Chmod::Octal(p));
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(non_octal());
    }
    if !valid_symbolic_mode(s) {
        return Err(Error::instruction(
            format!("invalid chmod parameter: '{s}'"),
            span,
        ));
    }
    Ok(Chmod::Symbolic(s.to_string()))
}

pub(crate) fn dispatch_copy(
    ctx: &mut Ctx,
    live: &mut Live,
    _stage: usize,
    cmd: &Cmd,
    c: &Copy,
) -> Result<()> {
    let command = &cmd.command;
    let span = command.span;
    let kw = if c.is_add { "ADD" } else { "COPY" };
    // Expansion (sources, dest, chown, chmod, checksum).
    let dest_raw = ctx.expand(live, &c.dest.value, c.dest.span)?;
    let chown = match &c.chown {
        Some(s) => Some(ctx.expand(live, &s.value, s.span)?).filter(|v| !v.is_empty()),
        None => None,
    };
    let chmod_s = match &c.chmod {
        Some(s) => {
            Some((ctx.expand(live, &s.value, s.span)?, s.span)).filter(|(v, _)| !v.is_empty())
        }
        None => None,
    };
    let checksum = match &c.checksum {
        Some(s) => {
            Some((ctx.expand(live, &s.value, s.span)?, s.span)).filter(|(v, _)| !v.is_empty())
        }
        None => None,
    };
    let mut sources = Vec::new();
    for s in &c.sources {
        sources.push((ctx.expand(live, &s.value, s.span)?, s.span));
    }
    let mut contents = Vec::new();
    for sc in &c.contents {
        let data = if sc.expand {
            let mut lx = Lexer::new('\\');
            lx.skip_process_quotes = true;
            ctx.expand_with(&lx, live, &sc.data, span)?
        } else {
            sc.data.clone()
        };
        contents.push((sc.path.clone(), data));
    }

    let dest = if dest_raw.starts_with('/') {
        paths::normalize("/", &dest_raw, true)
    } else {
        let p = if dest_raw == "." || dest_raw.is_empty() {
            "./"
        } else {
            dest_raw.as_str()
        };
        paths::normalize(&live.cwd, p, true)
    };
    let chmod = match &chmod_s {
        Some((s, sp)) => Some(chmod_of(s, *sp)?),
        None => None,
    };
    if let Some((_, sp)) = &checksum {
        if sources.len() != 1 {
            return Err(Error::instruction(
                "checksum can't be specified for multiple sources",
                *sp,
            ));
        }
        if !is_http(&sources[0].0) && git_ref(&sources[0].0).is_none() {
            return Err(Error::instruction(
                "checksum requires HTTP(S) or Git sources",
                *sp,
            ));
        }
    }
    let mut msg = String::from(kw);
    if c.parents {
        msg.push_str(" --parents");
    }
    if let Some(o) = &chown {
        msg.push_str(&format!(" --chown={o}"));
    }
    if let Some((m, _)) = &chmod_s {
        msg.push_str(&format!(" --chmod={m}"));
    }

    // Where local sources come from: the context, or a stage/image.
    let from_stage = cmd.sources.first().copied().flatten();
    let source_fs: Option<Output> = match from_stage {
        Some(s) => match ctx.lives.get(s).and_then(|l| l.as_ref()) {
            Some(l) => l.fs,
            None => {
                let from = c.from.as_ref().map(|f| f.value.as_str()).unwrap_or("");
                let me = ctx.stage_display.clone();
                return Err(Error::new(
                    ErrorKind::Stage,
                    format!(
                        "cannot copy from stage {}, it needs to be defined before current stage {}",
                        go_quote(from),
                        go_quote(&me)
                    ),
                    c.from.as_ref().map(|f| f.span),
                ));
            }
        },
        None => None,
    };
    let mut inputs = Inputs::default();
    let link = c.link && chmod.is_none();
    let base = if link { None } else { inputs.opt(live.fs) };
    let mut actions = Vec::new();
    let chown_v = chown.as_deref().map(chown_of);
    let name = ctx.label(live, &ctx.label_text(live, &command.original));
    let lines = Some((span.start.line, span.end.line));
    for (src, sspan) in &sources {
        msg.push(' ');
        msg.push_str(src);
        if let Some((remote, reference, subdir)) = git_ref(src) {
            if !c.is_add {
                return Err(Error::instruction(
                    "source can't be a git ref for COPY",
                    *sspan,
                ));
            }
            let op = Op::Git(GitSource {
                remote,
                reference,
                subdir,
                keep_git_dir: c.keep_git_dir.unwrap_or(false),
                checksum: checksum.as_ref().map(|(v, _)| v.clone()),
            });
            let g = ctx.b.add(op, vec![], name.clone(), lines);
            actions.push(FileAction::Copy(CopyAction {
                src: Some(inputs.pos(g)),
                src_path: "/".into(),
                dest: dest.clone(),
                chown: chown_v.clone(),
                chmod: chmod.clone(),
                follow_symlinks: false,
                dir_contents_only: false,
                allow_wildcard: false,
                allow_empty_wildcard: false,
                create_dest_path: true,
                include_patterns: vec![],
                exclude_patterns: c.excludes.clone(),
                required_paths: vec![],
                attempt_unpack: false,
            }));
        } else if is_http(src) {
            if !c.is_add {
                return Err(Error::instruction("source can't be a URL for COPY", *sspan));
            }
            let path = src.split(['?', '#']).next().unwrap_or(src);
            let path = path
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            let b = paths::base(&path);
            let filename = if b == "." || b == "/" || path.is_empty() {
                "__unnamed__".to_string()
            } else {
                b
            };
            if let Some((cs, csp)) = &checksum {
                let ok = cs.split_once(':').is_some_and(|(a, h)| {
                    !a.is_empty() && h.len() >= 32 && h.bytes().all(|x| x.is_ascii_hexdigit())
                });
                if !ok {
                    return Err(Error::instruction("invalid checksum digest format", *csp));
                }
            }
            let op = Op::Http(HttpSource {
                url: src.clone(),
                filename: filename.clone(),
                checksum: checksum.as_ref().map(|(v, _)| v.clone()),
                mode: 0o600,
            });
            let h = ctx.b.add(op, vec![], name.clone(), lines);
            actions.push(FileAction::Copy(CopyAction {
                src: Some(inputs.pos(h)),
                src_path: filename,
                dest: dest.clone(),
                chown: chown_v.clone(),
                chmod: chmod.clone(),
                follow_symlinks: false,
                dir_contents_only: false,
                allow_wildcard: false,
                allow_empty_wildcard: false,
                create_dest_path: true,
                include_patterns: vec![],
                exclude_patterns: c.excludes.clone(),
                required_paths: vec![],
                attempt_unpack: c.unpack.unwrap_or(false),
            }));
        } else {
            let mut s = src.clone();
            let mut include = Vec::new();
            let mut required = Vec::new();
            if c.parents {
                let (parent, pattern) = match s.split_once("/./") {
                    Some((p, pat)) => (p.to_string(), pat.to_string()),
                    None => ("/".to_string(), s.clone()),
                };
                let pattern = paths::normalize("/", &pattern, false);
                include.push(pattern.trim_start_matches('/').to_string());
                if !contains_wildcards(&parent) && !contains_wildcards(&pattern) {
                    required.push(paths::normalize(
                        "/",
                        &paths::join(&[&parent, &pattern]),
                        false,
                    ));
                }
                s = parent;
            }
            let src_path = paths::normalize("/", &s, false);
            let from = match from_stage {
                Some(_) => source_fs,
                None => Some(ctx.context()),
            };
            actions.push(FileAction::Copy(CopyAction {
                src: inputs.opt(from),
                src_path,
                dest: dest.clone(),
                chown: chown_v.clone(),
                chmod: chmod.clone(),
                follow_symlinks: true,
                dir_contents_only: true,
                allow_wildcard: true,
                allow_empty_wildcard: true,
                create_dest_path: true,
                include_patterns: include,
                exclude_patterns: c.excludes.clone(),
                required_paths: required,
                attempt_unpack: c.unpack.unwrap_or(c.is_add),
            }));
            if from_stage.is_none() {
                ctx.context_paths.insert(paths::join(&["/", src]));
            }
        }
    }
    for (p, data) in &contents {
        msg.push_str(&format!(" <<{p}"));
        let f = paths::join(&["/", p]);
        let op = Op::File(FileOp {
            base: None,
            actions: vec![FileAction::Mkfile(MkfileAction {
                path: f.clone(),
                mode: 0o644,
                data: data.clone(),
                chown: None,
            })],
        });
        let doc = ctx
            .b
            .add(op, vec![], "[internal] preparing inline document", None);
        actions.push(FileAction::Copy(CopyAction {
            src: Some(inputs.pos(doc)),
            src_path: f,
            dest: dest.clone(),
            chown: chown_v.clone(),
            chmod: chmod.clone(),
            follow_symlinks: false,
            dir_contents_only: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            create_dest_path: true,
            include_patterns: vec![],
            exclude_patterns: c.excludes.clone(),
            required_paths: vec![],
            attempt_unpack: false,
        }));
    }
    msg.push(' ');
    msg.push_str(&dest_raw);
    msg.push_str(" # buildkit");
    live.cmd_index += 1;
    let name = ctx.label(live, &ctx.label_text(live, &command.original));
    let file = ctx.b.add(
        Op::File(FileOp { base, actions }),
        inputs.list,
        name.clone(),
        lines,
    );
    let (fs, layer) = if link {
        let mut mi = Inputs::default();
        let below = mi.opt(live.fs);
        let above = mi.pos(file);
        let merged = ctx.b.add(
            Op::Merge(Merge {
                inputs: vec![below, Some(above)],
            }),
            mi.list,
            format!("{name} (link)"),
            lines,
        );
        (merged, file)
    } else {
        (file, file)
    };
    live.fs = Some(fs);
    commit(live, msg, Some(layer));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds() {
        assert!(git_ref("https://github.com/a/b.git#main:sub").is_some());
        assert_eq!(git_ref("git@github.com:a/b.git#v1").unwrap().1, "v1");
        assert!(git_ref("https://example.com/x.tar.gz").is_none());
        assert!(is_http("https://example.com/x.tar.gz"));
        assert!(contains_wildcards("a/*.txt"));
        assert!(!contains_wildcards("a/\\*.txt"));
        assert!(valid_symbolic_mode("u+x,go-w"));
        assert!(valid_symbolic_mode("a=rX"));
        assert!(!valid_symbolic_mode("z+x"));
        assert!(!valid_symbolic_mode("u"));
    }
}
