//! `--cache-from` and `--cache-to` values, as buildx writes them.
//!
//! - `type=registry,ref=REF` — a cache manifest in a registry (or an
//!   image there: its inline cache);
//! - `type=local,src=DIR` / `type=local,dest=DIR` — an OCI layout
//!   directory (`tag=` picks the entry, default `latest`);
//! - `type=inline` (`--cache-to` only) — accepted: every image kiln
//!   builds carries its inline cache;
//! - a bare `NAME` — a local image's inline cache when the store has an
//!   image by that name, else `type=registry,ref=NAME`.
//!
//! `--cache-to` also takes `mode=min|max` (default `min`) and
//! `ignore-error=true|false` (default `false`); BuildKit's
//! `image-manifest`, `oci-mediatypes` and `compression` are accepted and
//! have no effect (kiln always writes an OCI manifest with gzip layers).

use std::path::PathBuf;

use cache::ImageRef;

use super::super::error::{Error, Result};

/// Which results a cache export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// The final image's layers only (the steps that made them).
    #[default]
    Min,
    /// Every step's result, intermediate stages included.
    Max,
}

/// A `--cache-from` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSource {
    /// An image of the local store: its inline cache.
    Image(String),
    /// A registry reference: a cache manifest, or an image's inline cache.
    Registry(ImageRef),
    /// An OCI layout directory and the tag of the entry to use.
    Local {
        /// The directory.
        dir: PathBuf,
        /// `org.opencontainers.image.ref.name` of the entry.
        tag: String,
    },
}

impl CacheSource {
    /// Parses a `--cache-from` value; `is_local_image` says whether the
    /// store has an image by a bare name.
    pub fn parse(spec: &str, is_local_image: &dyn Fn(&str) -> bool) -> Result<CacheSource> {
        let bad = |m: String| Error::Invalid(format!("invalid --cache-from {spec:?}: {m}"));
        if !spec.contains('=') {
            if is_local_image(spec) {
                return Ok(CacheSource::Image(spec.to_string()));
            }
            return parse_ref(spec)
                .map(CacheSource::Registry)
                .map_err(|e| bad(e.to_string()));
        }
        let attrs = attrs(spec).map_err(bad)?;
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        match get("type").as_deref() {
            Some("registry") | None => {
                check_keys(&attrs, &["type", "ref"]).map_err(bad)?;
                let r = get("ref").ok_or_else(|| bad("type=registry needs ref=REF".into()))?;
                parse_ref(&r)
                    .map(CacheSource::Registry)
                    .map_err(|e| bad(e.to_string()))
            }
            Some("local") => {
                check_keys(&attrs, &["type", "src", "tag", "digest"]).map_err(bad)?;
                if get("digest").is_some() {
                    return Err(bad("digest= is not supported; use tag=".into()));
                }
                let dir = get("src").ok_or_else(|| bad("type=local needs src=DIR".into()))?;
                Ok(CacheSource::Local {
                    dir: PathBuf::from(dir),
                    tag: get("tag").unwrap_or_else(|| "latest".into()),
                })
            }
            Some(t) => Err(bad(format!(
                "unsupported cache type {t:?} (registry or local)"
            ))),
        }
    }

    /// How the source is named in messages.
    pub fn label(&self) -> String {
        match self {
            CacheSource::Image(n) => format!("inline cache of image {n}"),
            CacheSource::Registry(r) => format!("registry cache {}", r.familiar()),
            CacheSource::Local { dir, tag } => {
                format!("local cache {}:{tag}", dir.display())
            }
        }
    }
}

/// A `--cache-to` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTarget {
    /// A cache manifest pushed to a registry under a tag.
    Registry {
        /// Where (a tag reference).
        reference: ImageRef,
        /// Which results.
        mode: ExportMode,
        /// A failed export is a warning instead of an error.
        ignore_error: bool,
    },
    /// An OCI layout directory.
    Local {
        /// The directory (created if needed).
        dir: PathBuf,
        /// The entry's tag.
        tag: String,
        /// Which results.
        mode: ExportMode,
        /// A failed export is a warning instead of an error.
        ignore_error: bool,
    },
    /// The image's own config (always written): nothing more to do.
    Inline,
}

impl CacheTarget {
    /// Parses a `--cache-to` value.
    pub fn parse(spec: &str) -> Result<CacheTarget> {
        let bad = |m: String| Error::Invalid(format!("invalid --cache-to {spec:?}: {m}"));
        if !spec.contains('=') {
            let r = parse_ref(spec).map_err(|e| bad(e.to_string()))?;
            return Ok(CacheTarget::Registry {
                reference: r,
                mode: ExportMode::Min,
                ignore_error: false,
            });
        }
        let attrs = attrs(spec).map_err(bad)?;
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let mode = match get("mode").as_deref() {
            None | Some("min") => ExportMode::Min,
            Some("max") => ExportMode::Max,
            Some(m) => return Err(bad(format!("mode={m}: expected min or max"))),
        };
        let ignore_error = match get("ignore-error").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(bad(format!("ignore-error={v}: expected true or false"))),
        };
        const IGNORED: [&str; 4] = [
            "oci-mediatypes",
            "image-manifest",
            "compression",
            "force-compression",
        ];
        match get("type").as_deref() {
            Some("registry") | None => {
                let mut keys = vec!["type", "ref", "mode", "ignore-error"];
                keys.extend(IGNORED);
                check_keys(&attrs, &keys).map_err(bad)?;
                let r = get("ref").ok_or_else(|| bad("type=registry needs ref=REF".into()))?;
                let reference = parse_ref(&r).map_err(|e| bad(e.to_string()))?;
                if reference.tag().is_none() {
                    return Err(bad("ref= must be a tag, not a digest".into()));
                }
                Ok(CacheTarget::Registry {
                    reference,
                    mode,
                    ignore_error,
                })
            }
            Some("local") => {
                let mut keys = vec!["type", "dest", "tag", "mode", "ignore-error"];
                keys.extend(IGNORED);
                check_keys(&attrs, &keys).map_err(bad)?;
                let dir = get("dest").ok_or_else(|| bad("type=local needs dest=DIR".into()))?;
                Ok(CacheTarget::Local {
                    dir: PathBuf::from(dir),
                    tag: get("tag").unwrap_or_else(|| "latest".into()),
                    mode,
                    ignore_error,
                })
            }
            Some("inline") => {
                check_keys(&attrs, &["type", "mode"]).map_err(bad)?;
                if mode == ExportMode::Max {
                    return Err(bad("the inline cache supports mode=min only".into()));
                }
                Ok(CacheTarget::Inline)
            }
            Some(t) => Err(bad(format!(
                "unsupported cache type {t:?} (registry, local or inline)"
            ))),
        }
    }

    /// How the target is named in messages.
    pub fn label(&self) -> String {
        match self {
            CacheTarget::Registry { reference, .. } => {
                format!("registry cache {}", reference.familiar())
            }
            CacheTarget::Local { dir, tag, .. } => format!("local cache {}:{tag}", dir.display()),
            CacheTarget::Inline => "inline cache".into(),
        }
    }

    /// Whether a failed export is only a warning.
    pub fn ignore_error(&self) -> bool {
        match self {
            CacheTarget::Registry { ignore_error, .. }
            | CacheTarget::Local { ignore_error, .. } => *ignore_error,
            CacheTarget::Inline => true,
        }
    }

    /// The export mode.
    pub fn mode(&self) -> ExportMode {
        match self {
            CacheTarget::Registry { mode, .. } | CacheTarget::Local { mode, .. } => *mode,
            CacheTarget::Inline => ExportMode::Min,
        }
    }
}

fn parse_ref(s: &str) -> std::result::Result<ImageRef, cache::Error> {
    ImageRef::parse(s)
}

/// `k=v,k=v` (values may be quoted as in CSV).
fn attrs(spec: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("{field:?} is not KEY=VALUE"))?;
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().trim_matches('"').to_string();
        if out.iter().any(|(a, _)| *a == k) {
            return Err(format!("{k} given twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn check_keys(attrs: &[(String, String)], known: &[&str]) -> std::result::Result<(), String> {
    match attrs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("unknown key {k:?} (known: {})", known.join(", "))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_from_forms() {
        let local = |n: &str| n == "app:1";
        assert_eq!(
            CacheSource::parse("app:1", &local).unwrap(),
            CacheSource::Image("app:1".into())
        );
        assert_eq!(
            CacheSource::parse("localhost:5000/app:cache", &local).unwrap(),
            CacheSource::Registry(ImageRef::parse("localhost:5000/app:cache").unwrap())
        );
        assert_eq!(
            CacheSource::parse("type=registry,ref=app:1", &local).unwrap(),
            CacheSource::Registry(ImageRef::parse("app:1").unwrap()),
            "an explicit registry type never means the local image"
        );
        assert_eq!(
            CacheSource::parse("type=local,src=/c", &local).unwrap(),
            CacheSource::Local {
                dir: "/c".into(),
                tag: "latest".into()
            }
        );
        for bad in [
            "type=gha",
            "type=registry",
            "type=local",
            "type=registry,ref=x,mode=max",
            "type=registry,ref=UPPER",
            "Bad Name",
        ] {
            let e = CacheSource::parse(bad, &local).unwrap_err().to_string();
            assert!(e.contains("invalid --cache-from"), "{bad}: {e}");
        }
    }

    #[test]
    fn cache_to_forms() {
        let t = CacheTarget::parse("type=registry,ref=r.io/c:main,mode=max").unwrap();
        assert_eq!(t.mode(), ExportMode::Max);
        assert!(!t.ignore_error());
        assert_eq!(t.label(), "registry cache r.io/c:main");
        let t = CacheTarget::parse("r.io/c").unwrap();
        assert_eq!(t.mode(), ExportMode::Min);
        let t = CacheTarget::parse(
            "type=registry,ref=r.io/c,ignore-error=true,image-manifest=true,oci-mediatypes=true",
        )
        .unwrap();
        assert!(t.ignore_error());
        assert_eq!(
            CacheTarget::parse("type=local,dest=/x,tag=v1").unwrap(),
            CacheTarget::Local {
                dir: "/x".into(),
                tag: "v1".into(),
                mode: ExportMode::Min,
                ignore_error: false
            }
        );
        assert_eq!(
            CacheTarget::parse("type=inline").unwrap(),
            CacheTarget::Inline
        );
        for bad in [
            "type=registry,ref=r.io/c,mode=all",
            "type=registry,ref=r.io/c@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "type=local",
            "type=inline,mode=max",
            "type=s3,bucket=x",
            "type=registry,ref=r.io/c,color=blue",
        ] {
            assert!(CacheTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
