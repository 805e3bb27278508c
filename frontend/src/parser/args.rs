//! Per-instruction argument parsing (BuildKit's `line_parsers.go`): which
//! instructions take JSON, whitespace lists, key/value pairs or one string.

use super::json::{self, JsonError};
use super::quote::go_quote;
use super::split::{Piece, parse_words, split_ws};

/// The argument nodes of one instruction, with byte ranges relative to the
/// argument string.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) words: Vec<Piece>,
    pub(crate) json: bool,
    /// ONBUILD: the rest, to be parsed as an instruction.
    pub(crate) sub_command: bool,
}

fn ws_delimited(rest: &str) -> Args {
    if rest.is_empty() {
        return Args::default();
    }
    Args {
        words: split_ws(rest, None),
        ..Args::default()
    }
}

fn one_string(rest: &str) -> Args {
    if rest.is_empty() {
        return Args::default();
    }
    Args {
        words: vec![(rest.to_string(), 0, rest.len())],
        ..Args::default()
    }
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

fn try_json(rest: &str) -> Result<Option<Args>, String> {
    match json::parse_string_array(rest) {
        Ok(words) => Ok(Some(Args {
            words,
            json: true,
            sub_command: false,
        })),
        Err(JsonError::NotStringArray) => Err(NOT_STRING_ARRAY.into()),
        Err(JsonError::NotJson) => Ok(None),
    }
}

fn maybe_json(rest: &str) -> Result<Args, String> {
    if rest.is_empty() {
        return Ok(Args::default());
    }
    Ok(try_json(rest)?.unwrap_or_else(|| one_string(rest)))
}

fn maybe_json_to_list(rest: &str) -> Result<Args, String> {
    Ok(try_json(rest)?.unwrap_or_else(|| ws_delimited(rest)))
}

fn name_val(rest: &str, key: &str, escape: char) -> Result<Args, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Args::default());
    }
    let mut out = Vec::new();
    if !words[0].0.contains('=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        let end = rest.len();
        out.push(parts[0].clone());
        out.push(parts[1].clone());
        out.push((String::new(), end, end));
        return Ok(Args {
            words: out,
            ..Args::default()
        });
    }
    for (w, s, e) in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        let ks = s + k.len();
        out.push((k.to_string(), s, ks.min(e)));
        out.push((v.to_string(), (ks + 1).min(e), e));
        out.push(("=".to_string(), ks.min(e), (ks + 1).min(e)));
    }
    Ok(Args {
        words: out,
        ..Args::default()
    })
}

fn health(rest: &str) -> Result<Args, String> {
    let b = rest.as_bytes();
    let space = |c: u8| matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xA0);
    let sep = b.iter().position(|c| space(*c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok(Args::default());
    }
    let next = b[sep..]
        .iter()
        .position(|c| !space(*c))
        .map_or(b.len(), |n| sep + n);
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let cmd_str = String::from_utf8_lossy(&b[next..]).into_owned();
    let cmd = maybe_json(&cmd_str)?;
    let mut words = vec![(typ, 0, sep)];
    words.extend(
        cmd.words
            .into_iter()
            .map(|(w, s, e)| (w, s + next, e + next)),
    );
    Ok(Args {
        words,
        json: cmd.json,
        sub_command: false,
    })
}

/// Parses the argument string of `keyword` (any case).
pub(crate) fn parse_args(keyword: &str, rest: &str, escape: char) -> Result<Args, String> {
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok(Args {
            words: parse_words(rest, escape),
            ..Args::default()
        }),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" => name_val(rest, "ENV", escape),
        "label" => name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(ws_delimited(rest)),
        "healthcheck" => health(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(one_string(rest)),
        "onbuild" => Ok(Args {
            sub_command: !rest.is_empty(),
            ..Args::default()
        }),
        _ => Ok(Args {
            words: vec![(String::new(), 0, rest.len())],
            ..Args::default()
        }),
    }
}
