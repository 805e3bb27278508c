//! The file op: copy, mkdir, mkfile and rm actions applied in order to one
//! base filesystem.
//!
//! Ownership stays unresolved text (`--chown=app:staff`): the solver
//! resolves names against `/etc/passwd` and `/etc/group` of the
//! *destination* filesystem, as BuildKit does.

use serde::{Deserialize, Serialize};

/// Applies `actions` in order to the filesystem at input `base` (`None`:
/// an empty one). Output 0 is the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// Input position of the filesystem to modify; `None` is scratch.
    pub base: Option<usize>,
    /// The actions, applied in order.
    pub actions: Vec<FileAction>,
}

/// One file action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FileAction {
    /// Copy from another input.
    Copy(CopyAction),
    /// Create a directory.
    Mkdir(MkdirAction),
    /// Create a file with given content.
    Mkfile(MkfileAction),
    /// Remove a path.
    Rm(RmAction),
}

/// `--chown` as written: names or numbers, resolved by the solver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chown {
    /// User name or uid.
    pub user: String,
    /// Group name or gid; `None` means the user's uid as gid (docs).
    pub group: Option<String>,
}

/// `--chmod`: an octal mode or a symbolic one (`u+x,g-w`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chmod {
    /// Numeric mode, at most 0o7777.
    Octal(u32),
    /// Symbolic mode as written, applied to each copied file's own mode.
    Symbolic(String),
}

/// Copy `src_path` of input `src` to `dest` in the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Input position to copy from; `None` is scratch.
    pub src: Option<usize>,
    /// Absolute path (or wildcard pattern, see `allow_wildcard`) in `src`.
    pub src_path: String,
    /// Absolute destination. A trailing `/` means "into this directory".
    pub dest: String,
    /// New owner of everything copied; `None` keeps the source ownership.
    pub chown: Option<Chown>,
    /// New mode of everything copied; `None` keeps the source mode.
    pub chmod: Option<Chmod>,
    /// Follow a symlink at `src_path` itself.
    pub follow_symlinks: bool,
    /// A directory source copies its contents, not the directory itself.
    pub dir_contents_only: bool,
    /// `src_path` may contain `*`, `?` and `[...]` (Go `filepath.Match`,
    /// per path element).
    pub allow_wildcard: bool,
    /// A wildcard that matches nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Create missing parent directories of `dest`.
    pub create_dest_path: bool,
    /// Only copy paths matching one of these (relative to `src_path`);
    /// empty means all. Used by `COPY --parents`.
    pub include_patterns: Vec<String>,
    /// Skip paths matching one of these (`COPY --exclude`).
    pub exclude_patterns: Vec<String>,
    /// Paths that must exist in `src` (`COPY --parents` without wildcards).
    pub required_paths: Vec<String>,
    /// If the source is a local tar archive (optionally gzip, bzip2 or xz
    /// compressed, detected by content), extract it into `dest` (`ADD`).
    pub attempt_unpack: bool,
}

/// Create a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAction {
    /// Absolute path.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Create missing parents too (`mkdir -p`).
    pub make_parents: bool,
    /// Owner (e.g. the current `USER` for `WORKDIR`).
    pub chown: Option<Chown>,
}

/// Create (or replace) a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkfileAction {
    /// Absolute path.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// The content (heredoc bodies are text).
    pub data: String,
    /// Owner.
    pub chown: Option<Chown>,
}

/// Remove a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmAction {
    /// Absolute path.
    pub path: String,
    /// Missing path is not an error.
    pub allow_not_found: bool,
    /// `path` may be a wildcard pattern.
    pub allow_wildcard: bool,
}
