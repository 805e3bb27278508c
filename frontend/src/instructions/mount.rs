//! `RUN --mount=type=...,key=value,...` (BuildKit's
//! `commands_runmount.go`). The value is CSV; keys are case-insensitive.
//! Parsing happens twice, as upstream: once when the instruction is read
//! (only `from` is checked, because it must not use variables) and once at
//! compile time with every value expanded.

use crate::lint::parse_go_bool;

/// `type=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Bind a directory of the context, a stage or an image (read-only by
    /// default).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A tmpfs.
    Tmpfs,
    /// A build secret.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// `sharing=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// `shared` (default).
    Shared,
    /// `private`.
    Private,
    /// `locked`.
    Locked,
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The type.
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image.
    pub from: String,
    /// `source=`/`src=`.
    pub source: String,
    /// `target=`/`dst=`/`destination=`.
    pub target: String,
    /// Read-only (default for all but cache and tmpfs).
    pub readonly: bool,
    /// tmpfs `size=` in bytes.
    pub size: u64,
    /// `id=` (cache id, secret id, ssh id).
    pub id: String,
    /// `sharing=` (cache only).
    pub sharing: Option<Sharing>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env=` (secret).
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// Splits one CSV record (RFC 4180 quoting).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') => {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5GiB`, `512` (binary units).
pub(crate) fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let num_len = t
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let num: f64 = t.get(..num_len)?.parse().ok()?;
    let mut rest = t[num_len..]
        .strip_prefix(' ')
        .unwrap_or(&t[num_len..])
        .to_ascii_lowercase();
    let mut mult = 1f64;
    if let Some(c) = rest.chars().next().filter(|c| "kmgtp".contains(*c)) {
        mult = 1024f64.powi("kmgtp".find(c)? as i32 + 1);
        rest.remove(0);
    }
    let rest = rest.strip_prefix('i').unwrap_or(&rest);
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    Some((num * mult) as u64)
}

/// Expands one value of a `--mount` option.
pub(crate) type Expander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses a `--mount` value. With `expand`, values are expanded and every
/// rule is checked; without, only `from` is checked (parse time).
pub(crate) fn parse_mount(val: &str, expand: Option<Expander<'_>>) -> Result<MountSpec, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = MountSpec {
        kind: MountType::Bind,
        from: String::new(),
        source: String::new(),
        target: String::new(),
        readonly: false,
        size: 0,
        id: String::new(),
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    let invalid = |k: &str, v: &str| format!("invalid value for {k}: {v}");
    for field in &fields {
        let (key, value, has_eq) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), v.to_string(), true),
            None => (field.to_ascii_lowercase(), String::new(), false),
        };
        if !has_eq {
            if expand.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        }
        let value = match expand {
            Some(f) => f(&value)?,
            None if key == "from" => {
                if let Some(i) = value.find('$')
                    && i != value.len() - 1
                {
                    return Err(format!(
                        "'{key}' doesn't support variable expansion, define alias stage instead"
                    ));
                }
                value
            }
            None => continue,
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(format!(
                            "unsupported mount type {}",
                            crate::parser::go_quote(&value)
                        ));
                    }
                }
            }
            "from" => m.from = value,
            "source" | "src" => m.source = value,
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => {
                m.readonly = parse_go_bool(&value).ok_or_else(|| invalid(&key, &value))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_go_bool(&value).ok_or_else(|| invalid(&key, &value))?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ));
                }
                m.required = parse_go_bool(&value).ok_or_else(|| invalid(&key, &value))?;
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ));
                }
                m.size = ram_in_bytes(&value).ok_or_else(|| invalid(&key, &value))?;
            }
            "id" => m.id = value,
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {}",
                            crate::parser::go_quote(&value)
                        ));
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let file_info_ok = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_ok {
        for (set, k) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(format!(
                    "{k} not allowed for {} type mounts",
                    crate::parser::go_quote(m.kind.name())
                ));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if !m.from.is_empty() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_empty() && m.target.is_empty() && m.id.is_empty() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if !m.source.is_empty() && !m.id.is_empty() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.name()
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(v: &str) -> Result<MountSpec, String> {
        let id = |s: &str| Ok(s.to_string());
        parse_mount(v, Some(&id))
    }

    #[test]
    fn types_and_defaults() {
        let m = full("target=/src").unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Bind, true));
        let m = full("type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000").unwrap();
        assert_eq!(
            (m.kind, m.readonly, m.sharing, m.mode, m.uid),
            (
                MountType::Cache,
                false,
                Some(Sharing::Locked),
                Some(0o700),
                Some(1000)
            )
        );
        let m = full("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, 64 << 20);
        let m = full("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(m.required);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        let m = full("type=bind,from=build,source=/out,target=/x,rw").unwrap();
        assert!(!m.readonly);
        let m = full("\"type=bind\",Target=/a").unwrap();
        assert_eq!(m.target, "/a");
    }

    #[test]
    fn errors() {
        assert!(
            full("type=nfs")
                .unwrap_err()
                .contains("unsupported mount type")
        );
        assert!(
            full("type=bind,mode=0700")
                .unwrap_err()
                .contains("mode not allowed")
        );
        assert!(
            full("type=bind,required")
                .unwrap_err()
                .contains("unexpected key 'required'")
        );
        assert!(
            full("type=secret")
                .unwrap_err()
                .contains("one of source, target required")
        );
        assert!(
            full("type=secret,id=a,source=b")
                .unwrap_err()
                .contains("both source and id")
        );
        assert!(
            full("type=bind,sharing=shared")
                .unwrap_err()
                .contains("invalid cache sharing")
        );
        assert!(
            full("bogus=1")
                .unwrap_err()
                .contains("unexpected key 'bogus'")
        );
        assert!(
            full("readonly=maybe")
                .unwrap_err()
                .contains("invalid value for readonly")
        );
        assert!(
            full("size=1m")
                .unwrap_err()
                .contains("unexpected key 'size'")
        );
        assert!(full("x").unwrap_err().contains("must be a key=value pair"));
        assert!(
            parse_mount("from=$X", None)
                .unwrap_err()
                .contains("doesn't support variable expansion")
        );
        assert!(parse_mount("from=stage,target=/a", None).is_ok());
        assert!(full("a\"b").is_err());
    }
}
