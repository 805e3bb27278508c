//! The registry client: OCI distribution API v2 over HTTP(S).
//!
//! Owns talking to registries — manifests and indexes (OCI and docker
//! schema 2), platform selection, blobs, uploads, authentication
//! (anonymous, Basic, Bearer tokens following `WWW-Authenticate`,
//! credentials from docker's `config.json`) — and the two operations
//! built on it that touch the store: [`pull_image`] and [`push_image`].
//!
//! Blocking I/O (`ureq` with rustls) on the caller's thread, plus
//! `parallel` scoped threads for layer transfers; nothing is buffered
//! whole except manifests and configs (at most [`METADATA_LIMIT`]).
//!
//! # Entry points
//! - [`Client::new`]`(`[`ClientOptions::from_env`]`()?)` — one per process;
//!   `Client::login` checks credentials.
//! - [`resolve`] — reference + platform → manifest digest, config, layers
//!   (for `FROM`: pin [`ResolvedImage::digest`]).
//! - [`pull_image`] / [`push_image`] — whole images, store ⇄ registry.
//! - [`Repository`] (`Client::repository`, `Client::repository_for_push`)
//!   — the generic calls cache export/import need: `get_manifest`,
//!   `head_manifest`, `put_manifest`, `blob_exists`, `fetch_blob`,
//!   `fetch_blob_bytes`, `push_blob_file`, `push_blob_bytes`.
//! - [`Credentials`] — docker's `config.json` (`kiln login/logout`).
//!
//! See `docs/registry.md` for the behaviour (retries, resume, chunking,
//! compression) and the commands.
//!
//! [`METADATA_LIMIT`]: crate::METADATA_LIMIT

mod blob_reader;
mod challenge;
mod client;
mod credentials;
mod error;
mod manifest;
mod options;
mod pgzip;
mod platform;
mod progress;
mod pull;
mod push;
mod repository;
mod upload;

pub use blob_reader::BlobReader;
pub use client::Client;
pub use credentials::{Credential, Credentials, DOCKER_HUB_KEY, server_key};
pub use error::{Error, Result};
pub use manifest::{
    IndexEntry, ManifestFormat, build_index, build_manifest, parse_index, select_platform,
};
pub use options::{ClientOptions, ENV_CHUNK_SIZE, ENV_INSECURE, ENV_RETRIES, ENV_TIMEOUT};
pub use platform::Platform;
pub use progress::{BlobOutcome, Event, NoProgress, Progress};
pub use pull::{Pulled, ResolvedImage, pull_image, pull_layer, resolve};
pub use push::{LayerCompression, PushOptions, Pushed, push_image, push_layer};
pub use repository::{FetchedManifest, Repository};
