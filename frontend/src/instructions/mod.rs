//! Typed instructions: each AST [`Node`] becomes an [`Instruction`] with its
//! flags validated against what BuildKit's stable frontend accepts, and the
//! instructions are grouped into global ARGs and [`Stage`]s. Values are
//! still unexpanded here; the compiler expands them.

mod duration;
mod flags;
mod mount;

pub(crate) use duration::format_go_duration;
pub(crate) use mount::parse_mount;
pub use mount::{MountSpec, MountType, Sharing};

use flags::{Flags, Kind};

use crate::lint::{Linter, Rule};
use crate::parser::{Ast, Heredoc, Node, Word, go_quote, parse_heredoc};
use crate::{Error, Result, Span};

/// A value with the span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl Spanned<String> {
    fn of(w: &Word) -> Self {
        Spanned {
            value: w.value.clone(),
            span: w.span,
        }
    }
}

/// `KEY=value` of ENV or LABEL (raw: quotes and escapes still in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Spanned<String>,
    /// The value.
    pub value: Spanned<String>,
    /// Written in the legacy `KEY value` form.
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub key: Spanned<String>,
    /// `=default` (raw).
    pub default: Option<Spanned<String>>,
}

/// The command of RUN, CMD, ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// JSON form: the argv; shell form: one string.
    pub args: Vec<String>,
    /// Shell form: run through the stage's SHELL.
    pub prepend_shell: bool,
    /// Heredocs of the line.
    pub files: Vec<Heredoc>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub cmd: CommandLine,
    /// `--mount` values (raw), parsed at compile time after expansion.
    pub mounts: Vec<Spanned<String>>,
    /// `--network`.
    pub network: solver::llb::NetworkMode,
    /// `--security`.
    pub security: solver::llb::SecurityMode,
}

/// An inline file of COPY/ADD (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// File name (the heredoc word).
    pub path: String,
    /// Body (tabs already stripped for `<<-`).
    pub data: String,
    /// Expand variables in the body.
    pub expand: bool,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// ADD rather than COPY.
    pub is_add: bool,
    /// Source paths or URLs (raw).
    pub sources: Vec<Spanned<String>>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination (raw).
    pub dest: Spanned<String>,
    /// `--from` (COPY).
    pub from: Option<Spanned<String>>,
    /// `--chown`.
    pub chown: Option<Spanned<String>>,
    /// `--chmod`.
    pub chmod: Option<Spanned<String>>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY).
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--keep-git-dir` (ADD).
    pub keep_git_dir: Option<bool>,
    /// `--checksum` (ADD).
    pub checksum: Option<Spanned<String>>,
    /// `--unpack` (ADD).
    pub unpack: Option<bool>,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// Nanoseconds (0: default).
    pub interval: i64,
    /// Nanoseconds.
    pub timeout: i64,
    /// Nanoseconds.
    pub start_period: i64,
    /// Nanoseconds.
    pub start_interval: i64,
    /// Retries (0: default).
    pub retries: i64,
}

/// A typed instruction (FROM is a [`Stage`], not an instruction).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Instruction {
    Add(Copy),
    Arg(Vec<ArgDef>),
    Cmd(CommandLine),
    Copy(Copy),
    Entrypoint(CommandLine),
    Env(Vec<KeyValue>),
    Expose(Vec<Spanned<String>>),
    Healthcheck(Healthcheck),
    Label(Vec<KeyValue>),
    Maintainer(String),
    /// The trigger text (everything after `ONBUILD`, heredocs appended).
    Onbuild(String),
    Run(Run),
    Shell(Vec<String>),
    StopSignal(Spanned<String>),
    User(Spanned<String>),
    Volume(Vec<Spanned<String>>),
    Workdir(Spanned<String>),
}

/// An instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What it is.
    pub instruction: Instruction,
    /// The keyword as written.
    pub keyword: String,
    /// The whole instruction.
    pub span: Span,
    /// The joined source line (continuations removed).
    pub original: String,
    /// Comments above it.
    pub comments: Vec<String>,
}

impl Command {
    /// The upper-case instruction name.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_uppercase()
    }
}

/// `FROM base [AS name]` and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The image or stage it starts from (raw; expanded with global args).
    pub base: Spanned<String>,
    /// `AS name`, lower-cased.
    pub name: Option<Spanned<String>>,
    /// `--platform` (raw).
    pub platform: Option<Spanned<String>>,
    /// The FROM keyword as written.
    pub keyword: String,
    /// The FROM line.
    pub span: Span,
    /// The FROM line's text.
    pub original: String,
    /// Comments above FROM.
    pub comments: Vec<String>,
    /// The instructions of the stage.
    pub commands: Vec<Command>,
}

/// A Dockerfile as typed instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// ARGs before the first FROM.
    pub meta_args: Vec<Command>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The escape character.
    pub escape: char,
}

const NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn err(msg: impl Into<String>, span: Span) -> Error {
    Error::instruction(msg, span)
}

fn at_least_one(cmd: &str, span: Span) -> Error {
    err(format!("{cmd} requires at least one argument"), span)
}

fn exactly_one(cmd: &str, span: Span) -> Error {
    err(format!("{cmd} requires exactly one argument"), span)
}

fn flags(node: &Node, spec: &[(&'static str, Kind)]) -> Result<Flags> {
    Flags::parse(&node.flags, spec)
}

/// The argument values of a node, flattening an ONBUILD child (BuildKit's
/// `nodeArgs`).
fn node_args(node: &Node) -> Vec<Word> {
    match &node.nested {
        Some(child) => {
            let mut v = vec![Word {
                value: child.keyword.clone(),
                span: child.keyword_span,
            }];
            v.extend(node_args(child));
            v
        }
        None => node.args.clone(),
    }
}

fn command_line(node: &Node, args: &[Word], empty_as_nil: bool) -> CommandLine {
    let vals: Vec<String> = args.iter().map(|w| w.value.clone()).collect();
    let args = if vals.is_empty() || node.json {
        vals
    } else {
        vec![vals.join(" ")]
    };
    let _ = empty_as_nil;
    CommandLine {
        args,
        prepend_shell: !node.json,
        files: node.heredocs.clone(),
    }
}

fn kvps(args: &[Word], cmd: &str, span: Span) -> Result<Vec<KeyValue>> {
    if args.is_empty() {
        return Err(at_least_one(cmd, span));
    }
    if !args.len().is_multiple_of(3) {
        return Err(err(format!("Bad input to {cmd}, too many arguments"), span));
    }
    args.chunks(3)
        .map(|c| {
            if c[0].value.is_empty() {
                return Err(err(format!("{cmd} names can not be blank"), c[0].span));
            }
            Ok(KeyValue {
                key: Spanned::of(&c[0]),
                value: Spanned::of(&c[1]),
                legacy: c[2].value.is_empty(),
            })
        })
        .collect()
}

fn parse_copy(node: &Node, is_add: bool) -> Result<Copy> {
    let name = if is_add { "ADD" } else { "COPY" };
    if node.args.len() < 2 {
        return Err(err(
            format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
            node.span,
        ));
    }
    let f = if is_add {
        flags(
            node,
            &[
                ("chown", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("keep-git-dir", Kind::Bool),
                ("checksum", Kind::String),
                ("unpack", Kind::Bool),
                ("exclude", Kind::Strings),
            ],
        )?
    } else {
        flags(
            node,
            &[
                ("chown", Kind::String),
                ("from", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("exclude", Kind::Strings),
                ("parents", Kind::Bool),
            ],
        )?
    };
    let (srcs, dest) = node.args.split_at(node.args.len() - 1);
    let dest = &dest[0];
    if parse_heredoc(&dest.value).ok().flatten().is_some() {
        return Err(err(
            format!("{name} cannot accept a heredoc as a destination"),
            dest.span,
        ));
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for s in srcs {
        match parse_heredoc(&s.value).ok().flatten() {
            Some(h) => {
                let doc = node.heredocs.iter().find(|d| d.name == h.name);
                let data = doc.map(|d| d.content.clone()).unwrap_or_default();
                let data = if h.chomp {
                    crate::parser::chomp_tabs(&data)
                } else {
                    data
                };
                contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            None => sources.push(Spanned::of(s)),
        }
    }
    let sp = |(v, s): (String, Span)| Spanned { value: v, span: s };
    Ok(Copy {
        is_add,
        sources,
        contents,
        dest: Spanned::of(dest),
        from: f.string("from").filter(|(v, _)| !v.is_empty()).map(sp),
        chown: f.string("chown").filter(|(v, _)| !v.is_empty()).map(sp),
        chmod: f.string("chmod").filter(|(v, _)| !v.is_empty()).map(sp),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        excludes: f.strings("exclude").into_iter().map(|(v, _)| v).collect(),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.string("checksum").filter(|(v, _)| !v.is_empty()).map(sp),
        unpack: f.bool("unpack"),
    })
}

fn parse_duration_flag(f: &Flags, name: &str) -> Result<i64> {
    let Some((v, span)) = f.string(name) else {
        return Ok(0);
    };
    if v.is_empty() {
        return Ok(0);
    }
    let d = duration::parse_go_duration(&v).map_err(|e| err(e, span))?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(err(
            format!("Interval \"{name}\" cannot be less than 1ms"),
            span,
        ));
    }
    Ok(d)
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck> {
    let args = &node.args;
    if args.is_empty() {
        return Err(at_least_one("HEALTHCHECK", node.span));
    }
    let typ = args[0].value.to_uppercase();
    let rest = &args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(err("HEALTHCHECK NONE takes no arguments", rest[0].span));
        }
        flags(node, &[])?;
        return Ok(Healthcheck {
            test: vec![typ],
            interval: 0,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 0,
        });
    }
    let f = flags(
        node,
        &[
            ("interval", Kind::String),
            ("timeout", Kind::String),
            ("start-period", Kind::String),
            ("start-interval", Kind::String),
            ("retries", Kind::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(err(
            format!("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(&typ)),
            args[0].span,
        ));
    }
    let cmd = command_line(node, rest, false);
    if cmd.args.is_empty() {
        return Err(err("Missing command after HEALTHCHECK CMD", node.span));
    }
    let kind = if node.json { "CMD" } else { "CMD-SHELL" };
    let mut test = vec![kind.to_string()];
    test.extend(cmd.args);
    let retries = match f.string("retries") {
        Some((v, span)) if !v.is_empty() => {
            let r: i64 = v
                .parse()
                .ok()
                .filter(|r: &i64| i32::try_from(*r).is_ok())
                .ok_or_else(|| {
                    err(
                        format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(&v)),
                        span,
                    )
                })?;
            if r < 0 {
                return Err(err(format!("--retries cannot be negative ({r})"), span));
            }
            r
        }
        _ => 0,
    };
    Ok(Healthcheck {
        test,
        interval: parse_duration_flag(&f, "interval")?,
        timeout: parse_duration_flag(&f, "timeout")?,
        start_period: parse_duration_flag(&f, "start-period")?,
        start_interval: parse_duration_flag(&f, "start-interval")?,
        retries,
    })
}

fn parse_run(node: &Node) -> Result<Run> {
    let f = flags(
        node,
        &[
            ("mount", Kind::Strings),
            ("network", Kind::String),
            ("security", Kind::String),
        ],
    )?;
    let mounts: Vec<Spanned<String>> = f
        .strings("mount")
        .into_iter()
        .map(|(v, s)| Spanned { value: v, span: s })
        .collect();
    for m in &mounts {
        parse_mount(&m.value, None).map_err(|e| err(e, m.span))?;
        // Without variables the value cannot change at compile time: check
        // everything now, so `kiln check` reports it.
        if !m.value.contains('$') {
            let same = |s: &str| Ok(s.to_string());
            parse_mount(&m.value, Some(&same)).map_err(|e| err(e, m.span))?;
        }
    }
    let network = match f.string("network") {
        None => solver::llb::NetworkMode::Default,
        Some((v, span)) => match v.as_str() {
            "default" => solver::llb::NetworkMode::Default,
            "none" => solver::llb::NetworkMode::None,
            "host" => solver::llb::NetworkMode::Host,
            _ => return Err(err(format!("invalid network mode {}", go_quote(&v)), span)),
        },
    };
    let security = match f.string("security") {
        None => solver::llb::SecurityMode::Sandbox,
        Some((v, span)) => match v.as_str() {
            "sandbox" => solver::llb::SecurityMode::Sandbox,
            "insecure" => solver::llb::SecurityMode::Insecure,
            _ => return Err(err(format!("security {} is not valid", go_quote(&v)), span)),
        },
    };
    let _ = f.used();
    Ok(Run {
        cmd: command_line(node, &node.args, false),
        mounts,
        network,
        security,
    })
}

fn parse_onbuild(node: &Node) -> Result<String> {
    let args = node_args(node);
    if args.is_empty() {
        return Err(at_least_one("ONBUILD", node.span));
    }
    flags(node, &[])?;
    let trigger = args[0].value.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(err(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                args[0].span,
            ));
        }
        "MAINTAINER" | "FROM" => {
            return Err(err(
                format!("{trigger} isn't allowed as an ONBUILD trigger"),
                args[0].span,
            ));
        }
        _ => {}
    }
    // The original line without the leading `ONBUILD` and blanks.
    let o = node.original.trim_start();
    let o = if o.len() >= 7 && o[..7].eq_ignore_ascii_case("onbuild") {
        &o[7..]
    } else {
        o
    };
    let mut expr = o.trim_start().to_string();
    for h in &node.heredocs {
        expr.push('\n');
        expr.push_str(&h.content);
        expr.push_str(&h.name);
    }
    Ok(expr)
}

/// Parses one node into an instruction; FROM gives `Ok(None)` (see
/// [`parse_stage`]).
pub fn parse_instruction(node: &Node, lint: &mut Linter) -> Result<Option<Instruction>> {
    let span = node.span;
    let args = &node.args;
    let one = |name: &str| -> Result<Spanned<String>> {
        if args.len() != 1 {
            return Err(exactly_one(name, span));
        }
        Ok(Spanned::of(&args[0]))
    };
    let i = match node.name().as_str() {
        "from" => return Ok(None),
        "env" => {
            flags(node, &[])?;
            Instruction::Env(kvps(args, "ENV", span)?)
        }
        "label" => {
            flags(node, &[])?;
            Instruction::Label(kvps(args, "LABEL", span)?)
        }
        "maintainer" => {
            lint.report(
                Rule::MaintainerDeprecated,
                node.keyword_span,
                "Maintainer instruction is deprecated in favor of using label",
            );
            let v = one("MAINTAINER")?;
            flags(node, &[])?;
            Instruction::Maintainer(v.value)
        }
        "add" => Instruction::Add(parse_copy(node, true)?),
        "copy" => Instruction::Copy(parse_copy(node, false)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        "workdir" => {
            let v = one("WORKDIR")?;
            flags(node, &[])?;
            Instruction::Workdir(v)
        }
        "run" => Instruction::Run(parse_run(node)?),
        "cmd" => {
            flags(node, &[])?;
            Instruction::Cmd(command_line(node, args, false))
        }
        "entrypoint" => {
            flags(node, &[])?;
            Instruction::Entrypoint(command_line(node, args, true))
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE", span));
            }
            flags(node, &[])?;
            let mut ports: Vec<Spanned<String>> = args.iter().map(Spanned::of).collect();
            ports.sort_by(|a, b| a.value.cmp(&b.value));
            Instruction::Expose(ports)
        }
        "user" => {
            let v = one("USER")?;
            flags(node, &[])?;
            Instruction::User(v)
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME", span));
            }
            flags(node, &[])?;
            let mut v = Vec::new();
            for a in args {
                let t = a.value.trim();
                if t.is_empty() {
                    return Err(err("VOLUME specified can not be an empty string", a.span));
                }
                v.push(Spanned {
                    value: t.to_string(),
                    span: a.span,
                });
            }
            Instruction::Volume(v)
        }
        "stopsignal" => {
            let v = one("STOPSIGNAL")?;
            flags(node, &[])?;
            Instruction::StopSignal(v)
        }
        "arg" => {
            if args.is_empty() {
                return Err(at_least_one("ARG", span));
            }
            flags(node, &[])?;
            let mut defs = Vec::new();
            for a in args {
                let def = match a.value.split_once('=') {
                    Some((k, v)) => {
                        if k.is_empty() {
                            return Err(err("ARG names can not be blank", a.span));
                        }
                        ArgDef {
                            key: Spanned {
                                value: k.to_string(),
                                span: a.span,
                            },
                            default: Some(Spanned {
                                value: v.to_string(),
                                span: a.span,
                            }),
                        }
                    }
                    None => ArgDef {
                        key: Spanned::of(a),
                        default: None,
                    },
                };
                defs.push(def);
            }
            Instruction::Arg(defs)
        }
        "shell" => {
            flags(node, &[])?;
            let cmd = command_line(node, args, false);
            if cmd.args.is_empty() {
                return Err(at_least_one("SHELL", span));
            }
            if !node.json {
                return Err(err(
                    "SHELL requires the arguments to be in JSON form",
                    args.first().map_or(span, |a| a.span),
                ));
            }
            Instruction::Shell(cmd.args)
        }
        _ => {
            let mut msg = format!("unknown instruction: {}", node.keyword);
            if let Some(s) =
                crate::lint::suggest(&node.keyword.to_uppercase(), NAMES.iter().copied())
            {
                msg.push_str(&format!(" (did you mean {}?)", s.to_lowercase()));
            }
            return Err(err(msg, node.keyword_span));
        }
    };
    Ok(Some(i))
}

/// Parses a FROM node.
pub fn parse_stage(node: &Node, lint: &mut Linter) -> Result<Stage> {
    let args = &node.args;
    if args.len() == 3 && args[2].value != args[2].value.to_lowercase() {
        lint.report(
            Rule::StageNameCasing,
            node.keyword_span,
            format!("Stage name '{}' should be lowercase", args[2].value),
        );
    }
    if args.len() >= 3 {
        let kw = &node.keyword;
        let from_lower = *kw == kw.to_lowercase();
        let from_upper = *kw == kw.to_uppercase();
        let as_ = &args[1].value;
        let ok = if from_lower {
            *as_ == as_.to_lowercase()
        } else if from_upper {
            *as_ == as_.to_uppercase()
        } else {
            true
        };
        if !ok {
            lint.report(
                Rule::FromAsCasing,
                node.keyword_span,
                format!("'{as_}' and '{kw}' keywords' casing do not match"),
            );
        }
    }
    let name = match args.len() {
        3 if args[1].value.eq_ignore_ascii_case("as") => {
            let n = args[2].value.to_lowercase();
            let valid = n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(err(
                    format!(
                        "invalid name for build stage: {}, name can't start with a number or contain symbols",
                        go_quote(&args[2].value)
                    ),
                    args[2].span,
                ));
            }
            Some(Spanned {
                value: n,
                span: args[2].span,
            })
        }
        1 => None,
        _ => {
            return Err(err(
                "FROM requires either one or three arguments",
                node.span,
            ));
        }
    };
    let f = flags(node, &[("platform", Kind::String)])?;
    Ok(Stage {
        base: Spanned::of(&args[0]),
        name,
        platform: f
            .string("platform")
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, s)| Spanned { value: v, span: s }),
        keyword: node.keyword.clone(),
        span: node.span,
        original: node.original.trim().to_string(),
        comments: node.comments.clone(),
        commands: Vec::new(),
    })
}

fn command_of(node: &Node, instruction: Instruction) -> Command {
    Command {
        instruction,
        keyword: node.keyword.clone(),
        span: node.span,
        original: node.original.clone(),
        comments: node.comments.clone(),
    }
}

/// Parses one node as a stage command (used for ONBUILD triggers).
pub fn parse_command(node: &Node, lint: &mut Linter) -> Result<Command> {
    match parse_instruction(node, lint)? {
        Some(i) => Ok(command_of(node, i)),
        None => Err(err(
            "FROM isn't allowed as an ONBUILD trigger",
            node.keyword_span,
        )),
    }
}

fn is_consistent(s: &str) -> bool {
    s == s.to_lowercase() || s == s.to_uppercase()
}

/// Turns the AST into typed instructions grouped by stage, reporting the
/// parse-time lint rules.
pub fn parse_dockerfile(ast: &Ast, lint: &mut Linter) -> Result<Dockerfile> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for w in &ast.warnings {
        lint.report(Rule::NoEmptyContinuation, w.span, "Empty continuation line");
    }
    for node in &ast.nodes {
        if node.name() == "from" {
            stages.push(parse_stage(node, lint)?);
            continue;
        }
        let i =
            parse_instruction(node, lint)?.unwrap_or_else(|| unreachable!("FROM handled above"));
        let cmd = command_of(node, i);
        match stages.last_mut() {
            None => match cmd.instruction {
                Instruction::Arg(_) => meta_args.push(cmd),
                _ => {
                    return Err(err("no build stage in current context", node.keyword_span));
                }
            },
            Some(st) => st.commands.push(cmd),
        }
    }
    if stages.is_empty() {
        let span = ast.nodes.last().map_or(Span::lines(1, 1), |n| n.span);
        return Err(err("dockerfile contains no stages to build", span));
    }
    // Stage names: reserved and duplicate.
    let mut seen = std::collections::HashSet::new();
    for st in &stages {
        if let Some(n) = &st.name {
            if n.value == "context" || n.value == "scratch" {
                lint.report(
                    Rule::ReservedStageName,
                    st.span,
                    format!(
                        "Stage name should not use the same name as reserved stage {}",
                        go_quote(&n.value)
                    ),
                );
            }
            if !seen.insert(n.value.clone()) {
                lint.report(
                    Rule::DuplicateStageName,
                    st.span,
                    format!(
                        "Duplicate stage name {}, stage names should be unique",
                        go_quote(&n.value)
                    ),
                );
            }
        }
    }
    // Instruction casing: majority wins.
    let mut lower = 0;
    let mut upper = 0;
    let all = stages.iter().flat_map(|s| {
        std::iter::once((s.keyword.as_str(), s.span))
            .chain(s.commands.iter().map(|c| (c.keyword.as_str(), c.span)))
    });
    for (k, _) in all.clone() {
        if is_consistent(k) {
            if k == k.to_lowercase() {
                lower += 1;
            } else {
                upper += 1;
            }
        }
    }
    let majority_lower = lower > upper;
    for (k, span) in all {
        let wrong = if majority_lower {
            k != k.to_lowercase()
        } else {
            k != k.to_uppercase()
        };
        if wrong {
            let casing = if majority_lower {
                "lowercase"
            } else {
                "uppercase"
            };
            lint.report(
                Rule::ConsistentInstructionCasing,
                span,
                format!("Command '{k}' should match the case of the command majority ({casing})"),
            );
        }
    }
    Ok(Dockerfile {
        meta_args,
        stages,
        escape: ast.escape,
    })
}

#[cfg(test)]
mod tests;
