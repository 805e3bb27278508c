//! `--flag` validation (BuildKit's `bflag.go`): each instruction declares
//! its flags; unknown, repeated or malformed flags are errors that point at
//! the flag.

use std::collections::HashMap;

use crate::parser::Word;
use crate::{Error, Result, Span};

/// How a flag takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--x`, `--x=true`, `--x=false`.
    Bool,
    /// `--x=value`, once.
    String,
    /// `--x=value`, repeatable.
    Strings,
}

/// The flags an instruction was given.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: HashMap<&'static str, Vec<(String, Span)>>,
}

impl Flags {
    /// Parses `given` against `spec`.
    pub(crate) fn parse(given: &[Word], spec: &[(&'static str, Kind)]) -> Result<Self> {
        let mut out = Flags::default();
        for w in given {
            let a = w.value.as_str();
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(Error::instruction(
                    format!("arg should start with -- : {a}"),
                    w.span,
                ));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag_name = format!("--{name}");
            let Some(&(sname, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                let mut msg = format!("unknown flag: {flag_name}");
                if let Some(s) = crate::lint::suggest(name, spec.iter().map(|(n, _)| *n)) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(Error::instruction(msg, w.span));
            };
            let entry = out.values.entry(sname).or_default();
            if !entry.is_empty() && kind != Kind::Strings {
                return Err(Error::instruction(
                    format!("duplicate flag specified: {flag_name}"),
                    w.span,
                ));
            }
            match kind {
                Kind::Bool => {
                    if value == Some("") {
                        return Err(Error::instruction(
                            format!("missing a value on flag: {flag_name}"),
                            w.span,
                        ));
                    }
                    let v = match value.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("true") => "true",
                        Some("false") => "false",
                        Some(_) => {
                            return Err(Error::instruction(
                                format!(
                                    "expecting boolean value for flag {flag_name}, not: {}",
                                    value.unwrap_or("")
                                ),
                                w.span,
                            ));
                        }
                    };
                    entry.push((v.to_string(), w.span));
                }
                Kind::String | Kind::Strings => {
                    let Some(v) = value else {
                        return Err(Error::instruction(
                            format!("missing a value on flag: {flag_name}"),
                            w.span,
                        ));
                    };
                    entry.push((v.to_string(), w.span));
                }
            }
        }
        Ok(out)
    }

    /// A string flag's value and the flag's span.
    pub(crate) fn string(&self, name: &str) -> Option<(String, Span)> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    /// A repeatable flag's values.
    pub(crate) fn strings(&self, name: &str) -> Vec<(String, Span)> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A bool flag: `None` when not given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|(v, _)| v == "true")
    }

    /// Names of the flags given.
    pub(crate) fn used(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.values.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Word {
        Word {
            value: s.into(),
            span: Span::on_line(1, 1, 2),
        }
    }

    const SPEC: &[(&str, Kind)] = &[
        ("link", Kind::Bool),
        ("from", Kind::String),
        ("exclude", Kind::Strings),
    ];

    #[test]
    fn valid_flags() {
        let f = Flags::parse(
            &[
                w("--link"),
                w("--from=a"),
                w("--exclude=x"),
                w("--exclude=y"),
            ],
            SPEC,
        )
        .unwrap();
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.string("from").unwrap().0, "a");
        assert_eq!(f.strings("exclude").len(), 2);
        let f = Flags::parse(&[w("--link=FALSE"), w("--from=")], SPEC).unwrap();
        assert_eq!(f.bool("link"), Some(false));
        assert_eq!(f.string("from").unwrap().0, "");
    }

    #[test]
    fn invalid_flags() {
        let e = |a: &[&str]| {
            Flags::parse(&a.iter().map(|s| w(s)).collect::<Vec<_>>(), SPEC)
                .unwrap_err()
                .message
        };
        assert_eq!(e(&["--bogus"]), "unknown flag: --bogus");
        assert_eq!(
            e(&["--form=x"]),
            "unknown flag: --form (did you mean from?)"
        );
        assert_eq!(
            e(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(e(&["--from"]), "missing a value on flag: --from");
        assert_eq!(e(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            e(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
    }
}
