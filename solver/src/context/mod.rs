//! The build context: `.dockerignore` files, BuildKit's pattern matcher, and
//! walking a context directory in place.
//!
//! The context is never copied: the hasher and the copy engine read it where
//! it lies through a [`ContextFilter`], which hides excluded paths exactly as
//! BuildKit's client would not have sent them.
//!
//! Invariants: patterns are matched against relative slash paths without a
//! leading `/`; matching follows moby/patternmatcher (see [`PatternMatcher`]),
//! wildcards in copy sources follow Go's `filepath.Match` ([`go_match`]).

mod filter;
mod gomatch;
pub mod gopath;
mod ignorefile;
mod pattern;
mod walk;

pub use filter::{ContextFilter, Verdict};
pub use gomatch::{BadPattern, contains_wildcards, go_match};
pub use ignorefile::{IgnoreFile, load_ignore_file, parse_ignore_file};
pub use pattern::{MatchInfo, Pattern, PatternError, PatternMatcher};
pub use walk::{WalkEntry, walk_context};
