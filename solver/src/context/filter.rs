//! Applying `.dockerignore` patterns while walking a context in place.
//!
//! Mirrors fsutil's filter: an excluded directory is skipped whole unless an
//! exception pattern could match something inside it; when exceptions contain
//! wildcards we must look inside. An excluded directory that is entered shows
//! up only if something under it is included.

use super::pattern::{MatchInfo, PatternError, PatternMatcher};

/// What the filter says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The path is part of the context.
    Include,
    /// The path is excluded; for a directory, its children must still be
    /// checked because an exception could re-include one of them.
    Exclude,
    /// An excluded directory with nothing inside that could be re-included.
    SkipDir,
}

/// The compiled exclude patterns of a build context.
#[derive(Debug, Clone, Default)]
pub struct ContextFilter {
    matcher: PatternMatcher,
    only_prefix_exceptions: bool,
}

impl ContextFilter {
    /// Compiles `.dockerignore` patterns (as returned by
    /// [`parse_ignore_file`](super::parse_ignore_file)).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let matcher = PatternMatcher::new(patterns)?;
        let only_prefix_exceptions = !matcher
            .patterns()
            .iter()
            .any(|p| p.is_exclusion() && has_pattern_chars(without_trailing_glob(p.as_str())));
        Ok(ContextFilter {
            matcher,
            only_prefix_exceptions,
        })
    }

    /// A filter that excludes nothing.
    pub fn none() -> Self {
        ContextFilter::default()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// The underlying matcher.
    pub fn matcher(&self) -> &PatternMatcher {
        &self.matcher
    }

    /// Judges the relative slash path `rel` given its parent directory's
    /// [`MatchInfo`]; returns the info to hand to its children.
    pub fn check(&self, rel: &[u8], is_dir: bool, parent: &MatchInfo) -> (Verdict, MatchInfo) {
        if self.matcher.is_empty() {
            return (Verdict::Include, MatchInfo::default());
        }
        let (excluded, info) = self.matcher.matches_using_parent(rel, parent);
        if !excluded {
            return (Verdict::Include, info);
        }
        if is_dir && self.only_prefix_exceptions {
            if !self.matcher.exclusions() {
                return (Verdict::SkipDir, info);
            }
            let mut dir_slash = rel.to_vec();
            dir_slash.push(b'/');
            let could_match_inside = self.matcher.patterns().iter().any(|p| {
                p.is_exclusion() && {
                    let mut s = without_trailing_glob(p.as_str()).as_bytes().to_vec();
                    s.push(b'/');
                    s.starts_with(&dir_slash)
                }
            });
            if !could_match_inside {
                return (Verdict::SkipDir, info);
            }
        }
        (Verdict::Exclude, info)
    }

    /// Whether `rel` (with all its parents) is excluded, without walking.
    pub fn is_excluded(&self, rel: &[u8]) -> bool {
        self.matcher.matches(rel)
    }
}

fn without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

fn has_pattern_chars(p: &str) -> bool {
    p.contains(['*', '[', ']', '?', '^', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(f: &ContextFilter, rel: &str, dir: bool) -> Verdict {
        f.check(rel.as_bytes(), dir, &MatchInfo::default()).0
    }

    #[test]
    fn excluded_dir_skipped_unless_exception_inside() {
        let f = ContextFilter::new(&["node_modules", "build", "!build/keep"]).unwrap();
        assert_eq!(verdict(&f, "node_modules", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "build", true), Verdict::Exclude);
        assert_eq!(verdict(&f, "build/keep", false), Verdict::Include);
        assert_eq!(verdict(&f, "build/other", false), Verdict::Exclude);
        assert_eq!(verdict(&f, "src", true), Verdict::Include);
    }

    #[test]
    fn wildcard_exceptions_force_a_look_inside() {
        let f = ContextFilter::new(&["vendor", "!**/*.go"]).unwrap();
        assert_eq!(verdict(&f, "vendor", true), Verdict::Exclude);
        assert_eq!(verdict(&f, "vendor/x/a.go", false), Verdict::Include);
        let f = ContextFilter::new(&["vendor"]).unwrap();
        assert_eq!(verdict(&f, "vendor", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "vendor", false), Verdict::Exclude);
    }

    #[test]
    fn empty_filter_includes_everything() {
        let f = ContextFilter::none();
        assert!(f.is_empty());
        assert_eq!(verdict(&f, "anything", true), Verdict::Include);
        assert!(!f.is_excluded(b"x"));
    }
}
