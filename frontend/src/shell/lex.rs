//! The lexer proper. A port of the behaviour of BuildKit's `shell.Lex`,
//! including its quirks (an unset variable expands to nothing, `${v:#p}` is
//! rejected, `<<` swallows the spaces after it when splitting words).

use std::collections::BTreeSet;

use super::Env;
use super::pattern::{self, Pattern};

/// An expansion error (unterminated quote, bad substitution, `${v?msg}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LexError(pub String);

/// Lexer settings; the defaults are what instruction expansion uses.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character (the Dockerfile's escape directive).
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave unset variables as written (`$x`, `${x:-y}`) instead of
    /// expanding them to nothing.
    pub skip_unset_env: bool,
}

/// The result of processing one word with match tracking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The expanded word.
    pub result: String,
    /// The expansion split into words.
    pub words: Vec<String>,
    /// Variables that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Variables that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// A lexer with the given escape character and default settings.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands `word` into one string (quotes removed).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, LexError> {
        Ok(self.process(word, env)?.result)
    }

    /// Expands `word` and splits the result into words.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, LexError> {
        Ok(self.process(word, env)?.words)
    }

    /// Expands `word`, reporting which variables were used.
    pub fn process(&self, word: &str, env: &dyn Env) -> Result<Processed, LexError> {
        let mut st = State {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        };
        let (result, words) = st
            .process_stop_on(None, self.raw_escapes)
            .map_err(|e| LexError(format!("failed to process {word:?}: {}", e.0)))?;
        Ok(Processed {
            result,
            words,
            matched: st.matched,
            unmatched: st.unmatched,
        })
    }
}

struct State<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    depth: usize,
}

/// Deepest `${...${...}}` nesting accepted (a bound on recursion).
const MAX_DEPTH: usize = 200;

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, LexError> {
    Err(LexError(msg.into()))
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), LexError> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), LexError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if !self.lex.skip_process_quotes => Some(self.process_single_quote()?),
                '"' if !self.lex.skip_process_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, LexError> {
        let mut result = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, LexError> {
        let mut result = String::new();
        let q = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, LexError> {
        if self.depth >= MAX_DEPTH {
            return err(format!("substitutions nested deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        let r = self.process_dollar_inner();
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> Result<String, LexError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let mut chs: String = ch.map(String::from).unwrap_or_else(|| "\u{fffd}".into());
        match ch {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut ch = ch;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{fffd}'));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '}'");
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                match ch {
                    Some('-') => Ok(if !set || (null_is_unset && value.is_empty()) {
                        word
                    } else {
                        value
                    }),
                    Some('+') => Ok(if !set || (null_is_unset && value.is_empty()) {
                        String::new()
                    } else {
                        word
                    }),
                    Some('?') => {
                        if !set {
                            let m = if word.is_empty() {
                                "is not allowed to be unset".into()
                            } else {
                                word
                            };
                            return err(format!("{name}: {m}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let m = if word.is_empty() {
                                "is not allowed to be empty".into()
                            } else {
                                word
                            };
                            return err(format!("{name}: {m}"));
                        }
                        Ok(value)
                    }
                    Some(c @ ('%' | '#')) => {
                        let (greedy, pat) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        if c == '%' {
                            pattern::trim_suffix(&pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(&pat, &value, greedy)
                        }
                        .map_err(|e| {
                            LexError(format!("invalid pattern ({pat}) in substitution: {e}"))
                        })
                    }
                    _ => err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pat = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '/' in ${}");
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '}'");
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pat}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let compiled = Pattern::compile(&pat, true).map_err(|e| {
                    LexError(format!("invalid pattern ({pat}) in substitution: {e}"))
                })?;
                Ok(pattern::replace(
                    &compiled,
                    &value,
                    &replacement,
                    replace_all,
                ))
            }
            _ => err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut result = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            result.push(c);
            self.next();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::EnvList;

    fn env() -> EnvList {
        let mut e = EnvList::new();
        e.set("a", "hello");
        e.set("empty", "");
        e.set("path", "/usr/local/bin/app.tar.gz");
        e.set("sp", "a b  c");
        e
    }

    fn w(s: &str) -> String {
        Lexer::new('\\').process_word(s, &env()).unwrap()
    }

    fn e(s: &str) -> String {
        Lexer::new('\\').process_word(s, &env()).unwrap_err().0
    }

    #[test]
    fn simple_and_braced() {
        assert_eq!(w("$a"), "hello");
        assert_eq!(w("${a}x"), "hellox");
        assert_eq!(w("$nope-x"), "-x");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$-"), "");
        assert_eq!(w("$1x"), "x");
        assert_eq!(w("pre${a}post"), "prehellopost");
    }

    #[test]
    fn defaults_and_alternates() {
        assert_eq!(w("${nope:-def}"), "def");
        assert_eq!(w("${empty:-def}"), "def");
        assert_eq!(w("${empty-def}"), "");
        assert_eq!(w("${nope-def}"), "def");
        assert_eq!(w("${a:+alt}"), "alt");
        assert_eq!(w("${empty:+alt}"), "");
        assert_eq!(w("${empty+alt}"), "alt");
        assert_eq!(w("${nope+alt}"), "");
        assert_eq!(w("${nope:-$a}"), "hello");
        assert_eq!(w("${nope:-${a}}"), "hello");
    }

    #[test]
    fn required() {
        assert_eq!(
            e("${nope?}"),
            "failed to process \"${nope?}\": nope: is not allowed to be unset"
        );
        assert_eq!(
            e("${empty:?must}"),
            "failed to process \"${empty:?must}\": empty: must"
        );
        assert_eq!(w("${a?x}"), "hello");
    }

    #[test]
    fn prefix_suffix_removal() {
        assert_eq!(w("${path#*/}"), "usr/local/bin/app.tar.gz");
        assert_eq!(w("${path##*/}"), "app.tar.gz");
        assert_eq!(w("${path%.*}"), "/usr/local/bin/app.tar");
        assert_eq!(w("${path%%.*}"), "/usr/local/bin/app");
        assert_eq!(w("${a#h?l}"), "lo");
        assert_eq!(w("${a#x}"), "hello");
        assert!(e("${a:#x}").contains("unsupported modifier (:#)"));
    }

    #[test]
    fn replacement() {
        assert_eq!(w("${a/l/L}"), "heLlo");
        assert_eq!(w("${a//l/L}"), "heLLo");
        assert_eq!(w("${path/\\//:}"), ":usr/local/bin/app.tar.gz");
        assert_eq!(w("${a/*/x}"), "x");
        assert_eq!(w("${nope/a/b}"), "");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$a'"), "$a");
        assert_eq!(w("\"$a\""), "hello");
        assert_eq!(w("\\$a"), "$a");
        assert_eq!(w("\"\\$a\""), "$a");
        assert_eq!(w("\"a\\b\""), "a\\b");
        assert_eq!(w("a\\ b"), "a b");
        assert_eq!(w("\"it's\""), "it's");
        assert!(e("'open").contains("single-quote"));
        assert!(e("\"open").contains("double-quote"));
        let tick = Lexer::new('`');
        assert_eq!(tick.process_word("a`$b\\c", &env()).unwrap(), "a$b\\c");
    }

    #[test]
    fn bad_substitutions() {
        assert!(e("${}").contains("bad substitution"));
        assert!(e("${:x}").contains("bad substitution"));
        assert!(e("${a").contains("unsupported modifier"));
        assert!(e("${a:-x").contains("missing '}'"));
        assert!(e("${a*}").contains("unsupported modifier (*)"));
    }

    #[test]
    fn words_split_only_on_expansion_results_outside_quotes() {
        let l = Lexer::new('\\');
        assert_eq!(
            l.process_words("x $sp \"$sp\"", &env()).unwrap(),
            vec!["x", "a", "b", "c", "a b  c"]
        );
        assert_eq!(
            l.process_words("a\\ b c", &env()).unwrap(),
            vec!["a b", "c"]
        );
        assert_eq!(
            l.process_words("cat << EOF", &env()).unwrap(),
            vec!["cat", "<< EOF"]
        );
    }

    #[test]
    fn match_tracking_and_skip_unset() {
        let l = Lexer::new('\\');
        let p = l.process("$a ${nope:-x}", &env()).unwrap();
        assert!(p.matched.contains("a"));
        assert!(p.unmatched.contains("nope"));
        let mut skip = Lexer::new('\\');
        skip.skip_unset_env = true;
        assert_eq!(
            skip.process_word("$nope ${nope} ${nope:-d} $a", &env())
                .unwrap(),
            "$nope ${nope} ${nope:-d} hello"
        );
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::shell::EnvList;

    #[test]
    fn deep_substitutions_are_refused() {
        let word = format!("{}x{}", "${a:-".repeat(100_000), "}".repeat(100_000));
        let e = Lexer::new('\\')
            .process_word(&word, &EnvList::new())
            .unwrap_err();
        assert!(e.0.contains("nested deeper"), "{}", e.0);
        let word = format!("{}x{}", "${a:-".repeat(50), "}".repeat(50));
        assert_eq!(
            Lexer::new('\\')
                .process_word(&word, &EnvList::new())
                .unwrap(),
            "x"
        );
    }
}
