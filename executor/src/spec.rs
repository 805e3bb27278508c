//! What to run and how: the plain description of a sandboxed process that
//! the solver (for RUN) and `kiln run` fill in. Nothing here touches the
//! system; [`SandboxSpec::validate`] checks it before anything starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The hostname a sandbox gets unless told otherwise (BuildKit's).
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// The `PATH` a process gets when its environment has none (BuildKit's and
/// docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One sandboxed process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// argv; `args[0]` is looked up in the sandbox's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs. A `PATH` is added when missing ([`DEFAULT_PATH`]);
    /// `HOME` comes from the user's passwd entry when missing.
    pub env: Vec<String>,
    /// Absolute working directory inside the sandbox; created (0755, owned
    /// by the user) when missing, and then part of the layer, as in BuildKit.
    pub cwd: String,
    /// `USER`: `name`, `uid`, `name:group`, `uid:gid`, … (empty = root).
    pub user: String,
    /// The sandbox's hostname.
    pub hostname: String,
    /// Network mode.
    pub network: Network,
    /// Extra mounts, applied in order of target depth.
    pub mounts: Vec<Mount>,
    /// Resource limits (cgroups).
    pub limits: Limits,
    /// Sandbox or insecure (`RUN --security=insecure`).
    pub security: Security,
    /// Extra `/etc/hosts` lines: (hostname, IP address).
    pub extra_hosts: Vec<(String, String)>,
    /// Also bind-mount a generated `/etc/hostname` (docker does; BuildKit
    /// does not, so RUN leaves this off).
    pub hostname_file: bool,
}

impl SandboxSpec {
    /// A spec running `args` as root in `/`, BuildKit's defaults otherwise.
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        SandboxSpec {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: "/".into(),
            user: String::new(),
            hostname: DEFAULT_HOSTNAME.into(),
            network: Network::default(),
            mounts: Vec::new(),
            limits: Limits::default(),
            security: Security::default(),
            extra_hosts: Vec::new(),
            hostname_file: false,
        }
    }

    /// Checks the spec for mistakes that would only show up halfway
    /// through setting up the sandbox.
    pub fn validate(&self) -> Result<()> {
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(Error::Invalid("no command given".into()));
        }
        for a in &self.args {
            no_nul("argument", a)?;
        }
        for e in &self.env {
            no_nul("environment variable", e)?;
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "environment entry {e:?} is not KEY=VALUE"
                    )));
                }
            }
        }
        if !self.cwd.starts_with('/') {
            return Err(Error::Invalid(format!(
                "working directory {:?} is not an absolute path",
                self.cwd
            )));
        }
        no_nul("working directory", &self.cwd)?;
        no_nul("user", &self.user)?;
        if self.hostname.is_empty()
            || self.hostname.len() > 64
            || !self
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(Error::Invalid(format!(
                "invalid hostname {:?}",
                self.hostname
            )));
        }
        for (name, ip) in &self.extra_hosts {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Error::Invalid(format!("invalid extra host name {name:?}")));
            }
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::Invalid(format!(
                    "invalid IP address {ip:?} for extra host {name}"
                )));
            }
        }
        for m in &self.mounts {
            m.validate()?;
        }
        self.limits.validate()
    }
}

fn no_nul(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::Invalid(format!("{what} {s:?} contains a NUL byte")));
    }
    Ok(())
}

/// The network a sandbox sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace. The default, as in BuildKit without
    /// CNI: RUN steps can download what they need.
    #[default]
    Host,
    /// A network namespace of its own with only loopback, up.
    None,
}

impl std::str::FromStr for Network {
    type Err = Error;
    /// `host`, `none`, or `default` (= host).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "host" | "default" => Ok(Network::Host),
            "none" => Ok(Network::None),
            other => Err(Error::Invalid(format!(
                "unsupported network mode {other:?} (expected none, host or default)"
            ))),
        }
    }
}

/// Resource limits, enforced with a cgroup per sandbox (v1 or v2).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (swap included: no swap beyond it).
    pub memory: Option<u64>,
    /// CPU quota in CPUs (1.5 = one and a half CPUs' time per period).
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
}

/// The smallest memory limit accepted (docker's minimum).
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

impl Limits {
    /// Are any limits set?
    pub fn any(&self) -> bool {
        self.memory.is_some() || self.cpus.is_some() || self.pids.is_some()
    }

    fn validate(&self) -> Result<()> {
        if let Some(m) = self.memory
            && m < MIN_MEMORY
        {
            return Err(Error::Invalid(format!(
                "memory limit {m} bytes is below the minimum of 6 MiB"
            )));
        }
        if let Some(c) = self.cpus
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::Invalid(format!("invalid CPU limit {c}")));
        }
        if self.pids == Some(0) {
            return Err(Error::Invalid("pids limit must be at least 1".into()));
        }
        Ok(())
    }
}

/// How much the process is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Security {
    /// Docker's default capabilities, masked /proc paths, read-only /sys,
    /// no new privileges.
    #[default]
    Sandbox,
    /// All capabilities, nothing masked, writable /sys
    /// (`RUN --security=insecure`). Namespaces still apply.
    Insecure,
}

/// An extra mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the sandbox. A missing target is created as a
    /// mount-point stub and removed after the run, so it never reaches the
    /// layer.
    pub target: String,
    /// What to mount there.
    pub kind: MountKind,
}

/// What an extra mount is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A host file or directory (`-v HOST:CTR[:ro]`), recursively.
    Bind {
        /// Absolute host path.
        source: PathBuf,
        /// Mount read-only.
        readonly: bool,
    },
    /// A fresh tmpfs (mode 1777).
    Tmpfs {
        /// Size limit in bytes (the kernel's default, half of RAM, if none).
        size: Option<u64>,
    },
    /// A persistent cache directory (`RUN --mount=type=cache`), read-write.
    Cache {
        /// The cache's directory in the store.
        source: PathBuf,
    },
    /// A secret file (`RUN --mount=type=secret`): the host file's content
    /// is copied to a private tmpfs and mounted read-only from there.
    Secret {
        /// The host file holding the secret.
        source: PathBuf,
        /// Permission bits (BuildKit's default: 0400).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

impl Mount {
    fn validate(&self) -> Result<()> {
        if !self.target.starts_with('/') || self.target == "/" {
            return Err(Error::Invalid(format!(
                "mount target {:?} must be an absolute path other than /",
                self.target
            )));
        }
        no_nul("mount target", &self.target)?;
        let source = match &self.kind {
            MountKind::Bind { source, .. }
            | MountKind::Cache { source }
            | MountKind::Secret { source, .. } => Some(source),
            MountKind::Tmpfs { .. } => None,
        };
        if let Some(s) = source {
            if !s.is_absolute() {
                return Err(Error::Invalid(format!(
                    "mount source {} must be an absolute path",
                    s.display()
                )));
            }
            if std::fs::metadata(s).is_err() {
                return Err(Error::Invalid(format!(
                    "mount source {} does not exist",
                    s.display()
                )));
            }
        }
        Ok(())
    }

    /// Whether the target must be a directory (else a file) when created.
    pub(crate) fn wants_dir(&self) -> bool {
        match &self.kind {
            MountKind::Bind { source, .. } => source.is_dir(),
            MountKind::Tmpfs { .. } | MountKind::Cache { .. } => true,
            MountKind::Secret { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_buildkits() {
        let s = SandboxSpec::new(["true"]);
        assert_eq!(s.hostname, "buildkitsandbox");
        assert_eq!(s.network, Network::Host);
        assert_eq!(s.cwd, "/");
        s.validate().unwrap();
    }

    #[test]
    fn validation_catches_mistakes() {
        let mut s = SandboxSpec::new(Vec::<String>::new());
        assert!(s.validate().is_err());
        s.args = vec!["true".into()];
        s.cwd = "relative".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("not an absolute path")
        );
        s.cwd = "/".into();
        s.env = vec!["NOEQUALS".into()];
        assert!(s.validate().unwrap_err().to_string().contains("KEY=VALUE"));
        s.env.clear();
        s.limits.memory = Some(1024);
        assert!(s.validate().unwrap_err().to_string().contains("minimum"));
        s.limits.memory = None;
        s.mounts.push(Mount {
            target: "/x".into(),
            kind: MountKind::Bind {
                source: "/definitely/not/here".into(),
                readonly: true,
            },
        });
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn network_modes_parse() {
        assert_eq!("none".parse::<Network>().unwrap(), Network::None);
        assert_eq!("default".parse::<Network>().unwrap(), Network::Host);
        assert!("bridge".parse::<Network>().is_err());
    }
}
