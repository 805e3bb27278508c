//! Where the state directory lives.
//!
//! `--root` wins, then `KILN_ROOT` (clap reads it for us), then
//! `/var/lib/kiln` for root and `$XDG_DATA_HOME/kiln` (falling back to
//! `~/.local/share/kiln`) for everyone else.

use std::path::PathBuf;

/// Picks the state directory when neither `--root` nor `KILN_ROOT` was given.
pub(crate) fn default_root() -> PathBuf {
    if rustix_is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("kiln");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/kiln"),
        None => PathBuf::from("/var/lib/kiln"),
    }
}

fn rustix_is_root() -> bool {
    rustix::process::geteuid().is_root()
}
