//! Go `path` semantics (`Clean`, `Join`, `Base`) and BuildKit's
//! `NormalizePath`, which decide where COPY sources, destinations and
//! WORKDIR land.

/// Go's `path.Clean`.
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Join`.
pub(crate) fn join(parts: &[&str]) -> String {
    let nonempty: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if nonempty.is_empty() {
        return String::new();
    }
    clean(&nonempty.join("/"))
}

/// Go's `path.Base`.
pub(crate) fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// BuildKit's `system.NormalizePath` for Linux: a relative `new` is joined
/// to `parent` (and cleaned); an absolute one is kept as written. With
/// `keep_slash`, a trailing `/` (or `/.`) of `new` survives.
pub(crate) fn normalize(parent: &str, new: &str, keep_slash: bool) -> String {
    let orig = new;
    let mut parent = if parent.is_empty() {
        "/".to_string()
    } else {
        parent.to_string()
    };
    if !parent.starts_with('/') {
        parent = join(&["/", &parent]);
    }
    let mut p = if new.is_empty() {
        parent.clone()
    } else {
        new.to_string()
    };
    if !p.starts_with('/') {
        p = join(&[&parent, &p]);
    }
    if keep_slash {
        if orig.ends_with('/') && !p.ends_with('/') {
            p.push('/');
        } else if orig.ends_with("/.") {
            if p != "/" {
                p.push('/');
            }
            p.push('.');
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_semantics() {
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("../a/.."), "..");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean(""), ".");
        assert_eq!(join(&["/", "a", "../b"]), "/b");
        assert_eq!(join(&[".", "/src"]), "src");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(normalize("/app", "sub/", true), "/app/sub/");
        assert_eq!(normalize("/app", "./", true), "/app/");
        assert_eq!(normalize("/app", "/abs//x", true), "/abs//x");
        assert_eq!(normalize("/", "../x", false), "/x");
        assert_eq!(normalize("/app", "x/.", true), "/app/x/.");
    }
}
