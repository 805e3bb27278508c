//! Shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`: `*`, `?` and
//! backslash escapes, matched with the leftmost-first backtracking order of
//! the Go regular expressions BuildKit compiles them to (`*` is `.*` or
//! `.*?`, `?` is `.`; neither matches a newline).

use std::collections::HashMap;

/// Most stars a pattern may hold; more is rejected rather than risking
/// pathological matching time on hostile input.
const MAX_STARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    /// Compiles `pattern`; `greedy` picks the longest rather than the
    /// shortest match at a position.
    pub(super) fn compile(pattern: &str, greedy: bool) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        let mut stars = 0;
        while let Some(c) = it.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        stars += 1;
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '\\' => {
                    if matches!(it.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match it.next() {
                        Some(e @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(e)),
                        Some(e) => return Err(format!("invalid escape '\\{e}'")),
                        None => return Err("invalid escape '\\'".into()),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        if stars > MAX_STARS {
            return Err(format!("more than {MAX_STARS} wildcards"));
        }
        Ok(Pattern { toks, greedy })
    }

    /// End of the first match (in backtracking order) starting at `start`.
    fn match_at(&self, s: &[char], start: usize) -> Option<usize> {
        let mut memo = HashMap::new();
        self.m(0, start, s, &mut memo)
    }

    fn m(
        &self,
        pi: usize,
        si: usize,
        s: &[char],
        memo: &mut HashMap<(usize, usize), Option<usize>>,
    ) -> Option<usize> {
        if let Some(r) = memo.get(&(pi, si)) {
            return *r;
        }
        let mut p = pi;
        let mut i = si;
        // Fixed-width tokens are matched in a loop; only stars recurse.
        let r = loop {
            match self.toks.get(p) {
                None => break Some(i),
                Some(Tok::Lit(c)) => {
                    if s.get(i) == Some(c) {
                        p += 1;
                        i += 1;
                    } else {
                        break None;
                    }
                }
                Some(Tok::Any) => {
                    if s.get(i).is_some_and(|c| *c != '\n') {
                        p += 1;
                        i += 1;
                    } else {
                        break None;
                    }
                }
                Some(Tok::Star) => {
                    // The star can cover s[i..j) for j up to the next newline.
                    let max = s[i..]
                        .iter()
                        .position(|c| *c == '\n')
                        .map_or(s.len(), |n| i + n);
                    let found = if self.greedy {
                        (i..=max).rev().find_map(|j| self.m(p + 1, j, s, memo))
                    } else {
                        (i..=max).find_map(|j| self.m(p + 1, j, s, memo))
                    };
                    break found;
                }
            }
        };
        memo.insert((pi, si), r);
        r
    }

    /// First match anywhere: (start, end), leftmost first.
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=s.len()).find_map(|st| self.match_at(s, st).map(|e| (st, e)))
    }
}

/// `${v#p}` / `${v##p}`: removes the shortest (longest if `greedy`)
/// matching prefix.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::compile(pattern, greedy)?;
    let s: Vec<char> = value.chars().collect();
    Ok(match p.match_at(&s, 0) {
        Some(end) => s[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`: removes the shortest (longest) matching suffix,
/// by matching the reversed pattern against the reversed value.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rev_pat = reverse_pattern(pattern);
    let rev_val: String = value.chars().rev().collect();
    let r = trim_prefix(&rev_pat, &rev_val, greedy)?;
    Ok(r.chars().rev().collect())
}

fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let n = p.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let out_idx = n - 1 - i;
        if p[i] == '\\' && i != n - 1 {
            out[out_idx - 1] = p[i];
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Go's `Regexp.Expand` rules for a replacement without capture groups:
/// `$$` is `$`, `$name`/`${name}` are empty, any other `$` is literal.
fn expand_replacement(r: &str) -> String {
    let c: Vec<char> = r.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '$' || i + 1 >= c.len() {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let nx = c[i + 1];
        if nx == '$' {
            out.push('$');
            i += 2;
        } else if nx == '{' {
            match c[i + 2..].iter().position(|x| *x == '}') {
                Some(n)
                    if n > 0
                        && c[i + 2..i + 2 + n]
                            .iter()
                            .all(|x| x.is_alphanumeric() || *x == '_') =>
                {
                    i += n + 3
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        } else if nx.is_alphanumeric() || nx == '_' {
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else {
            out.push('$');
            i += 1;
        }
    }
    out
}

/// `${v/p/r}` (first match) and `${v//p/r}` (every match), with Go's
/// `ReplaceAllString` handling of empty matches.
pub(super) fn replace(p: &Pattern, value: &str, replacement: &str, all: bool) -> String {
    let s: Vec<char> = value.chars().collect();
    if !all {
        return match p.find(&s, 0) {
            Some((a, b)) => {
                let mut out: String = s[..a].iter().collect();
                out.push_str(replacement);
                out.extend(&s[b..]);
                out
            }
            None => value.to_string(),
        };
    }
    let repl = expand_replacement(replacement);
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    let mut first = true;
    while search <= s.len() {
        let Some((a, b)) = p.find(&s, search) else {
            break;
        };
        out.extend(&s[last_end..a]);
        if b > last_end || a == 0 && first {
            out.push_str(&repl);
        }
        first = false;
        last_end = b;
        search = if search + 1 > b { search + 1 } else { b };
    }
    out.extend(&s[last_end.min(s.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix() {
        assert_eq!(trim_prefix("a*", "abcabc", false).unwrap(), "bcabc");
        assert_eq!(trim_prefix("a*c", "abcabc", true).unwrap(), "");
        assert_eq!(trim_prefix("a*c", "abcabc", false).unwrap(), "abc");
        assert_eq!(trim_suffix("*c", "abcabc", false).unwrap(), "abcab");
        assert_eq!(trim_suffix("b*", "abcabc", true).unwrap(), "a");
        assert_eq!(trim_suffix("b*", "abcabc", false).unwrap(), "abca");
        assert_eq!(trim_suffix("\\*", "a*", false).unwrap(), "a");
        assert!(Pattern::compile("\\x", true).is_err());
    }

    #[test]
    fn replace_all_handles_empty_matches_like_go() {
        let p = Pattern::compile("", true).unwrap();
        assert_eq!(replace(&p, "ab", "-", true), "-a-b-");
        let p = Pattern::compile("b*", true).unwrap();
        assert_eq!(replace(&p, "abc", "-", true), "a-");
        let p = Pattern::compile("o", true).unwrap();
        assert_eq!(replace(&p, "foo", "0", true), "f00");
        assert_eq!(replace(&p, "foo", "$$", true), "f$$");
    }
}
