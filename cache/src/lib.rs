//! The content-addressed store.
//!
//! Owns the state directory: blobs addressed by digest, unpacked layer
//! directories, image records and tags, the build-cache index (all metadata
//! in one transactional database), image archives (docker-archive, OCI
//! layout) and, later, the registry client. Every write is atomic.
