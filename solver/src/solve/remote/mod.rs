//! The remote build cache: cache records shared between machines through
//! images (inline cache), registries and OCI layout directories.
//!
//! **Import** (`--cache-from`, [`RemoteCache::import`]): a source's
//! records — cache key → the layers (diffIDs) of the result, and when it
//! was made — are read up front (one manifest and one config per source,
//! no layer). A step that misses the local cache and whose key an
//! imported record answers is a hit: its layers are *not* fetched then.
//! They are fetched lazily, only when something needs their content: a
//! later step that runs on them, or the final image
//! ([`Solver`](super::Solver) calls [`RemoteCache::ensure`]). So a build
//! whose every step hits downloads only the final image's layers, and a
//! builder stage whose output is already cached downstream downloads
//! nothing. An imported record whose layers became local is added to the
//! local cache, so the next build hits without the source.
//!
//! **Export** (`--cache-to`, [`export::export_cache`]) writes the records
//! of this build — the final image's chain (`mode=min`) or every step
//! (`mode=max`) — as a cache manifest; every image also carries its own
//! records inline (`moby.buildkit.cache.v0`, written by `image_config`).
//!
//! Keys are portable: they digest the step's definition, the content ids
//! (ChainIDs) of its inputs and the content of the context files it
//! reads — never a path of the state directory or of the context, never
//! an mtime. Formats: see [`format`].

pub mod export;
pub mod format;
mod import;
mod layout;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cache::registry::{self, Client};
use cache::{Descriptor, Digest, ImageRef, LayerHints, Store};

use super::error::{Error, Result};
use super::record::Record;
use format::Entry;
pub use spec::{CacheSource, CacheTarget, ExportMode};

/// Where an imported source's layers come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// The local store (a local image's inline cache).
    Store,
    /// A registry repository.
    Registry(ImageRef),
    /// An OCI layout directory.
    Layout(PathBuf),
}

#[derive(Debug)]
struct Source {
    label: String,
    origin: Origin,
}

/// What one import found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Records usable by kiln.
    pub records: usize,
    /// Distinct layers they name.
    pub layers: usize,
    /// Whether the source was an image's inline cache (else a cache
    /// manifest).
    pub inline: bool,
}

/// A record answering a key.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) layers: Vec<Digest>,
    pub(crate) created: String,
    pub(crate) source: String,
}

/// An imported hit to add to the local cache: its key, its step's
/// `last:` key, the record.
pub(crate) type Adopt = (String, Option<String>, Record);

/// Imported cache records and where their layers are.
pub struct RemoteCache {
    client: Option<Arc<Client>>,
    sources: Vec<Source>,
    records: HashMap<String, (Entry, usize)>,
    /// diffID → blob and the source that has it.
    blobs: HashMap<Digest, (Descriptor, usize)>,
    /// Layers known to be in the store.
    local: Mutex<HashSet<Digest>>,
    /// One fetch per layer at a time.
    fetching: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// Imported hits to add to the local cache once their layers are
    /// local: key, `last:` step key, record.
    pending: Mutex<Vec<Adopt>>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCache")
            .field("sources", &self.sources)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl RemoteCache {
    /// An empty cache; `client` is needed for registry sources.
    pub fn new(client: Option<Arc<Client>>) -> RemoteCache {
        RemoteCache {
            client,
            sources: Vec::new(),
            records: HashMap::new(),
            blobs: HashMap::new(),
            local: Mutex::new(HashSet::new()),
            fetching: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The registry client, if any.
    pub fn client(&self) -> Option<&Arc<Client>> {
        self.client.as_ref()
    }

    /// Reads a source's records (no layer is fetched). Earlier sources
    /// win for a key both have. The error names the source; callers treat
    /// it as a warning, as BuildKit does.
    pub fn import(&mut self, store: &Store, src: &CacheSource) -> Result<ImportReport> {
        let label = src.label();
        let loaded = import::load(store, self.client.as_deref(), src).map_err(|message| {
            Error::RemoteCache {
                what: format!("importing {label}"),
                message,
            }
        })?;
        let i = self.sources.len();
        let label = match src {
            CacheSource::Registry(r) if loaded.inline => {
                format!("inline cache of image {}", r.familiar())
            }
            _ => label,
        };
        self.sources.push(Source {
            label,
            origin: loaded.origin,
        });
        let mut layers: HashSet<&Digest> = HashSet::new();
        for e in &loaded.entries {
            layers.extend(e.layers.iter());
        }
        let report = ImportReport {
            records: loaded.entries.len(),
            layers: layers.len(),
            inline: loaded.inline,
        };
        for (d, desc) in loaded.blobs {
            self.blobs.entry(d).or_insert((desc, i));
        }
        for e in loaded.entries {
            // A chain whose layers cannot all be found is useless.
            let ok = matches!(self.sources[i].origin, Origin::Store)
                || e.layers
                    .iter()
                    .all(|d| self.blobs.contains_key(d) || store_has(store, d));
            if ok {
                self.records.entry(e.key.clone()).or_insert((e, i));
            }
        }
        Ok(report)
    }

    /// Whether nothing was imported.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The imported record for `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<Hit> {
        let (e, i) = self.records.get(key)?;
        Some(Hit {
            layers: e.layers.clone(),
            created: e.created.clone(),
            source: self.sources[*i].label.clone(),
        })
    }

    /// The blob of a layer this cache can fetch, and whether it is in
    /// `registry` (same registry host as the source).
    pub(crate) fn remote_blob(&self, d: &Digest) -> Option<(&Descriptor, &Origin)> {
        let (desc, i) = self.blobs.get(d)?;
        Some((desc, &self.sources[*i].origin))
    }

    /// Remembers an imported hit, to add to the local cache later.
    pub(crate) fn adopt_later(&self, key: String, step: Option<String>, rec: Record) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, step, rec));
    }

    /// Imported hits whose layers are now all in the store (taken).
    pub(crate) fn take_adoptable(&self, store: &Store) -> Vec<Adopt> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let all = std::mem::take(&mut *pending);
        let mut out = Vec::new();
        for a in all {
            if a.2.fs.layers.iter().all(|d| self.is_local(store, d)) {
                out.push(a);
            } else {
                pending.push(a);
            }
        }
        out
    }

    fn is_local(&self, store: &Store, d: &Digest) -> bool {
        if self
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(d)
        {
            return true;
        }
        let yes = store_has(store, d);
        if yes {
            self.local
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(d.clone());
        }
        yes
    }

    /// Makes sure every layer of `layers` that came from an imported
    /// source is in the store, fetching the missing ones (a few at once).
    /// `note` hears one line per layer fetched.
    pub(crate) fn ensure(
        &self,
        store: &Store,
        layers: &[Digest],
        note: &(dyn Fn(&str) + Sync),
    ) -> Result<()> {
        let mut todo: Vec<&Digest> = Vec::new();
        for d in layers {
            if self.blobs.contains_key(d) && !todo.contains(&d) && !self.is_local(store, d) {
                todo.push(d);
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let workers = self
            .client
            .as_ref()
            .map_or(3, |c| c.options().parallel)
            .clamp(1, todo.len());
        let queue = Mutex::new(todo);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                            return;
                        }
                        let Some(d) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                            return;
                        };
                        if let Err(e) = self.fetch(store, d, note) {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Fetches one layer into the store (once, whoever asks).
    fn fetch(&self, store: &Store, d: &Digest, note: &(dyn Fn(&str) + Sync)) -> Result<()> {
        let lock = self
            .fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(d.clone())
            .or_default()
            .clone();
        let _one = lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_local(store, d) {
            return Ok(());
        }
        let (desc, i) = self.blobs.get(d).expect("only known blobs are fetched");
        let src = &self.sources[*i];
        note(&format!(
            "pulling layer {} ({}) from {}",
            short(d),
            human(desc.size),
            src.label
        ));
        match &src.origin {
            Origin::Store => {
                return Err(Error::RemoteCache {
                    what: src.label.clone(),
                    message: format!("layer {d} is no longer in the store"),
                });
            }
            Origin::Registry(r) => {
                let client = self.client.as_ref().ok_or_else(|| {
                    Error::Invalid("a registry cache needs a registry client".into())
                })?;
                let repo = client.repository(r);
                registry::pull_layer(store, &repo, desc, d).map_err(|e| Error::Registry {
                    reference: format!("layer {d} of {}", src.label),
                    source: Box::new(e),
                })?;
            }
            Origin::Layout(dir) => {
                let p = layout::blob_path(dir, &desc.digest);
                let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
                store
                    .ingest_layer(
                        std::io::BufReader::with_capacity(1 << 17, f),
                        LayerHints {
                            blob_digest: Some(&desc.digest),
                            diff_id: Some(d),
                            media_type: Some(&desc.media_type),
                        },
                    )
                    .map_err(|e| Error::RemoteCache {
                        what: format!("layer {d} of {}", src.label),
                        message: e.to_string(),
                    })?;
            }
        }
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(d.clone());
        Ok(())
    }
}

fn store_has(store: &Store, d: &Digest) -> bool {
    matches!(store.layer(d), Ok(Some(_)))
}

/// The first 12 hex digits.
pub(crate) fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

/// `12.3MB`, as docker prints sizes.
pub(crate) fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}
