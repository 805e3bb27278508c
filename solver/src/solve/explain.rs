//! Why a step missed the cache (`kiln build --explain-cache`).
//!
//! Every step remembers the key it had in its last build (`last:<step>`,
//! see [`super::record::step_key`]), and every cache entry keeps what its
//! key was made of. On a miss the two are compared: a changed instruction
//! (which part: command, environment variable *names*, user, working
//! directory, mounts, flags), a changed input (a step before it produced
//! something else), or changed context files (which ones, when the source
//! was small enough to list them). Values of environment variables are
//! never shown: build arguments may hold tokens.

use std::collections::BTreeMap;

use serde_json::Value;

use super::record::{KeyParts, Record, SourceDigest};

/// At most this many file names per reason.
const MAX_NAMES: usize = 5;

/// A one-line reason why `now` missed, given the step's previous entry.
pub(crate) fn explain(prev: Option<&Record>, now: &KeyParts) -> String {
    let Some(prev) = prev else {
        return "no earlier build of this step in the cache".into();
    };
    let mut reasons = Vec::new();
    if prev.def != now.def {
        reasons.push(def_change(&prev.def, &now.def));
    }
    for (i, (a, b)) in prev.inputs.iter().zip(&now.inputs).enumerate() {
        if a != b {
            reasons.push(if i == 0 {
                "the step it builds on produced different files".to_string()
            } else {
                format!("input {i} (a stage or source it reads) changed")
            });
        }
    }
    if prev.inputs.len() != now.inputs.len() {
        reasons.push("it reads different inputs".into());
    }
    for s in &now.sources {
        match prev.sources.iter().find(|p| p.what == s.what) {
            Some(p) if p.digest == s.digest => {}
            Some(p) => reasons.push(source_change(p, s)),
            None => reasons.push(format!("new source {}", s.what)),
        }
    }
    if reasons.is_empty() {
        // Same ingredients, different key: an older kiln's entry, or the
        // entry was pruned.
        return "its earlier result is no longer in the cache (pruned)".into();
    }
    reasons.join("; ")
}

fn def_change(a: &Value, b: &Value) -> String {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return "the instruction changed".into();
    };
    let mut parts = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x == y {
            continue;
        }
        parts.push(match k.as_str() {
            "env" => env_change(x, y),
            "args" => "the command changed".into(),
            "actions" => "the instruction changed".into(),
            "cwd" => "the working directory changed".into(),
            "user" => "the user changed".into(),
            "mounts" => "its --mount options changed".into(),
            other => format!("{other} changed"),
        });
    }
    parts.join(", ")
}

fn env_change(a: Option<&Value>, b: Option<&Value>) -> String {
    let map = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(|e| {
                        let (k, v) = e.split_once('=').unwrap_or((e, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (map(a), map(b));
    let mut changed: Vec<&str> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    changed.extend(a.keys().filter(|k| !b.contains_key(*k)).map(String::as_str));
    changed.sort();
    changed.dedup();
    if changed.is_empty() {
        return "the order of its environment changed".into();
    }
    format!("environment (ENV/ARG) changed: {}", names(&changed))
}

fn names(v: &[&str]) -> String {
    let mut s = v
        .iter()
        .take(MAX_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if v.len() > MAX_NAMES {
        s.push_str(&format!(" and {} more", v.len() - MAX_NAMES));
    }
    s
}

fn source_change(a: &SourceDigest, b: &SourceDigest) -> String {
    if a.files.is_empty() || b.files.is_empty() {
        return format!("files of {} changed", a.what);
    }
    let old: BTreeMap<&str, &str> = a
        .files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = b
        .files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_str()))
        .collect();
    let changed: Vec<&str> = new
        .iter()
        .filter(|(p, d)| old.get(*p).is_some_and(|o| o != *d))
        .map(|(p, _)| *p)
        .collect();
    let added: Vec<&str> = new
        .keys()
        .filter(|p| !old.contains_key(*p))
        .copied()
        .collect();
    let removed: Vec<&str> = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .copied()
        .collect();
    let mut out = Vec::new();
    if !changed.is_empty() {
        out.push(format!("changed {}", names(&changed)));
    }
    if !added.is_empty() {
        out.push(format!("added {}", names(&added)));
    }
    if !removed.is_empty() {
        out.push(format!("removed {}", names(&removed)));
    }
    if out.is_empty() {
        return format!("file metadata of {} changed (mode, owner or type)", a.what);
    }
    format!("context files of {}: {}", a.what, out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(def: Value, inputs: &[&str], sources: Vec<SourceDigest>) -> Record {
        Record {
            v: super::super::record::KEY_VERSION,
            op: "exec".into(),
            name: "[1/2] RUN x".into(),
            def,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            sources,
            fs: Default::default(),
            layer: None,
            created: String::new(),
            duration_ms: 0,
        }
    }

    fn src(digest: &str, files: &[(&str, &str)]) -> SourceDigest {
        SourceDigest {
            what: "copy[0] /src".into(),
            digest: digest.into(),
            files: files
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn names_what_changed() {
        assert_eq!(
            explain(
                None,
                &KeyParts {
                    def: json!({}),
                    inputs: vec![],
                    sources: vec![],
                    epoch: None,
                }
            ),
            "no earlier build of this step in the cache"
        );
        let prev = rec(
            json!({"args": ["sh"], "env": ["A=1", "TOKEN=secret1"]}),
            &["base1"],
            vec![src("d1", &[("a", "1"), ("b", "2"), ("gone", "3")])],
        );
        let now = KeyParts {
            def: json!({"args": ["sh"], "env": ["A=1", "TOKEN=secret2", "B=x"]}),
            inputs: vec!["base2".into()],
            sources: vec![src("d2", &[("a", "1"), ("b", "9"), ("new", "4")])],
            epoch: None,
        };
        let why = explain(Some(&prev), &now);
        assert_eq!(
            why,
            "environment (ENV/ARG) changed: B, TOKEN; the step it builds on produced different files; \
             context files of copy[0] /src: changed b, added new, removed gone"
        );
        assert!(!why.contains("secret"), "values are never shown");
    }
}
