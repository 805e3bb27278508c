//! Build secrets (`--secret id=ID,src=PATH|env=VAR`, used by `RUN
//! --mount=type=secret`).
//!
//! A secret's value is never part of a cache key, a layer, a log or an
//! error message: only its id is. File secrets are handed to the sandbox by
//! path (the executor copies the content into a private tmpfs); env
//! secrets are written to a 0600 file in the store's scratch space for the
//! duration of the step and removed right after.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{Error, Result};

/// Where a secret's value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host.
    File(PathBuf),
    /// An environment variable of the kiln process (its name).
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::Env(v) => write!(f, "Env({v})"),
        }
    }
}

/// The secrets given to a build, by id.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    map: BTreeMap<String, SecretSource>,
}

impl Secrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a secret.
    pub fn insert(&mut self, id: impl Into<String>, source: SecretSource) {
        self.map.insert(id.into(), source);
    }

    /// Parses docker's `--secret` value: `id=ID[,src=PATH|source=PATH]
    /// [,env=VAR][,type=file|env]`. Without `src`/`env`, an environment
    /// variable named ID is used if set, else a file named ID.
    pub fn parse_flag(s: &str) -> Result<(String, SecretSource)> {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for field in s.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid --secret {s:?}: {field:?} is not KEY=VALUE"
                ))
            })?;
            match k.to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid --secret {s:?}: unknown key {k:?} (expected id, src, env, type)"
                    )));
                }
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::Invalid(format!("invalid --secret {s:?}: id is required")))?;
        let source = match (kind.as_deref(), src, env) {
            (_, Some(_), Some(_)) => {
                return Err(Error::Invalid(format!(
                    "invalid --secret {s:?}: give src or env, not both"
                )));
            }
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (Some("file") | None, Some(p), None) => SecretSource::File(PathBuf::from(p)),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (None, None, None) => {
                if std::env::var_os(&id).is_some() {
                    SecretSource::Env(id.clone())
                } else {
                    SecretSource::File(PathBuf::from(&id))
                }
            }
            (Some(t), _, _) => {
                return Err(Error::Invalid(format!(
                    "invalid --secret {s:?}: unknown type {t:?} (expected file or env)"
                )));
            }
        };
        if let SecretSource::File(p) = &source
            && !p.is_file()
        {
            return Err(Error::Invalid(format!(
                "secret {id}: {} is not a readable file",
                p.display()
            )));
        }
        Ok((id, source))
    }

    /// The source of a secret, if given.
    pub fn get(&self, id: &str) -> Option<&SecretSource> {
        self.map.get(id)
    }

    /// The value of a secret (for `env=` on a mount).
    pub(crate) fn value(&self, id: &str) -> Result<Option<Vec<u8>>> {
        match self.map.get(id) {
            None => Ok(None),
            Some(SecretSource::File(p)) => std::fs::read(p).map(Some).map_err(|e| Error::io(p, e)),
            Some(SecretSource::Env(v)) => Ok(std::env::var_os(v).map(|v| {
                use std::os::unix::ffi::OsStrExt;
                v.as_bytes().to_vec()
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("tok");
        std::fs::write(&f, "x").unwrap();
        let (id, s) = Secrets::parse_flag(&format!("id=tok,src={}", f.display())).unwrap();
        assert_eq!((id.as_str(), s), ("tok", SecretSource::File(f.clone())));
        let (id, s) = Secrets::parse_flag("id=t2,env=HOME").unwrap();
        assert_eq!((id.as_str(), s), ("t2", SecretSource::Env("HOME".into())));
        let (_, s) = Secrets::parse_flag("type=env,id=PATH").unwrap();
        assert_eq!(s, SecretSource::Env("PATH".into()));
        assert!(Secrets::parse_flag("src=/x").is_err());
        assert!(Secrets::parse_flag("id=a,src=/no/such/file").is_err());
        assert!(Secrets::parse_flag("id=a,bogus=1").is_err());
    }
}
