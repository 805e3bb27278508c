//! The exec op: one process (a `RUN`) and the filesystems mounted for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Platform;

/// Runs `args` with `rootfs` as `/` and the given mounts. Output 0 is the
/// root filesystem after the process exited successfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// Input position of the root filesystem; `None` is an empty rootfs.
    pub rootfs: Option<usize>,
    /// argv; `args[0]` is looked up in the image's `PATH` from `env`.
    pub args: Vec<String>,
    /// `KEY=value` in order; later entries override earlier ones. Holds the
    /// image Env, ENV and ARG values of the stage.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// `user[:group]` as written (names resolved in the rootfs by the
    /// executor); empty means root.
    pub user: String,
    /// The platform the process is built for.
    pub platform: Platform,
    /// Network namespace mode (`RUN --network`).
    pub network: NetworkMode,
    /// Sandbox mode (`RUN --security`).
    pub security: SecurityMode,
    /// Extra mounts, in the order they are written.
    pub mounts: Vec<Mount>,
    /// Proxy variables from build args that the Dockerfile did not declare:
    /// given to the process (upper- and lower-case names) but, like in
    /// BuildKit, left out of the digest and the history.
    #[serde(skip)]
    pub proxy_env: Option<ProxyEnv>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The build's default (a private sandbox network, or the build's
    /// `--network`).
    #[default]
    Default,
    /// No network: only loopback.
    None,
    /// The host's network namespace (needs the `network.host` entitlement).
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    /// The normal sandbox.
    #[default]
    Sandbox,
    /// All capabilities, no seccomp (needs the `security.insecure`
    /// entitlement).
    Insecure,
}

/// Proxy settings passed to a process but kept out of its digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProxyEnv {
    /// Variable name (upper-case, e.g. `HTTP_PROXY`) → value. The executor
    /// sets both the upper- and the lower-case name.
    pub vars: BTreeMap<String, String>,
}

/// One extra mount of an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the container (for secrets consumed only as an
    /// environment variable: empty).
    pub target: String,
    /// What is mounted.
    pub kind: MountKind,
}

/// The kinds of `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MountKind {
    /// A directory of another vertex's output (or of the build context).
    Bind {
        /// Input position; `None` is an empty directory.
        input: Option<usize>,
        /// Path inside that input (`/` for its root).
        source: String,
        /// Mounted read-only (the default).
        readonly: bool,
    },
    /// A persistent cache directory shared between builds.
    Cache {
        /// Cache id (`<namespace>/<id>`; the id defaults to the target).
        id: String,
        /// How concurrent builds share it.
        sharing: CacheSharing,
        /// Input position to seed a new cache from (`from=`), and the path
        /// inside it.
        from: Option<usize>,
        /// Path inside `from` (`/` for its root).
        source: String,
        /// Mode of the cache root when created (BuildKit default 0755).
        mode: Option<u32>,
        /// Owner uid of the cache root when created (default 0).
        uid: Option<u32>,
        /// Owner gid of the cache root when created (default 0).
        gid: Option<u32>,
        /// Mounted read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes; 0 means the kernel default.
        size: u64,
    },
    /// A secret provided by the client: a file at `target` (if not empty),
    /// and/or an environment variable.
    Secret {
        /// Secret id (`--secret id=...` on the command line).
        id: String,
        /// Also (or only) expose it as this environment variable.
        env: Option<String>,
        /// Fail the build if the client did not provide it.
        required: bool,
        /// File mode (default 0400).
        mode: u32,
        /// Owner uid (default 0).
        uid: u32,
        /// Owner gid (default 0).
        gid: u32,
    },
    /// An SSH agent socket forwarded from the client.
    Ssh {
        /// Agent id (`default` unless given).
        id: String,
        /// Fail the build if the client did not forward it.
        required: bool,
        /// Socket mode (default 0600).
        mode: u32,
        /// Owner uid (default 0).
        uid: u32,
        /// Owner gid (default 0).
        gid: u32,
    },
}

/// `RUN --mount=type=cache,sharing=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Concurrent builds use it at the same time.
    #[default]
    Shared,
    /// A concurrent build gets its own new directory.
    Private,
    /// A concurrent build waits until it is released.
    Locked,
}
