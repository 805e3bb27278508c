//! Heredoc words (`<<EOF`, `<<-EOF`, `3<<"EOF"`) in RUN, COPY and ADD
//! lines, found the way BuildKit finds them: split the line with the shell
//! lexer, then match each word against `^(\d*)<<(-?)\s*([^<]*)$`.

use crate::shell::{Lexer, NoEnv};

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed (`EOF`). For COPY/ADD, the name
    /// of the file created.
    pub name: String,
    /// The file descriptor for RUN (`3<<EOF`); 0 when not given.
    pub fd: u32,
    /// False when any part of the word was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body lines and terminator.
    pub chomp: bool,
    /// The body: every line up to the terminator, with line endings.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when `chomp`.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        chomp_tabs(&self.content)
    }
}

/// Removes leading tabs from every line.
pub fn chomp_tabs(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

fn re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Parses one word as a heredoc marker; `Ok(None)` if it is not one.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(re_space);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).map_err(|e| e.0)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).map_err(|e| e.0)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

/// All heredoc markers of a joined instruction line, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut out = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            out.push(h);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("3<<-'END'").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("END", false, true, 3)
        );
        let h = parse_heredoc("<<E\"O\"F").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("a<<EOF").unwrap().is_none());
        assert!(parse_heredoc("<<<EOF").unwrap().is_none());
        let all = heredocs_from_line("RUN cat <<A <<-\"B\" > x").unwrap();
        assert_eq!(
            all.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            vec!["A", "B"]
        );
        assert_eq!(heredocs_from_line("RUN cat << EOF").unwrap()[0].name, "EOF");
    }

    #[test]
    fn chomp() {
        assert_eq!(chomp_tabs("\t\ta\n\tb\nc\t\n"), "a\nb\nc\t\n");
    }
}
