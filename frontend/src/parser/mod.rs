//! The Dockerfile parser: text → [`Ast`], reproducing BuildKit's parser
//! (`frontend/dockerfile/parser`) exactly — directives, escape token, line
//! continuations (with comments and blank lines inside them), JSON vs shell
//! form, `--flags`, heredocs — while keeping a [`Span`] for every node.
//!
//! This stage does no validation: unknown instructions are kept (the
//! instruction layer rejects them), flags are not interpreted, nothing is
//! expanded. [`Ast::dump`] prints BuildKit's test dump format.

mod args;
mod directives;
mod dump;
mod heredoc;
mod json;
mod quote;
mod split;

pub use directives::{Directive, Directives};
pub use heredoc::{Heredoc, chomp_tabs, parse_heredoc};
pub use quote::go_quote;

use crate::{Error, Position, Result, Span};
use directives::DirectiveParser;

/// A word of the source (flag, argument) with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, as BuildKit's parser produces it (flags without quotes;
    /// arguments raw except JSON strings, which are decoded).
    pub value: String,
    /// Where it is.
    pub span: Span,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`Run`, `COPY`, or anything for unknown
    /// instructions).
    pub keyword: String,
    /// Span of the keyword.
    pub keyword_span: Span,
    /// `--flag[=value]` words before the arguments.
    pub flags: Vec<Word>,
    /// The argument nodes (see the conformance README for each keyword).
    pub args: Vec<Word>,
    /// ONBUILD: the wrapped instruction.
    pub nested: Option<Box<Node>>,
    /// The arguments were the JSON (exec) form.
    pub json: bool,
    /// Heredocs, bodies included, in the order of their markers.
    pub heredocs: Vec<Heredoc>,
    /// The joined instruction line (continuations removed).
    pub original: String,
    /// From the keyword to the end of the instruction (including heredoc
    /// bodies and terminators).
    pub span: Span,
    /// Comment lines directly above the instruction (without `#`).
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// Argument values.
    pub fn arg_values(&self) -> Vec<String> {
        self.args.iter().map(|w| w.value.clone()).collect()
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.nested, self.name().as_str()) {
            (Some(n), "onbuild") => n.as_ref(),
            _ => self,
        };
        matches!(node.name().as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// Empty continuation line found.
    pub message: String,
    /// The line it concerns.
    pub span: Span,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// The parser directives at the top.
    pub directives: Directives,
    /// The escape character in force (`\` or `` ` ``).
    pub escape: char,
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// Empty continuation lines (BuildKit's `NoEmptyContinuation`).
    pub warnings: Vec<ParseWarning>,
}

impl Ast {
    /// BuildKit's `Node.Dump` of the whole tree, plus the final newline the
    /// upstream tests append.
    pub fn dump(&self) -> String {
        dump::dump(&self.nodes)
    }
}

/// Maps byte offsets of a joined instruction line back to source positions.
struct LineMap<'a> {
    /// (offset in the joined line, 1-based line, byte offset in that line)
    segs: Vec<(usize, u32, usize)>,
    lines: &'a [String],
}

impl LineMap<'_> {
    fn pos(&self, off: usize) -> Position {
        let i = self.segs.partition_point(|s| s.0 <= off).saturating_sub(1);
        let Some(&(joff, line, poff)) = self.segs.get(i) else {
            return Position { line: 1, column: 1 };
        };
        let text = self
            .lines
            .get(line as usize - 1)
            .map(|s| s.as_str())
            .unwrap_or("");
        let mut b = (poff + off - joff).min(text.len());
        while !text.is_char_boundary(b) {
            b -= 1;
        }
        Position {
            line,
            column: text[..b].chars().count() as u32 + 1,
        }
    }

    fn span(&self, a: usize, b: usize) -> Span {
        let start = self.pos(a);
        let end = if b > a {
            let mut e = self.pos(b - 1);
            e.column += 1;
            e
        } else {
            start
        };
        Span { start, end }
    }
}

/// Strips trailing `\r` and `\n` characters.
fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Applies the continuation rule: returns the line without a trailing
/// escape (and blanks after it) and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    let Some(before) = t.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().last() {
        None => ("", false),
        Some(c) if c == escape => (line, true),
        Some(_) => (before, false),
    }
}

/// Parses Dockerfile bytes. Invalid UTF-8 is replaced by U+FFFD.
pub fn parse(src: &[u8]) -> Result<Ast> {
    let src = src.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(src);
    // Physical lines with their endings (heredoc bodies keep them).
    let raw: Vec<String> = src
        .split_inclusive(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let lines: Vec<String> = raw.iter().map(|l| trim_newline(l).to_string()).collect();
    let mut dp = DirectiveParser::new();
    let mut escape = '\\';
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0usize; // index of the next physical line
    let n = lines.len();
    let whole = |a: u32, b: u32| Span::lines(a, b.max(a));

    while i < n {
        let line = lines[i].as_str();
        let line_no = i as u32 + 1;
        if is_comment(line) {
            let c = line.trim_start()[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let stripped = line.trim_start();
        match dp.offer(stripped, line_no) {
            Ok(Some(d)) => {
                comments.pop();
                if d.name == "escape" {
                    escape = d.value.chars().next().unwrap_or('\\');
                }
            }
            Ok(None) => {}
            Err(e) => return Err(Error::parse(e, whole(line_no, line_no))),
        }
        i += 1;
        let start_line = line_no;
        let processed = if is_comment(stripped) { "" } else { stripped };
        let (first, mut is_end) = trim_continuation(processed, escape);
        if is_end && first.is_empty() {
            continue;
        }
        let mut buf = String::from(first);
        let mut segs = vec![(0usize, start_line, line.len() - stripped.len())];
        let mut empty_continuation = false;
        while !is_end && i < n {
            let l = lines[i].as_str();
            let _ = dp.offer(l, i as u32 + 1);
            i += 1;
            if is_comment(l) {
                continue;
            }
            if l.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = trim_continuation(l, escape);
            is_end = end;
            segs.push((buf.len(), i as u32, 0));
            buf.push_str(part);
        }
        let end_line = i as u32;
        if empty_continuation {
            warnings.push(ParseWarning {
                message: format!("Empty continuation line found in: {buf}"),
                span: whole(end_line, end_line),
            });
        }
        let map = LineMap {
            segs,
            lines: &lines,
        };
        let mut node = node_from_line(&buf, 0, escape, &map, std::mem::take(&mut comments))
            .map_err(|e| Error::parse(e, whole(start_line, end_line)))?;
        let mut last_line = end_line;
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredoc::heredocs_from_line(&buf)
                .map_err(|e| Error::parse(e, whole(start_line, end_line)))?;
            for mut doc in docs {
                let mut terminated = false;
                let mut content = String::new();
                while i < n {
                    let rawl = raw[i].as_str();
                    i += 1;
                    let mut cand = trim_newline(rawl);
                    if doc.chomp {
                        cand = cand.trim_start_matches('\t');
                    }
                    if cand == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(rawl);
                }
                last_line = i as u32;
                if !terminated {
                    return Err(Error::parse(
                        "unterminated heredoc",
                        whole(start_line, last_line),
                    ));
                }
                doc.content = content;
                node.heredocs.push(doc);
            }
        }
        node.span = Span {
            start: node.keyword_span.start,
            end: Position {
                line: last_line,
                column: lines
                    .get(last_line as usize - 1)
                    .map_or(0, |l| l.chars().count() as u32 + 1),
            },
        };
        nodes.push(node);
    }
    if nodes.is_empty() {
        let l = (n as u32).max(1);
        return Err(Error::parse("file with no instructions", whole(l, l)));
    }
    Ok(Ast {
        directives: dp.directives,
        escape,
        nodes,
        warnings,
    })
}

/// Builds a node from (part of) a joined line; `base` is the offset of
/// `line` in the joined line.
fn node_from_line(
    line: &str,
    base: usize,
    escape: char,
    map: &LineMap,
    comments: Vec<String>,
) -> Result<Node, String> {
    node_from_line_at(line, base, escape, map, comments, 0)
}

/// ONBUILD may wrap ONBUILD in the raw parse tree (the instruction layer
/// rejects it); deeper than this is refused rather than risking the stack.
const MAX_NESTING: usize = 64;

fn node_from_line_at(
    line: &str,
    base: usize,
    escape: char,
    map: &LineMap,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, String> {
    if depth > MAX_NESTING {
        return Err(format!("ONBUILD nested more than {MAX_NESTING} levels"));
    }
    let sp = split::split_command(line, escape);
    let args = args::parse_args(&sp.keyword.0, &sp.args, escape)?;
    let nested = if args.sub_command {
        Some(Box::new(node_from_line_at(
            &sp.args,
            base + sp.args_offset,
            escape,
            map,
            Vec::new(),
            depth + 1,
        )?))
    } else {
        None
    };
    let ao = base + sp.args_offset;
    let keyword_span = map.span(base + sp.keyword.1, base + sp.keyword.2);
    Ok(Node {
        keyword: sp.keyword.0,
        keyword_span,
        flags: sp
            .flags
            .into_iter()
            .map(|(v, s, e)| Word {
                value: v,
                span: map.span(base + s, base + e),
            })
            .collect(),
        args: args
            .words
            .into_iter()
            .map(|(v, s, e)| Word {
                value: v,
                span: map.span(ao + s, ao + e),
            })
            .collect(),
        nested,
        json: args.json,
        heredocs: Vec::new(),
        original: line.to_string(),
        span: keyword_span,
        comments,
    })
}

#[cfg(test)]
mod tests;
