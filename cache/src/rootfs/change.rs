//! `--change` instructions of `kiln import`, as `docker import` takes them.
//!
//! The supported subset is docker's: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`,
//! `LABEL`, `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. Values are
//! taken literally (no variable expansion), with Dockerfile quoting: JSON
//! arrays for the exec form, `"…"`/`'…'` and backslash escapes in words.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Applies one `--change` instruction to a config's `config` object.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidArgument(format!("invalid --change {change:?}: {why}"));
    let trimmed = change.trim();
    let (instr, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (trimmed, ""),
    };
    let instr = instr.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(bad(&format!("{instr} needs an argument")));
    }
    match instr.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let key = if instr == "CMD" { "Cmd" } else { "Entrypoint" };
            config.insert(key.into(), json!(exec_or_shell(rest)));
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or_else(|| bad("Env is not a list"))?;
            for (k, v) in pairs(rest, true).map_err(|e| bad(&e))? {
                let prefix = format!("{k}=");
                list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                list.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            let m = labels
                .as_object_mut()
                .ok_or_else(|| bad("Labels is not an object"))?;
            for (k, v) in pairs(rest, false).map_err(|e| bad(&e))? {
                m.insert(k, json!(v));
            }
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            let m = ports
                .as_object_mut()
                .ok_or_else(|| bad("ExposedPorts is not an object"))?;
            for p in words(rest).map_err(|e| bad(&e))? {
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let ok = !num.is_empty()
                    && num.split('-').all(|n| n.parse::<u16>().is_ok())
                    && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                if !ok {
                    return Err(bad(&format!("invalid port {p:?}")));
                }
                m.insert(format!("{num}/{}", proto.to_ascii_lowercase()), json!({}));
            }
        }
        "VOLUME" => {
            let vols = config.entry("Volumes").or_insert_with(|| json!({}));
            let m = vols
                .as_object_mut()
                .ok_or_else(|| bad("Volumes is not an object"))?;
            let list = match json_array(rest) {
                Some(l) => l,
                None => words(rest).map_err(|e| bad(&e))?,
            };
            for v in list {
                m.insert(v, json!({}));
            }
        }
        "ONBUILD" => {
            let ob = config.entry("OnBuild").or_insert_with(|| json!([]));
            ob.as_array_mut()
                .ok_or_else(|| bad("OnBuild is not a list"))?
                .push(json!(rest));
        }
        "USER" => {
            config.insert("User".into(), json!(rest));
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(rest));
        }
        other => {
            return Err(bad(&format!(
                "{other} is not supported (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)"
            )));
        }
    }
    Ok(())
}

/// A JSON array of strings, if `s` is one.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// The exec form if `s` is a JSON array, else the shell form.
fn exec_or_shell(s: &str) -> Vec<String> {
    json_array(s).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), s.into()])
}

/// Splits words with Dockerfile quoting.
fn words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `K=V K2="V 2"`; with `legacy`, also `K rest of line` (ENV's old form).
fn pairs(s: &str, legacy: bool) -> std::result::Result<Vec<(String, String)>, String> {
    let ws = words(s)?;
    if legacy && !ws.first().is_some_and(|w| w.contains('=')) {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .ok_or("ENV needs a value")?;
        let v = words(v.trim())?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("expected KEY=VALUE, got {w:?}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Value {
        let mut m = Map::new();
        for c in changes {
            apply_change(&mut m, c).unwrap();
        }
        Value::Object(m)
    }

    #[test]
    fn docker_import_changes() {
        let v = apply(&[
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /entry.sh --flag",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY some value",
            "ENV A=3",
            "EXPOSE 80 53/udp",
            "LABEL org.x=y 'k k'=v",
            "USER app:staff",
            "WORKDIR /srv",
            "VOLUME /data /logs",
            "ONBUILD RUN echo x",
            "STOPSIGNAL SIGTERM",
        ]);
        assert_eq!(v["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            v["Entrypoint"],
            json!(["/bin/sh", "-c", "/entry.sh --flag"])
        );
        assert_eq!(v["Env"], json!(["B=two words", "LEGACY=some value", "A=3"]));
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(v["Labels"], json!({"org.x": "y", "k k": "v"}));
        assert_eq!(v["User"], json!("app:staff"));
        assert_eq!(v["WorkingDir"], json!("/srv"));
        assert_eq!(v["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(v["OnBuild"], json!(["RUN echo x"]));
        assert_eq!(v["StopSignal"], json!("SIGTERM"));
    }

    #[test]
    fn bad_changes_are_named() {
        let mut m = Map::new();
        for (c, want) in [
            ("RUN echo", "not supported"),
            ("CMD", "needs an argument"),
            ("EXPOSE http", "invalid port"),
            ("LABEL novalue", "KEY=VALUE"),
            ("ENV A=\"x", "unterminated"),
        ] {
            let e = apply_change(&mut m, c).unwrap_err().to_string();
            assert!(e.contains(&format!("{c:?}")) && e.contains(want), "{e}");
        }
    }
}
