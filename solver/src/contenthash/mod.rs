//! Content hashing (placeholder while the context module lands).
