//! Fuzzes .dockerignore parsing and matching, and Go's filepath.Match port:
//! any bytes must give patterns or an error, never a panic, and the
//! walk-style matcher must agree with the whole-path matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solver::context::{MatchInfo, PatternMatcher, go_match, parse_ignore_file};

fuzz_target!(|data: &[u8]| {
    let (ignore, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"a/b/c.txt"[..]),
    };
    let patterns = parse_ignore_file(ignore);
    for p in &patterns {
        let _ = go_match(p.as_bytes(), path);
    }
    if let Ok(pm) = PatternMatcher::new(&patterns) {
        let whole = pm.matches(path);
        // Walk the parents top-down like a directory walk would.
        let mut info = MatchInfo::default();
        let mut walked = false;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        if !path.is_empty() && !path.starts_with(b"/") && !path.ends_with(b"/") && !comps.iter().any(|c| c.is_empty() || *c == b"." || *c == b"..") {
            for i in 1..=comps.len() {
                let prefix = comps[..i].join(&b'/');
                let (m, next) = pm.matches_using_parent(&prefix, &info);
                walked = m;
                info = next;
            }
            assert_eq!(whole, walked, "walk and whole-path matching disagree on {:?}", String::from_utf8_lossy(path));
        }
    }
});
