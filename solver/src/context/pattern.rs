//! BuildKit's `.dockerignore` pattern matcher (moby/patternmatcher), ported.
//!
//! Each pattern is cleaned with Go's `filepath.Clean`, may start with `!` (an
//! exception), and is compiled the way moby does it: plain text compares
//! exactly, a trailing `**` is a prefix test, a leading `**` a suffix test, and
//! anything else becomes an anchored regular expression (`*` → `[^/]*`,
//! `?` → `[^/]`, `**/` → `(.*/)?`, `[...]` passed through, `\x` escapes).
//! A path matches a pattern when the path **or one of its parent
//! directories** does; patterns apply in order and the last one that matches
//! decides, so `!` re-includes.

use super::gomatch::{BadPattern, go_match};
use super::gopath;

/// An invalid pattern, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// `filepath.Match` rejects the pattern (e.g. an unclosed `[`).
    #[error("invalid pattern {pattern:?}: {source}")]
    Syntax {
        /// The pattern as cleaned.
        pattern: String,
        /// Why.
        source: BadPattern,
    },
    /// The translated regular expression does not compile.
    #[error("invalid pattern {pattern:?}: {reason}")]
    Regex {
        /// The pattern as cleaned.
        pattern: String,
        /// The regex engine's complaint.
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(regex::Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The pattern after cleaning, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether the slash path `path` itself (not its parents) matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        let pat = self.cleaned.as_bytes();
        match &self.kind {
            Kind::Exact => path == pat,
            Kind::Prefix => path.starts_with(&pat[..pat.len() - 2]),
            Kind::Suffix => {
                let suffix = &pat[2..];
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            Kind::Regex(re) => match std::str::from_utf8(path) {
                Ok(s) => re.is_match(s),
                Err(_) => re.is_match(&String::from_utf8_lossy(path)),
            },
        }
    }

    fn compile(cleaned: &str) -> Result<Kind, String> {
        const ESCAPE: &str = ".+()|{}$";
        let chars: Vec<char> = cleaned.chars().collect();
        let mut re = String::from("^");
        let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regex
        let mut idx = 0;
        let mut iteration = 0;
        while idx < chars.len() {
            let ch = chars[idx];
            idx += 1;
            if ch == '*' {
                if chars.get(idx) == Some(&'*') {
                    idx += 1;
                    if chars.get(idx) == Some(&'/') {
                        idx += 1;
                    }
                    if idx == chars.len() {
                        if kind == 0 {
                            kind = 1;
                        } else {
                            re.push_str(".*");
                            kind = 3;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = 3;
                    }
                    if iteration == 0 {
                        kind = 2;
                    }
                } else {
                    re.push_str("[^/]*");
                    kind = 3;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                kind = 3;
            } else if ESCAPE.contains(ch) {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if idx < chars.len() {
                    re.push('\\');
                    re.push(chars[idx]);
                    idx += 1;
                    kind = 3;
                } else {
                    re.push('\\');
                }
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                kind = 3;
            } else {
                re.push(ch);
            }
            iteration += 1;
        }
        Ok(match kind {
            0 => Kind::Exact,
            1 => Kind::Prefix,
            2 => Kind::Suffix,
            _ => {
                re.push('$');
                Kind::Regex(regex::Regex::new(&re).map_err(|e| e.to_string())?)
            }
        })
    }
}

/// Per-pattern results for a directory, handed to its children so a walk does
/// not re-test parents (moby's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns; the last matching one decides.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles patterns; blank ones are skipped, each is trimmed and cleaned.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut out = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = gopath::clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError::LoneExclamation);
                }
                p = rest.to_string();
                exclusion = true;
                out.exclusions = true;
            }
            go_match(p.as_bytes(), b".").map_err(|source| PatternError::Syntax {
                pattern: p.clone(),
                source,
            })?;
            let kind = Pattern::compile(&p).map_err(|reason| PatternError::Regex {
                pattern: p.clone(),
                reason,
            })?;
            out.patterns.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(out)
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether the relative slash path `file` is matched, taking its parent
    /// directories into account (moby's `MatchesOrParentMatches`).
    pub fn matches(&self, file: &[u8]) -> bool {
        let parents = parent_prefixes(file);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(file);
            if !m {
                m = parents.iter().any(|p| pattern.matches(p));
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Like [`matches`](Self::matches), reusing the parent directory's
    /// results (moby's `MatchesUsingParentResults`). Pass
    /// `MatchInfo::default()` when the parent is unknown.
    pub fn matches_using_parent(&self, file: &[u8], parent: &MatchInfo) -> (bool, MatchInfo) {
        let parent_matched = &parent.parent_matched;
        let have_parent = parent_matched.len() == self.patterns.len() && !parent_matched.is_empty();
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut parents: Option<Vec<Vec<u8>>> = None;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = have_parent && parent_matched[i];
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(file);
                if !m && !have_parent {
                    let ps = parents.get_or_insert_with(|| parent_prefixes(file));
                    m = ps.iter().any(|p| pattern.matches(p));
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }
}

/// The parent directories of a relative slash path, shortest first: the
/// prefixes of Go's `strings.Split(filepath.Dir(file), "/")`.
fn parent_prefixes(file: &[u8]) -> Vec<Vec<u8>> {
    let dir_part = match file.iter().rposition(|&c| c == b'/') {
        Some(i) => &file[..=i],
        None => return Vec::new(),
    };
    let dir = gopath::clean_bytes(dir_part);
    if dir == b"." {
        return Vec::new();
    }
    let parts: Vec<&[u8]> = dir.split(|&c| c == b'/').collect();
    (1..=parts.len()).map(|k| parts[..k].join(&b'/')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(pattern: &str, text: &str) -> bool {
        PatternMatcher::new(&[pattern])
            .expect(pattern)
            .matches(text.as_bytes())
    }

    /// Walks parents top-down with `matches_using_parent`, like a directory walk.
    fn walked(pm: &PatternMatcher, text: &str) -> bool {
        let mut info = MatchInfo::default();
        for p in parent_prefixes(text.as_bytes()) {
            info = pm.matches_using_parent(&p, &info).1;
        }
        pm.matches_using_parent(text.as_bytes(), &info).0
    }

    #[test]
    fn single_patterns_like_moby() {
        // (pattern, text, matches): behaviour of moby/patternmatcher's TestMatches.
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            // Parent directories: a pattern naming a directory excludes what is under it.
            ("docs", "docs/README.md", true),
            ("docs/", "docs/sub/x", true),
            ("*.md", "a/b.md", false),
            ("*", "a/b/c", true),
            // The suffix quirk: a leading ** followed by plain text is a string suffix test.
            ("**foo", "barfoo", true),
        ];
        for &(p, t, want) in cases {
            assert_eq!(one(p, t), want, "pattern {p:?} text {t:?}");
            let pm = PatternMatcher::new(&[p]).unwrap();
            assert_eq!(walked(&pm, t), want, "walked: pattern {p:?} text {t:?}");
            assert_eq!(
                pm.matches_using_parent(t.as_bytes(), &MatchInfo::default())
                    .0,
                want,
                "no context: {p:?} {t:?}"
            );
        }
    }

    #[test]
    fn several_patterns_last_match_wins() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/other.md", true),
            (&["*", "!keep*"], "keep.txt", false),
            (&["*", "!keep*", "keep.secret"], "keep.secret", true),
        ];
        for &(ps, t, want) in cases {
            let pm = PatternMatcher::new(ps).unwrap();
            assert_eq!(pm.matches(t.as_bytes()), want, "{ps:?} {t:?}");
            assert_eq!(walked(&pm, t), want, "walked {ps:?} {t:?}");
        }
    }

    #[test]
    fn cleaning_and_errors() {
        let pm = PatternMatcher::new(&["docs", "config", "", "  !docs/README.md  "]).unwrap();
        assert_eq!(pm.patterns().len(), 3);
        assert!(pm.exclusions());
        assert_eq!(pm.patterns()[2].as_str(), "docs/README.md");
        assert!(pm.patterns()[2].is_exclusion());
        assert_eq!(
            PatternMatcher::new(&["./a/../b/"]).unwrap().patterns()[0].as_str(),
            "b"
        );
        assert_eq!(
            PatternMatcher::new(&["!"]).unwrap_err(),
            PatternError::LoneExclamation
        );
        assert!(matches!(
            PatternMatcher::new(&["["]).unwrap_err(),
            PatternError::Syntax { .. }
        ));
        assert!(matches!(
            PatternMatcher::new(&["a/[b"]).unwrap_err(),
            PatternError::Syntax { .. }
        ));
        assert!(
            !PatternMatcher::new::<&str>(&[])
                .unwrap()
                .matches(b"any/path")
        );
    }

    #[test]
    fn non_utf8_paths_do_not_panic() {
        let pm = PatternMatcher::new(&["a?c", "x*"]).unwrap();
        assert!(pm.matches(b"a\xffc"));
        assert!(pm.matches(b"x\xfe/y"));
    }
}
