//! Image reference normalisation (distribution/reference's
//! `ParseNormalizedNamed` + `TagNameOnly`): `alpine` becomes
//! `docker.io/library/alpine:latest`.

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let sep_len = if ch == b'_' && b.get(i + 1) == Some(&b'_') {
            2
        } else if ch == b'.' || ch == b'_' {
            1
        } else if ch == b'-' {
            b[i..].iter().take_while(|c| **c == b'-').count()
        } else {
            return false;
        };
        i += sep_len;
        if !b
            .get(i)
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']');
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// Normalises `name`; errors like Go's `invalid reference format`.
pub(crate) fn normalize(name: &str) -> Result<String, String> {
    let bad = || format!("invalid reference format: {name}");
    if name.is_empty() || name.len() > 4096 {
        return Err(bad());
    }
    let (rest, digest) = match name.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (name, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return Err(bad());
        };
        if alg.is_empty() || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !ok {
            return Err(bad());
        }
    }
    let (domain, path) = match repo.split_once('/') {
        Some((first, p))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), p.to_string())
        }
        _ => ("docker.io".to_string(), repo.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if path.to_lowercase() != path {
        return Err(format!(
            "invalid reference format: repository name ({path}) must be lowercase"
        ));
    }
    if !valid_domain(&domain) || !path.split('/').all(valid_component) {
        return Err(bad());
    }
    let mut out = format!("{domain}/{path}");
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    } else if digest.is_none() {
        out.push_str(":latest");
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            normalize("alpine").unwrap(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            normalize("alpine:3.20").unwrap(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(normalize("user/app").unwrap(), "docker.io/user/app:latest");
        assert_eq!(
            normalize("localhost:5000/a/b:t").unwrap(),
            "localhost:5000/a/b:t"
        );
        assert_eq!(normalize("ghcr.io/o/r").unwrap(), "ghcr.io/o/r:latest");
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(normalize(&d).unwrap(), format!("docker.io/library/{d}"));
        assert!(normalize("Alpine").is_err());
        assert!(normalize("a b").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("x:").is_err());
    }
}
