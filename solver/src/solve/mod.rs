//! Running a build graph: the scheduler, the cache, and the ops.
//!
//! [`Solver::solve`] takes a compiled [`Definition`] and produces the
//! target stage's filesystem and the layer of every history entry:
//!
//! - only the vertices the target needs are run (the ancestors of the
//!   target's output and of its history layers); the frontend already
//!   merged identical vertices, so each runs once;
//! - up to `jobs` vertices run at once, each as soon as its inputs are done
//!   (independent stages run in parallel);
//! - every RUN, COPY/ADD, WORKDIR… has a content-addressed cache key
//!   ([`record`]): its definition, its inputs' content ids, and the digest
//!   of exactly the context files it reads. A key found in the store's
//!   cache index is a hit: the recorded layers are used, nothing runs and
//!   nothing is unpacked. A miss runs the op on an overlay snapshot of the
//!   input layers (RUN in the executor's sandbox, file ops in kiln through
//!   a detached overlay mount), commits the new layer to the store and
//!   records the entry, pinning its layers. A context COPY that no entry
//!   can answer (nothing of its shape recorded, or the cache off) is
//!   copied while its key is hashed (`firstcopy`);
//! - Ctrl-C ([`Solver::cancel_token`]) kills running sandboxes; every
//!   scratch directory is discarded and the store stays consistent.
//!
//! The result ([`Solution`]) feeds [`export`](export::image_config), which
//! writes the image config and history exactly as BuildKit does.
//!
//! Seams: base images come through [`BaseImages`] (local store now, a
//! registry later); progress goes to a [`Progress`]; secrets come from
//! [`Secrets`].

mod cachemount;
mod error;
mod exec;
mod explain;
mod export;
mod file;
mod firstcopy;
mod graph;
mod images;
mod materialize;
mod progress;
mod record;
pub mod remote;
mod secrets;
mod source;
mod statcache;
mod value;
mod view;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use cache::Store;
use executor::{CancelToken, Limits, Network, Runtime, Snapshotter};

pub use error::{Error, Result, StepRef};
pub use export::{ExportOptions, ExportedImage, commit_image, image_config};
pub use images::{BaseImage, BaseImages, Notify, PullPolicy, RegistryImages, StoreImages};
pub use materialize::LayerMaterializer;
pub use progress::{Event, NullProgress, Progress, Stream};
pub use remote::RemoteCache;
pub use secrets::{SecretSource, Secrets};
pub use statcache::StoreStatCache;

use crate::llb::{Definition, Op, Vertex, VertexId};
use record::{KeyParts, Record};
use source::Context;
use value::{Done, Fs, Value};

/// Which steps ignore the cache (their results are still recorded, as in
/// BuildKit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NoCache {
    /// Use the cache everywhere.
    #[default]
    Nothing,
    /// `--no-cache`: every RUN, COPY, ADD, WORKDIR….
    All,
    /// `--no-cache-filter`: the steps of these stages (names, lower case).
    Stages(Vec<String>),
}

/// How to solve.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Vertices run at once (at least 1).
    pub jobs: usize,
    /// Steps that ignore the cache.
    pub no_cache: NoCache,
    /// The network of `RUN --network=default` steps (`--network`).
    pub network: Network,
    /// Limits of every RUN (`--memory`, `--cpus`).
    pub limits: Limits,
    /// `--secret`s.
    pub secrets: Secrets,
    /// The build context directory (`None`: an empty context).
    pub context: Option<PathBuf>,
    /// A name for this build's logs (`<store>/logs/<build_id>/`).
    pub build_id: String,
    /// Identifies the Dockerfile across builds (its absolute path), for
    /// the `last:` index that explains misses.
    pub dockerfile_id: String,
    /// `--target` (empty: the last stage).
    pub target: String,
    /// Report why each step missed the cache (a status line per step).
    pub explain: bool,
    /// `SOURCE_DATE_EPOCH`: layer timestamps are clamped to it and the
    /// image's times are set to it, for reproducible images.
    pub epoch: Option<i64>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            no_cache: NoCache::Nothing,
            network: Network::Host,
            limits: Limits::default(),
            secrets: Secrets::default(),
            context: None,
            build_id: format!("build-{}", std::process::id()),
            dockerfile_id: String::new(),
            target: String::new(),
            explain: false,
            epoch: None,
        }
    }
}

/// Runs build graphs against a store.
pub struct Solver {
    store: Arc<Store>,
    images: Arc<dyn BaseImages>,
    progress: Arc<dyn Progress>,
    opts: SolveOptions,
    cancel: CancelToken,
    runtime: Runtime,
    snapshotter: Snapshotter,
    /// Imported cache records (`--cache-from`).
    remote: Option<Arc<RemoteCache>>,
}

impl std::fmt::Debug for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Solver")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// What a solve produced: every needed vertex's result.
#[derive(Debug)]
pub struct Solution {
    done: Vec<Option<Arc<Done>>>,
    cached: Vec<bool>,
    /// The cache key of each keyed vertex (RUN, COPY, ADD…).
    keys: Vec<Option<String>>,
}

impl Solution {
    /// Whether vertex `v` came from the cache.
    pub fn was_cached(&self, v: VertexId) -> bool {
        self.cached.get(v).copied().unwrap_or(false)
    }

    /// How many needed vertices ran, and how many came from the cache.
    pub fn counts(&self) -> (usize, usize) {
        let total = self.done.iter().filter(|d| d.is_some()).count();
        let cached = self.cached.iter().filter(|c| **c).count();
        (total - cached, cached)
    }

    pub(crate) fn get(&self, v: VertexId) -> Option<&Arc<Done>> {
        self.done.get(v).and_then(Option::as_ref)
    }

    /// Every keyed result of the build, in graph order, as cache entries
    /// to export: the key, the result's layers and when it was made (at
    /// most `epoch`, as the image's history is, so that exported metadata
    /// stays reproducible).
    pub(crate) fn cache_entries(&self, epoch: Option<i64>) -> Vec<remote::format::Entry> {
        let clamp = epoch.and_then(|e| jiff::Timestamp::from_second(e).ok());
        let mut out: Vec<remote::format::Entry> = Vec::new();
        for (v, key) in self.keys.iter().enumerate() {
            let (Some(key), Some(done)) = (key, self.get(v)) else {
                continue;
            };
            let Some(fs) = done.fs() else { continue };
            if fs.layers.is_empty() || out.iter().any(|e| &e.key == key) {
                continue;
            }
            let mut created = done.created.clone().unwrap_or_default();
            if let Some(at) = clamp {
                let later = match created.parse::<jiff::Timestamp>() {
                    Ok(t) => t > at,
                    Err(_) => true,
                };
                if later {
                    created = at.to_string();
                }
            }
            out.push(remote::format::Entry {
                key: key.clone(),
                layers: fs.layers.clone(),
                created,
            });
        }
        out
    }
}

/// Per-solve state shared by the workers.
struct Build<'d> {
    def: &'d Definition,
    context: Context,
    results: Vec<OnceLock<Arc<Done>>>,
    cached: Vec<OnceLock<bool>>,
    keys: Vec<OnceLock<String>>,
    single_stage: bool,
}

impl Solver {
    /// A solver on `store`, taking base images from `images` and reporting
    /// to `progress`.
    pub fn new(
        store: Arc<Store>,
        images: Arc<dyn BaseImages>,
        progress: Arc<dyn Progress>,
        opts: SolveOptions,
    ) -> Result<Solver> {
        Ok(Solver {
            store,
            images,
            progress,
            opts,
            cancel: CancelToken::new(),
            runtime: Runtime::new(),
            snapshotter: Snapshotter::from_env()?,
            remote: None,
        })
    }

    /// Consults `remote` (imported `--cache-from` records) for steps the
    /// local cache does not have.
    pub fn with_remote_cache(mut self, remote: Arc<RemoteCache>) -> Solver {
        self.remote = Some(remote);
        self
    }

    /// Cancelling this token stops the build: running steps are killed
    /// and [`Solver::solve`] returns [`Error::Cancelled`].
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The base images.
    pub fn images(&self) -> &Arc<dyn BaseImages> {
        &self.images
    }

    /// Runs what the target of `def` needs.
    pub fn solve(&self, def: &Definition) -> Result<Solution> {
        let needed = graph::needed(def);
        let n = def.vertices.len();
        let build = Build {
            def,
            context: Context::new(
                self.opts.context.clone(),
                Arc::new(StoreStatCache::new(self.store.clone())),
            ),
            results: (0..n).map(|_| OnceLock::new()).collect(),
            cached: (0..n).map(|_| OnceLock::new()).collect(),
            keys: (0..n).map(|_| OnceLock::new()).collect(),
            single_stage: def.stages.len() == 1,
        };
        let deps = graph::Deps::new(def, &needed);
        let sched = Mutex::new(graph::Sched::new(&deps));
        let wake = Condvar::new();
        let jobs = self.opts.jobs.max(1);
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| self.worker(&build, &deps, &sched, &wake));
            }
        });
        let sched = sched.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = sched.failed {
            return Err(e);
        }
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(Solution {
            done: build.results.into_iter().map(|r| r.into_inner()).collect(),
            cached: build
                .cached
                .into_iter()
                .map(|c| c.into_inner().unwrap_or(false))
                .collect(),
            keys: build.keys.into_iter().map(|k| k.into_inner()).collect(),
        })
    }

    fn worker(
        &self,
        build: &Build<'_>,
        deps: &graph::Deps,
        sched: &Mutex<graph::Sched>,
        wake: &Condvar,
    ) {
        loop {
            let v = {
                let mut s = sched.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if s.failed.is_some() || s.is_finished() {
                        return;
                    }
                    if let Some(v) = s.ready.pop_front() {
                        break v;
                    }
                    s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            };
            let r = if self.cancel.is_cancelled() {
                Err(Error::Cancelled)
            } else {
                self.process(build, v)
            };
            let mut s = sched.lock().unwrap_or_else(|e| e.into_inner());
            match r {
                Ok(done) => {
                    let _ = build.results[v].set(done);
                    s.finish(v, deps);
                }
                Err(e) => {
                    if s.failed.is_none() {
                        s.failed = Some(e);
                    }
                    self.cancel.cancel();
                }
            }
            wake.notify_all();
        }
    }

    /// Runs (or finds in the cache) one vertex whose inputs are done.
    fn process(&self, build: &Build<'_>, v: VertexId) -> Result<Arc<Done>> {
        let vertex = &build.def.vertices[v];
        let inputs: Vec<Arc<Done>> = vertex
            .inputs
            .iter()
            .map(|o| {
                build.results[o.vertex]
                    .get()
                    .cloned()
                    .ok_or_else(|| Error::Invalid(format!("vertex {v}: input not done")))
            })
            .collect::<Result<_>>()?;
        let start = Instant::now();
        let wrap = |e: Error| {
            if matches!(e, Error::Cancelled) {
                return e;
            }
            self.progress.event(Event::Failed {
                vertex: v,
                elapsed: start.elapsed(),
                error: &e.to_string(),
            });
            Error::Vertex {
                vertex: v,
                name: vertex.name.clone(),
                lines: vertex.lines,
                source: Box::new(e),
            }
        };
        match &vertex.op {
            Op::Local(l) => {
                self.progress.event(Event::Started {
                    vertex: v,
                    name: &vertex.name,
                });
                build.context.open(l).map_err(wrap)?;
                self.progress.event(Event::Done {
                    vertex: v,
                    elapsed: start.elapsed(),
                });
                Ok(Arc::new(Done {
                    value: Value::Context,
                    layer: None,
                    created: None,
                }))
            }
            Op::Image(i) => {
                let img = self
                    .images
                    .resolve(&i.reference, &i.platform)
                    .map_err(wrap)?;
                let _ = build.cached[v].set(true);
                self.progress.event(Event::Cached {
                    vertex: v,
                    name: &vertex.name,
                });
                Ok(Arc::new(Done {
                    value: Value::Fs(Fs {
                        layers: img.layers.clone(),
                        view: None,
                    }),
                    layer: None,
                    created: None,
                }))
            }
            Op::Merge(m) => {
                let mut fs = Fs::default();
                let mut view: Vec<cache::Digest> = Vec::new();
                let mut has_view = false;
                for i in &m.inputs {
                    if let Some(f) = i.and_then(|i| inputs[i].fs()) {
                        fs.layers.extend(f.layers.iter().cloned());
                        view.extend(f.view_layers().iter().cloned());
                        has_view |= f.view.is_some();
                    }
                }
                if has_view {
                    fs.view = Some(view);
                }
                let _ = build.cached[v].set(true);
                Ok(Arc::new(Done {
                    value: Value::Fs(fs),
                    layer: None,
                    created: None,
                }))
            }
            Op::Git(g) => Err(wrap(Error::Unsupported(format!(
                "ADD of git repository {}",
                g.remote
            )))),
            Op::Exec(_) | Op::File(_) | Op::Http(_) => {
                self.keyed(build, v, vertex, &inputs, start).map_err(wrap)
            }
        }
    }

    /// Exec, File and Http: cache lookup, else run and record.
    fn keyed(
        &self,
        build: &Build<'_>,
        v: VertexId,
        vertex: &Vertex,
        inputs: &[Arc<Done>],
        start: Instant,
    ) -> Result<Arc<Done>> {
        let ignore = self.ignores_cache(build, vertex);
        if let Op::File(f) = &vertex.op
            && self.copies_before_keying(vertex, f, inputs, ignore)?
        {
            return self.copy_while_keying(build, v, vertex, f, inputs, ignore, start);
        }
        // ADD <url> without --checksum: the key needs the content.
        let mut download = None;
        let parts = match &vertex.op {
            Op::Http(h) if h.checksum.is_none() => {
                self.progress.event(Event::Started {
                    vertex: v,
                    name: &vertex.name,
                });
                let d = file::download(self, h)?;
                let parts = file::http_key(h, Some(&d), self.opts.epoch);
                download = Some(d);
                parts
            }
            Op::Http(h) => file::http_key(h, None, self.opts.epoch),
            _ => {
                let t = Instant::now();
                let parts = self.key_parts(build, vertex, inputs)?;
                tracing::debug!("{}: cache key in {:?}", vertex.name, t.elapsed());
                parts
            }
        };
        let key = parts.key();
        let _ = build.keys[v].set(key.clone());
        if !ignore && let Some(rec) = self.lookup(&key)? {
            return Ok(self.hit(build, v, vertex, rec));
        }
        if !ignore && let Some(done) = self.remote_hit(v, vertex, &key, &parts, start) {
            let _ = build.cached[v].set(true);
            return Ok(done);
        }
        if download.is_none() {
            self.progress.event(Event::Started {
                vertex: v,
                name: &vertex.name,
            });
        }
        // Inputs that came from an imported cache are fetched now that
        // something needs their content.
        self.ensure_inputs(v, inputs)?;
        if self.opts.explain && vertex.lines.is_some() {
            let why = if ignore {
                "the cache is disabled for this step (--no-cache)".to_string()
            } else {
                let why = explain::explain(self.previous(vertex)?.as_ref(), &parts);
                match &self.remote {
                    Some(_) => format!("{why}; no imported cache record matches either"),
                    None => why,
                }
            };
            self.progress.event(Event::Status {
                vertex: v,
                text: &format!("cache miss: {why}"),
            });
        }
        if !matches!(vertex.op, Op::File(_)) {
            // No lookups left (file ops save after their delta lookups).
            build.context.save_stat_cache();
        }
        let mut manifest = None;
        let fs = match &vertex.op {
            Op::Exec(e) => exec::run(self, build, v, vertex, e, inputs)?,
            Op::File(f) => {
                let delta = (!ignore).then_some(&parts);
                let (fs, m) = file::run(self, build, v, vertex, f, inputs, delta)?.finish(build)?;
                manifest = m;
                fs
            }
            Op::Http(h) => file::run_http(self, h, download)?,
            _ => unreachable!("only keyed ops get here"),
        };
        self.finish(v, vertex, &key, parts, fs, manifest, start)
    }

    /// A step answered by the local cache entry `rec`.
    fn hit(&self, build: &Build<'_>, v: VertexId, vertex: &Vertex, rec: Record) -> Arc<Done> {
        let _ = build.cached[v].set(true);
        self.progress.event(Event::Cached {
            vertex: v,
            name: &vertex.name,
        });
        Arc::new(Done {
            value: Value::Fs(rec.fs),
            layer: rec.layer,
            created: Some(rec.created),
        })
    }

    /// Records the result `fs` of a step that ran under `key` and reports
    /// it done.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        v: VertexId,
        vertex: &Vertex,
        key: &str,
        parts: KeyParts,
        fs: Fs,
        manifest: Option<crate::fileop::Manifest>,
        start: Instant,
    ) -> Result<Arc<Done>> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let shape = record::shape_key(&parts.def, &parts.inputs, parts.epoch);
        let layer = fs.layers.last().cloned();
        let created = now_rfc3339();
        let elapsed = start.elapsed();
        let rec = Record {
            v: record::KEY_VERSION,
            op: vertex.op.kind().to_string(),
            name: vertex.name.clone(),
            def: parts.def,
            inputs: parts.inputs,
            sources: parts.sources,
            fs: fs.clone(),
            layer: layer.clone(),
            created: created.clone(),
            duration_ms: elapsed.as_millis() as u64,
        };
        self.record(key, &rec, &shape, vertex, manifest.as_ref())?;
        self.progress.event(Event::Done { vertex: v, elapsed });
        Ok(Arc::new(Done {
            value: Value::Fs(fs),
            layer,
            created: Some(created),
        }))
    }

    /// A step answered by an imported cache record: its layers are not
    /// fetched until something needs them.
    fn remote_hit(
        &self,
        v: VertexId,
        vertex: &Vertex,
        key: &str,
        parts: &KeyParts,
        start: Instant,
    ) -> Option<Arc<Done>> {
        let rc = self.remote.as_ref()?;
        let hit = rc.lookup(key)?;
        self.progress.event(Event::Cached {
            vertex: v,
            name: &vertex.name,
        });
        if self.opts.explain {
            self.progress.event(Event::Status {
                vertex: v,
                text: &format!("cache hit: imported from {}", hit.source),
            });
        }
        let fs = Fs {
            layers: hit.layers,
            view: None,
        };
        let layer = fs.layers.last().cloned();
        let created = if hit.created.is_empty() {
            now_rfc3339()
        } else {
            hit.created
        };
        let step = vertex
            .lines
            .is_some()
            .then(|| record::step_key(&self.opts.dockerfile_id, &self.opts.target, &vertex.name));
        rc.adopt_later(
            key.to_string(),
            step,
            Record {
                v: record::KEY_VERSION,
                op: vertex.op.kind().to_string(),
                name: vertex.name.clone(),
                def: parts.def.clone(),
                inputs: parts.inputs.clone(),
                sources: parts.sources.clone(),
                fs: fs.clone(),
                layer: layer.clone(),
                created: created.clone(),
                duration_ms: start.elapsed().as_millis() as u64,
            },
        );
        Some(Arc::new(Done {
            value: Value::Fs(fs),
            layer,
            created: Some(created),
        }))
    }

    /// Fetches the layers of `inputs` that an imported cache answered and
    /// that are not in the store yet (status lines on vertex `v`).
    fn ensure_inputs(&self, v: VertexId, inputs: &[Arc<Done>]) -> Result<()> {
        let Some(rc) = &self.remote else {
            return Ok(());
        };
        let mut layers: Vec<cache::Digest> = Vec::new();
        for i in inputs {
            if let Some(fs) = i.fs() {
                layers.extend(fs.all_layers());
            }
        }
        let note = |text: &str| self.progress.event(Event::Status { vertex: v, text });
        rc.ensure(&self.store, &layers, &note)
    }

    /// Makes sure every layer of an image to store is local (fetching
    /// what imported records answered), then adds the imported records
    /// whose layers are all local to the local cache. `note` hears a line
    /// per fetched layer.
    pub fn ensure_layers(
        &self,
        layers: &[cache::Digest],
        note: &(dyn Fn(&str) + Sync),
    ) -> Result<()> {
        let Some(rc) = &self.remote else {
            return Ok(());
        };
        rc.ensure(&self.store, layers, note)?;
        let adopt = rc.take_adoptable(&self.store);
        if adopt.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(adopt.len());
        for (key, step, rec) in &adopt {
            let bytes = serde_json::to_vec(rec).map_err(|e| Error::BadRecord {
                key: key.clone(),
                message: e.to_string(),
            })?;
            let shape = record::shape_key(&rec.def, &rec.inputs, self.opts.epoch);
            entries.push((key, step, bytes, rec.fs.all_layers(), shape));
        }
        self.store.cache_batch(|b| {
            for (key, step, bytes, pins, shape) in &entries {
                b.put(&Record::index_key(key), bytes, pins)?;
                b.put(shape, &[], &[])?;
                if let Some(step) = step {
                    b.put(step, key.as_bytes(), &[])?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The entry this step had in its last build, if it is still there.
    fn previous(&self, vertex: &Vertex) -> Result<Option<Record>> {
        let step = record::step_key(&self.opts.dockerfile_id, &self.opts.target, &vertex.name);
        match self.store.cache_get(&step)? {
            Some(k) => self.lookup(&String::from_utf8_lossy(&k)),
            None => Ok(None),
        }
    }

    fn lookup(&self, key: &str) -> Result<Option<Record>> {
        let Some(bytes) = self.store.cache_get(&Record::index_key(key))? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.v == record::KEY_VERSION => Ok(Some(r)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!("ignoring unreadable build cache entry {key}: {e}");
                Ok(None)
            }
        }
    }

    fn record(
        &self,
        key: &str,
        rec: &Record,
        shape: &str,
        vertex: &Vertex,
        manifest: Option<&crate::fileop::Manifest>,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::BadRecord {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        let pins = rec.fs.all_layers();
        let step = record::step_key(&self.opts.dockerfile_id, &self.opts.target, &vertex.name);
        self.store.cache_batch(|b| {
            b.put(&Record::index_key(key), &bytes, &pins)?;
            b.put(shape, &[], &[])?;
            if let Some(m) = manifest {
                b.put(&file::manifest_key(key), &m.to_json(), &[])?;
            }
            if vertex.lines.is_some() {
                b.put(&step, key.as_bytes(), &[])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The cache key's ingredients for an Exec or File vertex.
    fn key_parts(
        &self,
        build: &Build<'_>,
        vertex: &Vertex,
        inputs: &[Arc<Done>],
    ) -> Result<KeyParts> {
        let (def, ids) = shape(vertex, inputs)?;
        let is_ctx = |i: Option<usize>| {
            i.and_then(|i| inputs.get(i))
                .is_some_and(|d| matches!(d.value, Value::Context))
        };
        let mut sources = Vec::new();
        match &vertex.op {
            Op::File(f) => {
                for (n, a) in f.actions.iter().enumerate() {
                    if let crate::llb::FileAction::Copy(c) = a
                        && is_ctx(c.src)
                    {
                        let sel = file::selection(c);
                        sources.push(
                            build
                                .context
                                .source_digest(format!("copy[{n}] {}", c.src_path), &sel)?,
                        );
                    }
                }
            }
            Op::Exec(e) => {
                for m in &e.mounts {
                    let src = match &m.kind {
                        crate::llb::MountKind::Bind { input, source, .. } if is_ctx(*input) => {
                            source
                        }
                        crate::llb::MountKind::Cache {
                            from: Some(i),
                            source,
                            ..
                        } if is_ctx(Some(*i)) => source,
                        _ => continue,
                    };
                    let sel = crate::contenthash::Selection {
                        path: src.clone(),
                        follow_links: true,
                        ..Default::default()
                    };
                    sources.push(
                        build
                            .context
                            .source_digest(format!("mount {}", m.target), &sel)?,
                    );
                }
            }
            _ => {}
        }
        Ok(KeyParts {
            def,
            inputs: ids,
            sources,
            epoch: self.opts.epoch,
        })
    }

    /// `--no-cache` / `--no-cache-filter` for this vertex.
    fn ignores_cache(&self, build: &Build<'_>, vertex: &Vertex) -> bool {
        match &self.opts.no_cache {
            NoCache::Nothing => false,
            NoCache::All => true,
            NoCache::Stages(names) => {
                let stage = graph::stage_of_name(&vertex.name);
                match stage {
                    Some(s) => names.iter().any(|n| n.eq_ignore_ascii_case(s)),
                    None if build.single_stage && !vertex.name.starts_with("[internal]") => {
                        let st = &build.def.stages[0];
                        names.iter().any(|n| {
                            st.name
                                .as_deref()
                                .is_some_and(|s| s.eq_ignore_ascii_case(n))
                                || n == &format!("stage-{}", st.index)
                        })
                    }
                    None => false,
                }
            }
        }
    }
}

/// The parts of a vertex's key that do not read the context: its
/// normalised definition and its inputs' content ids.
fn shape(vertex: &Vertex, inputs: &[Arc<Done>]) -> Result<(serde_json::Value, Vec<String>)> {
    let def = serde_json::to_value(&vertex.op).map_err(|e| Error::Invalid(e.to_string()))?;
    let ids = inputs
        .iter()
        .map(|d| match &d.value {
            Value::Fs(f) => f.id(),
            Value::Context => "context".to_string(),
        })
        .collect();
    Ok((def, ids))
}

/// Now, RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
