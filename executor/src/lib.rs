//! The executor.
//!
//! Owns running a process inside an image's filesystem: copy-on-write
//! snapshots (overlayfs, with a copy-based fallback), the Linux sandbox
//! (namespaces, pivot_root, mounts, user, capabilities, cgroup limits),
//! networking modes, and per-step log capture. It knows nothing of images or
//! the store: it is handed directories and returns directories.
