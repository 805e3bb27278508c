//! File operations (placeholder while the context module lands).
