//! Image references in the docker/distribution grammar.
//!
//! `busybox`, `busybox:1.36`, `busybox@sha256:…`, `localhost:5000/a/b:t`.
//! Parsing is oci-spec's `distribution::Reference` (a port of docker's
//! `reference` package); this module adds docker's normalisation rules on
//! top (`docker.io/library/` defaults, "digest wins over tag", a domain with
//! upper case) and docker's wording for errors, which name the reference.

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};

use crate::digest::{Digest, is_hex64};
use crate::error::{Error, Result};

/// The registry docker's short names live on.
pub const DEFAULT_REGISTRY: &str = "docker.io";

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
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        if is_hex64(s) {
            return Err(bad(
                "cannot use a 64-character hexadecimal string as a repository name (it is an image ID)",
            ));
        }
        let parsed = match Reference::try_from(s) {
            Ok(r) => r,
            Err(e) => return Err(bad(&explain(s, e))),
        };
        let (mut registry, mut repository) = (
            parsed.registry().to_string(),
            parsed.repository().to_string(),
        );
        // docker treats a first component with upper case as a domain;
        // oci-spec only looks for '.', ':' and "localhost".
        if registry == DEFAULT_REGISTRY
            && !s.starts_with("docker.io/")
            && let Some((first, rest)) = s.split_once('/')
            && first.bytes().any(|b| b.is_ascii_uppercase())
        {
            registry = first.to_string();
            repository = strip_tag_digest(rest).to_string();
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad(&format!(
                "repository name ({repository}) must be lowercase"
            )));
        }
        let digest = parsed
            .digest()
            .map(|d| Digest::parse(d).map_err(|_| bad("only sha256 digests are supported")))
            .transpose()?;
        // As docker's ParseDockerRef: with a digest, the tag is dropped.
        let tag = if digest.is_some() {
            None
        } else {
            parsed.tag().map(str::to_string)
        };
        Ok(ImageRef {
            registry,
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

fn strip_tag_digest(s: &str) -> &str {
    let s = s.split_once('@').map(|(a, _)| a).unwrap_or(s);
    match s.rsplit_once(':') {
        Some((a, t)) if !t.contains('/') => a,
        _ => s,
    }
}

fn explain(s: &str, e: ParseError) -> String {
    let name = strip_tag_digest(s);
    match e {
        ParseError::ReferenceInvalidFormat
            if name.bytes().any(|b| b.is_ascii_uppercase())
                && Reference::try_from(s.to_ascii_lowercase().as_str()).is_ok() =>
        {
            format!("repository name ({name}) must be lowercase")
        }
        ParseError::ReferenceInvalidFormat => {
            "expected [registry/]name[:tag][@sha256:digest] with lower-case name components".into()
        }
        other => other.to_string(),
    }
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
