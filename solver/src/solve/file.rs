//! File ops (COPY, ADD, WORKDIR, heredoc files) and HTTP sources.
//!
//! A single COPY from the context is planned against a read-only view of
//! the base (destination paths resolve through the base's symlinks exactly
//! as in the image, `--chown` names in its `/etc/passwd`) and written
//! straight into a plain directory in upperdir format that becomes the
//! layer: all of it the first time, only what changed since the previous
//! build of the step after that (a delta, see `try_delta`). Other file ops
//! with a base write into an overlay snapshot of the base's layers through
//! a detached mount (nothing is mounted anywhere; see
//! `executor::Snapshot::open_root`); the snapshot's upperdir becomes the
//! layer. A file op on scratch (`COPY --link`, heredoc sources) writes into
//! a plain directory that becomes the whole layer.

use std::path::Path;
use std::sync::Arc;

use cache::Digest;

use super::error::{Error, Result};
use super::record::{KeyParts, SourceDigest};
use super::value::{Done, Fs, Value};
use super::view::ReadView;
use super::{Build, Solver};
use crate::contenthash::{Selection, SourceOptions, SourceTree};
use crate::fileop::{self, ChownSpec, CopyOptions, Manifest, RootDir};
use crate::llb::{Chmod, Chown, CopyAction, FileAction, FileOp, HttpSource, Vertex, VertexId};

/// The source selection of a copy action.
pub(crate) fn selection(c: &CopyAction) -> Selection {
    Selection {
        path: c.src_path.clone(),
        follow_links: c.follow_symlinks,
        allow_wildcard: c.allow_wildcard,
        include: c.include_patterns.clone(),
        exclude: c.exclude_patterns.clone(),
        required: c.required_paths.clone(),
    }
}

fn chown_text(c: &Chown) -> String {
    match &c.group {
        Some(g) => format!("{}:{g}", c.user),
        None => c.user.clone(),
    }
}

fn chmod_of(c: &Chmod) -> Result<fileop::Chmod> {
    Ok(match c {
        Chmod::Octal(m) => fileop::Chmod::parse(&format!("{m:o}"))?,
        Chmod::Symbolic(s) => fileop::Chmod::parse(s)?,
    })
}

/// Where a copy reads from (and the view that must outlive the read).
struct Src {
    tree: Arc<SourceTree>,
    _view: Option<ReadView>,
}

impl Src {
    fn tree(&self) -> &SourceTree {
        &self.tree
    }
}

fn open_src(s: &Solver, b: &Build<'_>, input: Option<&Arc<Done>>) -> Result<Src> {
    let fs = match input.map(|d| &d.value) {
        Some(Value::Context) => {
            return Ok(Src {
                tree: b.context.tree()?,
                _view: None,
            });
        }
        Some(Value::Fs(fs)) => fs.clone(),
        None => Fs::default(),
    };
    let view = ReadView::open(s, &fs)?;
    let tree = SourceTree::open(&view.path(), SourceOptions::rootfs())?;
    Ok(Src {
        tree: Arc::new(tree),
        _view: Some(view),
    })
}

/// Applies one action to `root`.
fn apply(
    s: &Solver,
    b: &Build<'_>,
    root: &RootDir,
    a: &FileAction,
    inputs: &[Arc<Done>],
) -> Result<()> {
    let owner = |c: &Option<Chown>| -> Result<Option<fileop::Owner>> {
        c.as_ref()
            .map(|c| ChownSpec::parse(&chown_text(c)).resolve(root))
            .transpose()
            .map_err(Error::from)
    };
    match a {
        FileAction::Copy(c) => {
            copy(s, b, root, c, inputs)?;
        }
        FileAction::Mkdir(m) => {
            fileop::mkdir(
                root,
                &m.path,
                m.mode,
                m.make_parents,
                owner(&m.chown)?,
                None,
            )?;
        }
        FileAction::Mkfile(m) => {
            fileop::mkfile(
                root,
                &m.path,
                m.data.as_bytes(),
                m.mode,
                owner(&m.chown)?,
                None,
            )?;
        }
        FileAction::Rm(r) => {
            if r.allow_wildcard && r.path.contains(['*', '?', '[']) {
                return Err(Error::Unsupported(format!("rm of wildcard {}", r.path)));
            }
            fileop::rm(root, &r.path, r.allow_not_found)?;
        }
    }
    Ok(())
}

/// What a file op produced.
pub(crate) struct FileResult {
    /// The new filesystem (base layers + one layer).
    pub(crate) fs: Fs,
    /// For a single COPY from the context: what it wrote, so that the next
    /// build of the same step can copy only what changed.
    pub(crate) manifest: Option<Manifest>,
    /// File digests `manifest` still lacks: a first copy does not wait
    /// for the key's hashing (see `firstcopy.rs`).
    pub(crate) deferred: fileop::DeferredDigests,
}

impl FileResult {
    /// The filesystem and the complete manifest (its deferred digests
    /// filled in from the context, which the key has hashed by now).
    pub(crate) fn finish(self, b: &Build<'_>) -> Result<(Fs, Option<Manifest>)> {
        let mut manifest = self.manifest;
        if let Some(m) = manifest.as_mut() {
            self.deferred.fill(&*b.context.tree()?, m)?;
        }
        Ok((self.fs, manifest))
    }
}

/// `COPY --link --chown=NAME`: a `--link` copy is made on an empty
/// filesystem, which has no `/etc/passwd` to resolve names in. BuildKit
/// fails these (`invalid user index: -1`); say so clearly instead.
fn refuse_names_in_link(f: &FileOp) -> Result<()> {
    let named = |s: &str| s != "root" && s.parse::<u32>().is_err();
    for a in &f.actions {
        let chown = match a {
            FileAction::Copy(c) => c.chown.as_ref(),
            FileAction::Mkdir(m) => m.chown.as_ref(),
            FileAction::Mkfile(m) => m.chown.as_ref(),
            FileAction::Rm(_) => None,
        };
        if let Some(c) = chown
            && (named(&c.user) || c.group.as_deref().is_some_and(named))
        {
            return Err(Error::Invalid(format!(
                "--chown={} with --link: names cannot be resolved in a --link layer \
                 (it is built on an empty filesystem); use numeric IDs (UID:GID)",
                chown_text(c)
            )));
        }
    }
    Ok(())
}

/// The cache-table key of a copy manifest.
pub(crate) fn manifest_key(key: &str) -> String {
    format!("m:{key}")
}

/// A delta copy stacks at most this many thin layers before copying in
/// full again.
const MAX_STACKED_DELTAS: usize = 8;

/// The single context copy of a file op that a delta copy can redo.
pub(crate) fn delta_copy_action<'a>(f: &'a FileOp, inputs: &[Arc<Done>]) -> Option<&'a CopyAction> {
    if f.base.is_none() || f.actions.len() != 1 {
        return None;
    }
    match &f.actions[0] {
        FileAction::Copy(c)
            if c.src
                .and_then(|i| inputs.get(i))
                .is_some_and(|d| matches!(d.value, Value::Context)) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// Runs a file op. A single COPY from the context whose previous result
/// (same step, same definition, same base, other content) is in the cache
/// is redone as a delta: only new and changed files are written, into a
/// thin layer stacked on the previous copy's layer (see `try_delta`), when
/// `delta` (the step's key parts) is given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    s: &Solver,
    b: &Build<'_>,
    _v: VertexId,
    vertex: &Vertex,
    f: &FileOp,
    inputs: &[Arc<Done>],
    delta: Option<&KeyParts>,
) -> Result<FileResult> {
    let base = match f.base {
        Some(i) => inputs
            .get(i)
            .and_then(|d| d.fs())
            .cloned()
            .ok_or_else(|| Error::Invalid("file op base is not a filesystem".into()))?,
        None => Fs::default(),
    };
    if f.base.is_none() {
        refuse_names_in_link(f)?;
    }
    let single = delta_copy_action(f, inputs);
    if let Some(c) = single
        && let Some(parts) = delta
        && let Some(r) = try_delta(s, b, vertex, c, &base, parts)?
    {
        return Ok(r);
    }
    // The base's layers are leased (and unpacked if need be) before the
    // stat cache's write transaction starts: it would hold up the lookups.
    let lowers = base.lowers(&s.store)?;
    b.context.save_stat_cache();
    if let Some(c) = single
        && let Some(upper) = copy_to_upper(s, b, vertex, c, &base, &Manifest::default())?
    {
        // A context copy's layer is big and rarely leaves the machine: its
        // tar is only hashed now (see `commit_dir_lazy`).
        let t = std::time::Instant::now();
        let layer = commit_dir_lazy(s, &upper.dir, &lowers, base.lower_layers())?;
        tracing::debug!("{}: layer committed in {:?}", vertex.name, t.elapsed());
        return Ok(FileResult {
            fs: base_plus(&base, layer),
            manifest: Some(upper.result.manifest),
            deferred: upper.result.deferred,
        });
    }
    let mut manifest = None;
    let scratch = s.store.temp_dir()?;
    let (upper, lowers) = if f.base.is_none() {
        let upper = scratch.path().join("upper");
        std::fs::create_dir(&upper).map_err(|e| Error::io(&upper, e))?;
        let root = RootDir::open(&upper)?;
        for a in &f.actions {
            apply(s, b, &root, a, inputs)?;
        }
        drop(root);
        (upper, Vec::new())
    } else {
        let mut snap = s
            .snapshotter
            .prepare(&lowers, &scratch.path().join("snap"))?;
        let result = (|| {
            let fd = snap.open_root()?;
            let root = RootDir::from_fd(fd, Path::new(&format!("<{}>", vertex.name)))?;
            if let Some(c) = single {
                let t = std::time::Instant::now();
                manifest = Some(copy(s, b, &root, c, inputs)?);
                tracing::debug!("{}: copied in {:?}", vertex.name, t.elapsed());
                return Ok(());
            }
            for a in &f.actions {
                apply(s, b, &root, a, inputs)?;
            }
            Ok::<_, Error>(())
        })();
        if let Err(e) = result {
            let _ = snap.discard();
            return Err(e);
        }
        (snap.commit_unsynced()?, lowers)
    };
    let t = std::time::Instant::now();
    let layer = if single.is_some() && f.base.is_some() {
        // A context copy: its layer's tar is only hashed now (see
        // `commit_dir_lazy`).
        commit_dir_lazy(s, &upper, &lowers, base.lower_layers())?
    } else {
        commit_dir(s, &upper, &lowers)?
    };
    tracing::debug!("{}: layer committed in {:?}", vertex.name, t.elapsed());
    Ok(FileResult {
        fs: base_plus(&base, layer),
        manifest,
        deferred: Default::default(),
    })
}

/// Redoes a context copy as a delta over its previous result, if there is
/// one to build on: plans the copy against the base, writes only what
/// differs from the previous copy's manifest into a thin layer (whiteouts
/// for what is gone), and stacks it on the previous copy's layers for
/// later steps to run on. The image still needs one layer for the COPY:
/// its tar is the merged view of the stack (read, not copied).
fn try_delta(
    s: &Solver,
    b: &Build<'_>,
    vertex: &Vertex,
    c: &CopyAction,
    base: &Fs,
    parts: &KeyParts,
) -> Result<Option<FileResult>> {
    let step = super::record::step_key(&s.opts.dockerfile_id, &s.opts.target, &vertex.name);
    let Some(prev_key) = s.store.cache_get(&step)? else {
        return Ok(None);
    };
    let prev_key = String::from_utf8_lossy(&prev_key).into_owned();
    let vals = s.store.cache_get_many(&[
        &super::record::Record::index_key(&prev_key),
        &manifest_key(&prev_key),
    ])?;
    let (Some(rec), Some(man)) = (&vals[0], &vals[1]) else {
        return Ok(None);
    };
    let Ok(rec) = serde_json::from_slice::<super::record::Record>(rec) else {
        return Ok(None);
    };
    if rec.def != parts.def
        || rec.inputs != parts.inputs
        || rec.fs.layers.len() != base.layers.len() + 1
        || rec.fs.layers[..base.layers.len()] != base.layers[..]
    {
        return Ok(None);
    }
    let prev_view = rec.fs.view_layers();
    let base_view = base.view_layers();
    if !prev_view.starts_with(base_view) {
        return Ok(None);
    }
    let copy_part = &prev_view[base_view.len()..];
    if copy_part.is_empty() || copy_part.len() >= MAX_STACKED_DELTAS {
        return Ok(None);
    }
    let prev = Manifest::from_json(man)?;
    let copy_layers: Vec<Digest> = copy_part.iter().rev().cloned().collect();
    let copy_dirs = super::value::dirs(&s.store, &copy_layers)?;
    let base_layers = base.lower_layers();
    let base_lowers = super::value::dirs(&s.store, &base_layers)?;
    // Layers leased first: see `run`.
    b.context.save_stat_cache();
    let Some(upper) = copy_to_upper(s, b, vertex, c, base, &prev)? else {
        return Ok(None);
    };
    let mut lowers = copy_dirs.clone();
    lowers.extend(base_lowers.iter().cloned());
    let delta = commit_dir(s, &upper.dir, &lowers)?;
    let mut stack = Vec::new();
    if delta.as_str() != super::value::EMPTY_LAYER {
        stack.push(delta.clone());
    }
    stack.extend(copy_layers);
    let t1 = std::time::Instant::now();
    let layer = write_merged(
        s,
        cache::LayerRecipe {
            stack,
            lowers: base_layers,
            clamp_mtime: diff_options(s).clamp_mtime,
            own_dir: None,
        },
    )?;
    tracing::debug!("{}: image layer hashed in {:?}", vertex.name, t1.elapsed());
    let mut layers = base.layers.clone();
    layers.push(layer);
    let mut view = prev_view.to_vec();
    view.push(delta);
    Ok(Some(FileResult {
        fs: Fs {
            layers,
            view: Some(view),
        },
        manifest: Some(upper.result.manifest),
        deferred: upper.result.deferred,
    }))
}

/// A context copy written into a plain directory.
struct Upper {
    /// The directory, in upperdir format, inside `_scratch`.
    dir: std::path::PathBuf,
    result: fileop::DeltaResult,
    _scratch: tempfile::TempDir,
}

/// Writes context copy `c` into a fresh plain directory in upperdir
/// format, planned against `base` (paths resolve through its symlinks,
/// `--chown` names through its `/etc/passwd`), with only what differs from
/// `prev` (everything, when `prev` is empty) and the base's directories
/// above it. Nothing is mounted for writing: the files go straight into
/// what becomes the layer directory. `None` when the copy cannot be
/// written this way (it extracts an archive).
fn copy_to_upper(
    s: &Solver,
    b: &Build<'_>,
    vertex: &Vertex,
    c: &CopyAction,
    base: &Fs,
    prev: &Manifest,
) -> Result<Option<Upper>> {
    let t0 = std::time::Instant::now();
    let base_view = ReadView::open(s, base)?;
    let tree = b.context.tree()?;
    let opts = CopyOptions {
        // Nothing to compare with: the manifest's digests can wait for
        // the key's hashing (see `FileResult::finish`).
        defer_file_digests: prev.entries.is_empty(),
        ..copy_options(c, base_view.root())?
    };
    let scratch = s.store.temp_dir()?;
    let dir = scratch.path().join("upper");
    std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let upper_root = RootDir::open(&dir)?;
    let result = match fileop::delta_copy(
        &tree,
        &selection(c),
        &opts,
        base_view.root(),
        prev,
        &upper_root,
    ) {
        Ok(r) => r,
        Err(fileop::Error::DeltaUnsupported(why)) => {
            tracing::debug!("{}: copy through a snapshot: {why}", vertex.name);
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    tracing::debug!(
        "{}: {} wrote {} entries, {} whiteouts in {:?}",
        vertex.name,
        if prev.entries.is_empty() {
            "copy"
        } else {
            "delta copy"
        },
        result.written,
        result.deleted,
        t0.elapsed()
    );
    Ok(Some(Upper {
        dir,
        result,
        _scratch: scratch,
    }))
}

/// Records the layer `recipe` describes as a lazy layer: its tar (the
/// merged view of the recipe's stack, diffed against its lowers) is
/// written only through a hasher here — the store writes the blob when
/// someone reads it (see [`super::materialize`]). Returns its diffID.
fn write_merged(s: &Solver, recipe: cache::LayerRecipe) -> Result<Digest> {
    let stack = super::value::dirs(&s.store, &recipe.stack)?;
    let lowers = super::value::dirs(&s.store, &recipe.lowers)?;
    let clamp_mtime = recipe.clamp_mtime;
    let layer = s.store.commit_lazy_layer(recipe, |w| {
        super::materialize::write_stack_tar(&stack, &lowers, clamp_mtime, w)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })?;
    Ok(layer.diff_id)
}

fn copy_options(c: &CopyAction, dest: &RootDir) -> Result<CopyOptions> {
    Ok(CopyOptions {
        dest: c.dest.clone(),
        dir_contents_only: c.dir_contents_only,
        owner: c
            .chown
            .as_ref()
            .map(|o| ChownSpec::parse(&chown_text(o)).resolve(dest))
            .transpose()?,
        chmod: c.chmod.as_ref().map(chmod_of).transpose()?,
        timestamp: None,
        unpack: c.attempt_unpack,
        defer_file_digests: false,
    })
}

/// One copy action; returns what it wrote.
fn copy(
    s: &Solver,
    b: &Build<'_>,
    root: &RootDir,
    c: &CopyAction,
    inputs: &[Arc<Done>],
) -> Result<Manifest> {
    let src = open_src(s, b, c.src.and_then(|i| inputs.get(i)))?;
    let opts = copy_options(c, root)?;
    Ok(fileop::copy(src.tree(), &selection(c), &opts, root)?)
}

/// Commits an upperdir-format directory inside a store scratch dir as a
/// layer, its tar written against `lowers` (topmost first).
pub(crate) fn commit_dir(
    s: &Solver,
    upper: &Path,
    lowers: &[std::path::PathBuf],
) -> Result<Digest> {
    let layer = s.store.commit_layer_dir(upper, |w| {
        executor::diff::write_layer(upper, lowers, w, &diff_options(s))
            .map(|_| ())
            .map_err(std::io::Error::other)
    })?;
    Ok(layer.diff_id)
}

/// Like [`commit_dir`], but the layer's tar is only hashed: its blob is
/// written from the directory when save, push or a cache export needs it.
/// Used for context copies, whose layers are the big ones (a whole source
/// tree) and often never leave the machine: writing them a second time as
/// a blob, and making both durable, was a third of a cold copy's time.
/// `lower_layers` are the digests of `lowers`.
fn commit_dir_lazy(
    s: &Solver,
    upper: &Path,
    lowers: &[std::path::PathBuf],
    lower_layers: Vec<Digest>,
) -> Result<Digest> {
    let opts = diff_options(s);
    let layer = s
        .store
        .commit_layer_dir_lazy(upper, lower_layers, opts.clamp_mtime, |w| {
            executor::diff::write_layer(upper, lowers, w, &opts)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })?;
    Ok(layer.diff_id)
}

/// How layer tars are written: timestamps clamped to `SOURCE_DATE_EPOCH`
/// when it is set.
fn diff_options(s: &Solver) -> executor::diff::DiffOptions {
    executor::diff::DiffOptions {
        clamp_mtime: s.opts.epoch,
    }
}

/// `base` with `layer` on top.
pub(crate) fn base_plus(base: &Fs, layer: Digest) -> Fs {
    let mut layers = base.layers.clone();
    layers.push(layer.clone());
    let view = base.view.clone().map(|mut v| {
        v.push(layer);
        v
    });
    Fs { layers, view }
}

/// A downloaded URL waiting in a scratch directory.
pub(crate) struct Download {
    scratch: tempfile::TempDir,
    fetched: fileop::Fetched,
}

/// Downloads an HTTP source into a fresh store scratch directory.
pub(crate) fn download(s: &Solver, h: &HttpSource) -> Result<Download> {
    let scratch = s.store.temp_dir()?;
    let dir = scratch.path().join("upper");
    std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let fetched = fileop::fetch_url(&h.url, h.checksum.as_deref(), &dir, &h.filename)?;
    if h.mode != 0o600 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            &fetched.path,
            std::fs::Permissions::from_mode(h.mode & 0o7777),
        )
        .map_err(|e| Error::io(&fetched.path, e))?;
    }
    Ok(Download { scratch, fetched })
}

/// The key of an HTTP source: its file name and mode and its content
/// (the `--checksum`, or the digest and `Last-Modified` of a download) —
/// not the URL, as in BuildKit.
pub(crate) fn http_key(h: &HttpSource, d: Option<&Download>, epoch: Option<i64>) -> KeyParts {
    let (digest, modified) = match d {
        Some(d) => (
            d.fetched.digest.as_str().to_string(),
            d.fetched.last_modified.map(|t| t.to_string()),
        ),
        None => (h.checksum.clone().unwrap_or_default(), None),
    };
    KeyParts {
        def: serde_json::json!({
            "type": "http",
            "filename": h.filename,
            "mode": h.mode,
            "last_modified": modified,
        }),
        inputs: Vec::new(),
        sources: vec![SourceDigest {
            what: "content".into(),
            digest,
            files: Vec::new(),
        }],
        epoch,
    }
}

/// Makes the layer of an HTTP source (downloading it if not done yet).
pub(crate) fn run_http(s: &Solver, h: &HttpSource, d: Option<Download>) -> Result<Fs> {
    let d = match d {
        Some(d) => d,
        None => download(s, h)?,
    };
    let upper = d.scratch.path().join("upper");
    let layer = commit_dir(s, &upper, &[])?;
    drop(d);
    Ok(Fs {
        layers: vec![layer],
        view: None,
    })
}
