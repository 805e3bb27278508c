//! Image references in the docker/distribution grammar.
//!
//! `busybox`, `busybox:1.36`, `busybox@sha256:…`, `localhost:5000/a/b:t`.
//! The grammar is distribution's `reference` package (see
//! `docs/store.md`), parsed by hand: oci-spec's `distribution::Reference`
//! implements it with a regular expression whose compilation costs about
//! 25 ms per process, more than a whole cached `kiln build` may take. On
//! top come docker's normalisation rules (`docker.io/library/` defaults,
//! `index.docker.io`, "digest wins over tag") and docker's wording for
//! errors, which always quote the reference.

use std::fmt;

use crate::digest::{Digest, is_hex64};
use crate::error::{Error, Result};

/// The registry docker's short names live on.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Longest repository name (without the domain) accepted.
const NAME_MAX: usize = 255;

/// A normalised image reference: always a registry and a repository, and
/// exactly one of tag or digest (a bare name gets `latest`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises a reference; the error names it.
    pub fn parse(s: &str) -> Result<ImageRef> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        const FORMAT: &str =
            "expected [registry/]name[:tag][@sha256:digest] with lower-case name components";
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        if is_hex64(s) {
            return Err(bad(
                "cannot use a 64-character hexadecimal string as a repository name (it is an image ID)",
            ));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(parse_digest(d).map_err(|r| bad(&r))?)),
            None => (s, None),
        };
        let slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[slash..].rfind(':') {
            Some(i) => (&name_tag[..slash + i], Some(&name_tag[slash + i + 1..])),
            None => (name_tag, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(FORMAT));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                if !valid_domain(first) {
                    return Err(bad(FORMAT));
                }
                (first, rest)
            }
            _ => (DEFAULT_REGISTRY, name),
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            let lower = path.to_ascii_lowercase();
            if lower != path && lower.split('/').all(valid_path_component) {
                return Err(bad(&format!("repository name ({path}) must be lowercase")));
            }
            return Err(bad(FORMAT));
        }
        let registry = if domain == "index.docker.io" {
            DEFAULT_REGISTRY
        } else {
            domain
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if repository.len() > NAME_MAX {
            return Err(bad(&format!(
                "repository name must not be more than {NAME_MAX} characters"
            )));
        }
        // As docker's ParseDockerRef: with a digest, the tag is dropped.
        let tag = match (&digest, tag) {
            (Some(_), _) => None,
            (None, Some(t)) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// A tagged reference from a repository name (`busybox` or a full name)
    /// and a tag.
    pub fn with_tag(name: &str, tag: &str) -> Result<ImageRef> {
        ImageRef::parse(&format!("{name}:{tag}"))
    }

    /// The registry host, e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference is not by digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, for `name@sha256:…` references.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it: `busybox`, `user/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The reference as docker shows it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The same repository with another tag.
    pub fn retag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        } else if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
    }
}

/// `sha256:<64 hex>`; other well-formed algorithms are refused by name.
fn parse_digest(d: &str) -> std::result::Result<Digest, String> {
    match d.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Digest::parse(&format!("sha256:{}", hex.to_ascii_lowercase()))
                .map_err(|e| e.to_string())
        }
        Some(("sha256", _)) => {
            Err("invalid checksum digest length: sha256 takes 64 hex digits".into())
        }
        Some((alg, hex))
            if !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Err(format!("unsupported digest algorithm {alg} (only sha256)"))
        }
        _ => Err("invalid checksum digest format".into()),
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `host[:port]`, host being dot-separated labels of letters, digits and
/// inner hyphens, or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty()
                    || !v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(p) => ("x", Some(p)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    /// The full, normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_defaults() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("index.docker.io/library/x:y"), "docker.io/library/x:y");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(full("example.com/a"), "example.com/a:latest");
        assert_eq!(full("Example.com/a"), "Example.com/a:latest");
        assert_eq!(full("test.com:5000"), "docker.io/library/test.com:5000");
    }

    #[test]
    fn digest_wins_over_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), d);
        assert_eq!(r.familiar(), format!("busybox@{d}"));
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| ImageRef::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/user/app:1"), "user/app:1");
        assert_eq!(f("localhost:5000/app:1"), "localhost:5000/app:1");
    }

    #[test]
    fn grammar_edges() {
        for ok in [
            "a",
            "a-b--c/d_e__f.g",
            "localhost:5000/a",
            "[::1]:5000/a:b",
            "sub.example.com:443/a/b/c:v1.2-rc_3",
            "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            ImageRef::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "a_",
            "a___b",
            "-a",
            "a/",
            "/a",
            "a:-tag",
            "a:tag with space",
            "host:port/x",
            "a.b-/x",
            &format!("a:{}", "t".repeat(129)),
            &format!("x/{}", "a".repeat(255)),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(full("a:1.0"), "docker.io/library/a:1.0");
        assert_eq!(full("Upper.io/a"), "Upper.io/a:latest");
        assert_eq!(full("Upper/a"), "Upper/a:latest");
    }

    #[test]
    fn errors_name_the_reference() {
        for (s, want) in [
            ("Busybox", "must be lowercase"),
            ("busybox:", "expected"),
            ("a//b", "expected"),
            ("", "empty"),
            ("-x", "expected"),
            (&"a".repeat(64), "image ID"),
            ("x@sha256:abc", "digest"),
            ("x@md5:0123456789abcdef0123456789abcdef", "digest"),
        ] {
            let e = ImageRef::parse(s).unwrap_err().to_string();
            assert!(e.contains(&format!("{s:?}")), "{e}");
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
