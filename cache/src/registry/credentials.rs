//! Registry credentials, kept where docker keeps them: `config.json` in
//! `$DOCKER_CONFIG` (default `~/.docker`), so that `docker login` and
//! `kiln login` share them.
//!
//! - `auths.<server>.auth` is base64 `user:password`; `identitytoken`
//!   (an OAuth2 refresh token) is used instead of a password when set.
//! - `credHelpers.<server>` or `credsStore` name a
//!   `docker-credential-<helper>` program (`get`/`store`/`erase`, JSON on
//!   stdin/stdout); when one applies, it is used instead of the file.
//! - Docker Hub's key is `https://index.docker.io/v1/`; other registries
//!   are keyed by `host[:port]`, with or without a scheme.
//!
//! The file is rewritten atomically (temporary file, fsync, rename), mode
//! 0600, keeping every key kiln does not know.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::error::{Error, Result};
use crate::reference::DEFAULT_REGISTRY;

/// The key docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

impl Credential {
    /// Who, for messages (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Credential::Basic { username, .. } => format!("user {username:?}"),
            Credential::IdentityToken(_) => "an identity token".to_string(),
        }
    }
}

/// Docker's credentials configuration.
#[derive(Debug, Clone)]
pub struct Credentials {
    dir: Option<PathBuf>,
    /// `PATH` to find helpers in (tests); `None`: the process's.
    helper_path: Option<std::ffi::OsString>,
}

/// The key under which docker stores credentials for `registry`.
pub fn server_key(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// `https://host:5000/v1/` → `host:5000`; Hub aliases → `docker.io`.
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_string()
        }
        h => h.to_string(),
    }
}

impl Credentials {
    /// Credentials in `dir/config.json`; `None`: `$DOCKER_CONFIG`, else
    /// `~/.docker`.
    pub fn new(dir: Option<PathBuf>) -> Credentials {
        let dir = dir.or_else(|| {
            std::env::var_os("DOCKER_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .filter(|v| !v.is_empty())
                        .map(|h| PathBuf::from(h).join(".docker"))
                })
        });
        Credentials {
            dir,
            helper_path: None,
        }
    }

    /// The `config.json` read and written.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("config.json"))
    }

    fn read_config(&self) -> Result<Map<String, Value>> {
        let Some(path) = self.config_path() else {
            return Ok(Map::new());
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(cred_err(&path, format!("read: {e}"))),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(cred_err(&path, "not a JSON object".into())),
            Err(e) => Err(cred_err(&path, format!("invalid JSON: {e}"))),
        }
    }

    /// The helper program responsible for `registry`, if any.
    fn helper(config: &Map<String, Value>, registry: &str) -> Option<String> {
        if let Some(helpers) = config.get("credHelpers").and_then(Value::as_object) {
            for (k, v) in helpers {
                if normalize_key(k) == registry
                    && let Some(h) = v.as_str().filter(|h| !h.is_empty())
                {
                    return Some(h.to_string());
                }
            }
        }
        config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials for `registry` (`host[:port]`, `docker.io`), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>> {
        let config = self.read_config()?;
        if let Some(helper) = Self::helper(&config, registry) {
            return helper_get(self.helper_path.as_deref(), &helper, &server_key(registry));
        }
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let path = self.config_path().unwrap_or_default();
        // An exact key first, then any spelling of the same host.
        let entry = auths.get(&server_key(registry)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| normalize_key(k) == registry)
                .map(|(_, v)| v)
        });
        let Some(entry) = entry else { return Ok(None) };
        if let Some(t) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credential::IdentityToken(t.to_string())));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = B64.decode(auth.trim()).map_err(|e| {
                cred_err(&path, format!("auths.{registry}.auth is not base64: {e}"))
            })?;
            let s = String::from_utf8(raw)
                .map_err(|_| cred_err(&path, format!("auths.{registry}.auth is not UTF-8")))?;
            let (u, p) = s.split_once(':').ok_or_else(|| {
                cred_err(
                    &path,
                    format!("auths.{registry}.auth is not base64 of user:password"),
                )
            })?;
            return Ok(Some(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Saves credentials for `registry`; returns where they went (the
    /// file's path or the helper's name).
    pub fn store(&self, registry: &str, cred: &Credential) -> Result<String> {
        let mut config = self.read_config()?;
        let key = server_key(registry);
        if let Some(helper) = Self::helper(&config, registry) {
            let (user, secret) = match cred {
                Credential::Basic { username, password } => (username.as_str(), password.as_str()),
                Credential::IdentityToken(t) => ("<token>", t.as_str()),
            };
            let input = json!({"ServerURL": key, "Username": user, "Secret": secret});
            run_helper(
                self.helper_path.as_deref(),
                &helper,
                "store",
                input.to_string().as_bytes(),
            )?;
            return Ok(format!("docker-credential-{helper}"));
        }
        let path = self.config_path().ok_or_else(|| {
            cred_err(
                Path::new("config.json"),
                "neither DOCKER_CONFIG nor HOME is set".into(),
            )
        })?;
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(auths) = auths else {
            return Err(cred_err(&path, "\"auths\" is not an object".into()));
        };
        // Drop other spellings of the same registry so only one remains.
        auths.retain(|k, _| normalize_key(k) != registry || *k == key);
        let entry = match cred {
            Credential::Basic { username, password } => {
                json!({"auth": B64.encode(format!("{username}:{password}"))})
            }
            Credential::IdentityToken(t) => json!({"auth": "", "identitytoken": t}),
        };
        auths.insert(key, entry);
        write_config(&path, &config)?;
        Ok(path.display().to_string())
    }

    /// Forgets the credentials for `registry`; returns whether there were any.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let mut config = self.read_config()?;
        if let Some(helper) = Self::helper(&config, registry) {
            return match run_helper(
                self.helper_path.as_deref(),
                &helper,
                "erase",
                server_key(registry).as_bytes(),
            ) {
                Ok(_) => Ok(true),
                Err(Error::Credentials { message, .. }) if is_not_found(&message) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let Some(path) = self.config_path() else {
            return Ok(false);
        };
        let Some(Value::Object(auths)) = config.get_mut("auths") else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| normalize_key(k) != registry);
        if auths.len() == before {
            return Ok(false);
        }
        write_config(&path, &config)?;
        Ok(true)
    }
}

fn cred_err(path: &Path, message: String) -> Error {
    Error::Credentials {
        path: path.display().to_string(),
        message,
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

/// Writes the config atomically with mode 0600.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| cred_err(dir, format!("create directory: {e}")))?;
    let tmp = dir.join(format!(".config.json.kiln-{}", std::process::id()));
    let mut data = serde_json::to_vec_pretty(config).expect("JSON serialises");
    data.push(b'\n');
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(&data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(cred_err(path, format!("write: {e}")));
    }
    Ok(())
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(
    search: Option<&std::ffi::OsStr>,
    helper: &str,
    action: &str,
    input: &[u8],
) -> Result<Vec<u8>> {
    let prog = format!("docker-credential-{helper}");
    let err = |message: String| Error::Credentials {
        path: prog.clone(),
        message,
    };
    let mut cmd = Command::new(&prog);
    if let Some(p) = search {
        // std searches the child's PATH when it is set here.
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| err(format!("write to {action}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("{action}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(err(format!("{action} failed ({}): {msg}", out.status)));
    }
    Ok(out.stdout)
}

fn helper_get(
    search: Option<&std::ffi::OsStr>,
    helper: &str,
    key: &str,
) -> Result<Option<Credential>> {
    let out = match run_helper(search, helper, "get", key.as_bytes()) {
        Ok(o) => o,
        Err(Error::Credentials { message, .. }) if is_not_found(&message) => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| Error::Credentials {
        path: format!("docker-credential-{helper}"),
        message: format!("get: invalid JSON: {e}"),
    })?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken(secret.to_string())
    } else {
        Credential::Basic {
            username: user.to_string(),
            password: secret.to_string(),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn store_get_erase_keeps_other_keys() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"http://other:5000":{"auth":"eDp5"}},"psFormat":"table"}"#,
        )
        .unwrap();
        let c = Credentials::new(Some(t.path().to_path_buf()));
        assert_eq!(c.get("localhost:5000").unwrap(), None);
        assert_eq!(c.get("other:5000").unwrap(), Some(basic("x", "y")));
        c.store("localhost:5000", &basic("alice", "s3:cret"))
            .unwrap();
        assert_eq!(
            c.get("localhost:5000").unwrap(),
            Some(basic("alice", "s3:cret"))
        );
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table");
        assert_eq!(
            v["auths"]["localhost:5000"]["auth"],
            B64.encode("alice:s3:cret")
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        c.store("docker.io", &basic("bob", "pw")).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(v["auths"][DOCKER_HUB_KEY].is_object());
        assert!(c.erase("other:5000").unwrap());
        assert!(!c.erase("other:5000").unwrap());
        assert_eq!(c.get("other:5000").unwrap(), None);
        assert_eq!(c.get("docker.io").unwrap(), Some(basic("bob", "pw")));
    }

    #[test]
    fn missing_and_broken_files() {
        let t = tempfile::tempdir().unwrap();
        let c = Credentials::new(Some(t.path().join("nope")));
        assert_eq!(c.get("localhost:5000").unwrap(), None);
        assert!(!c.erase("localhost:5000").unwrap());
        fs::write(t.path().join("config.json"), "{not json").unwrap();
        let c = Credentials::new(Some(t.path().to_path_buf()));
        let e = c.get("x").unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("invalid JSON"),
            "{e}"
        );
        fs::write(
            t.path().join("config.json"),
            r#"{"auths":{"x":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let e = c.get("x").unwrap_err().to_string();
        assert!(e.contains("auths.x.auth is not base64"), "{e}");
    }

    #[test]
    fn credential_helper_protocol() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let store = t.path().join("store");
        // A helper that keeps one secret in a file, as the real ones do in a keychain.
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n\
             get) read s; if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi;;\n\
             store) cat > {s};;\n\
             erase) read s; rm {s};;\n\
             esac\n",
            s = store.display()
        );
        let helper = bin.join("docker-credential-kilntest");
        fs::write(&helper, script).unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.path().join("config.json"), r#"{"credsStore":"kilntest"}"#).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut c = Credentials::new(Some(t.path().to_path_buf()));
        c.helper_path = Some(path.into());
        assert_eq!(c.get("localhost:5000").unwrap(), None);
        let at = c.store("localhost:5000", &basic("u", "p")).unwrap();
        assert_eq!(at, "docker-credential-kilntest");
        assert_eq!(c.get("localhost:5000").unwrap(), Some(basic("u", "p")));
        assert!(c.erase("localhost:5000").unwrap());
        assert_eq!(c.get("localhost:5000").unwrap(), None);
    }
}
