//! Parser directives (`# syntax=`, `# escape=`, `# check=`): only at the
//! top of the file, each at most once; the first line that is not one ends
//! them for good.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::recognize;
use nom::sequence::pair;

/// One directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line.
    pub line: u32,
}

/// The directives of a Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` (recorded, not acted on: kiln is its own frontend).
    pub syntax: Option<Directive>,
    /// `# escape=`.
    pub escape: Option<Directive>,
    /// `# check=`.
    pub check: Option<Directive>,
}

/// Go RE2's `\s`: `[\t\n\f\r ]`.
fn re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

fn name_eq(i: &str) -> IResult<&str, &str> {
    let (i, name) = recognize(pair(
        satisfy(|c: char| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(i)?;
    let (i, _) = take_while(re_space).parse(i)?;
    let (i, _) = char('=').parse(i)?;
    Ok((i, name))
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` with Go's
/// leftmost-first semantics, returning (name, value).
pub(crate) fn match_directive(text: &str) -> Option<(String, String)> {
    let (rest, name) = name_eq(text).ok()?;
    if rest.contains('\n') {
        return None;
    }
    let trimmed_start: IResult<&str, &str> = take_while1(re_space).parse(rest);
    let after_ws = trimmed_start.map(|(r, _)| r).unwrap_or(rest);
    let value = after_ws.trim_end_matches(re_space);
    if !value.is_empty() {
        return Some((name.to_string(), value.to_string()));
    }
    // Only whitespace after '=': the lazy group takes the last of it.
    let last = rest.chars().last()?;
    Some((name.to_string(), last.to_string()))
}

/// Feeds lines to the directive parser until it stops.
#[derive(Debug)]
pub(crate) struct DirectiveParser {
    pub(crate) done: bool,
    pub(crate) directives: Directives,
}

impl DirectiveParser {
    pub(crate) fn new() -> Self {
        DirectiveParser {
            done: false,
            directives: Directives::default(),
        }
    }

    /// Offers a line (newline and, for first lines, leading whitespace
    /// already removed). Returns the directive it was, if any; an error for
    /// a repeated directive or a bad escape value.
    pub(crate) fn offer(&mut self, line: &str, line_no: u32) -> Result<Option<Directive>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let Some((name, value)) = match_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        let slot = match name.as_str() {
            "syntax" => &mut self.directives.syntax,
            "escape" => &mut self.directives.escape,
            "check" => &mut self.directives.check,
            _ => {
                self.done = true;
                return Ok(None);
            }
        };
        if slot.is_some() {
            return Err(format!("only one {name} parser directive can be used"));
        }
        if name == "escape" && value != "`" && value != "\\" {
            return Err(format!(
                "invalid escape token '{value}' does not match ` or \\"
            ));
        }
        let d = Directive {
            name,
            value,
            line: line_no,
        };
        *slot = Some(d.clone());
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_regex() {
        assert_eq!(
            match_directive("escape=`"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            match_directive("escape = ` "),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            match_directive("syntax=docker/dockerfile:1 x"),
            Some(("syntax".into(), "docker/dockerfile:1 x".into()))
        );
        assert_eq!(
            match_directive("escape=  "),
            Some(("escape".into(), " ".into()))
        );
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("1x=y"), None);
        assert_eq!(match_directive("esc ape=y"), None);
    }

    #[test]
    fn placement_and_repeats() {
        let mut p = DirectiveParser::new();
        assert!(
            p.offer("# syntax=docker/dockerfile:1", 1)
                .unwrap()
                .is_some()
        );
        assert!(p.offer("#escape=`", 2).unwrap().is_some());
        assert!(p.offer("# SYNTAX=again", 3).is_err());
        let mut p = DirectiveParser::new();
        assert!(p.offer("# a comment", 1).unwrap().is_none());
        assert!(p.offer("# escape=`", 2).unwrap().is_none());
        assert!(p.directives.escape.is_none());
        let mut p = DirectiveParser::new();
        assert!(p.offer("# escape=x", 1).is_err());
    }
}
