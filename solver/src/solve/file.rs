//! File ops (COPY, ADD, WORKDIR, heredoc files) and HTTP sources.
//!
//! A file op with a base writes into an overlay snapshot of the base's
//! layers through a detached mount (nothing is mounted anywhere; see
//! `executor::Snapshot::open_root`), so destination paths resolve through
//! the base's symlinks exactly as in the image and `--chown` names resolve
//! in its `/etc/passwd`. The snapshot's upperdir becomes the layer. A file
//! op on scratch (`COPY --link`, heredoc sources) writes into a plain
//! directory that becomes the whole layer.

use std::path::Path;
use std::sync::Arc;

use cache::Digest;

use super::error::{Error, Result};
use super::record::{KeyParts, SourceDigest};
use super::value::{Done, Fs, Value};
use super::view::ReadView;
use super::{Build, Solver};
use crate::contenthash::{Selection, SourceOptions, SourceTree};
use crate::fileop::{self, ChownSpec, CopyOptions, RootDir};
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
            let src = open_src(s, b, c.src.and_then(|i| inputs.get(i)))?;
            let opts = CopyOptions {
                dest: c.dest.clone(),
                dir_contents_only: c.dir_contents_only,
                owner: owner(&c.chown)?,
                chmod: c.chmod.as_ref().map(chmod_of).transpose()?,
                timestamp: None,
                unpack: c.attempt_unpack,
            };
            fileop::copy(src.tree(), &selection(c), &opts, root)?;
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

/// Runs a file op; returns the new filesystem (base layers + one layer).
pub(crate) fn run(
    s: &Solver,
    b: &Build<'_>,
    _v: VertexId,
    vertex: &Vertex,
    f: &FileOp,
    inputs: &[Arc<Done>],
) -> Result<Fs> {
    let base = match f.base {
        Some(i) => inputs
            .get(i)
            .and_then(|d| d.fs())
            .cloned()
            .ok_or_else(|| Error::Invalid("file op base is not a filesystem".into()))?,
        None => Fs::default(),
    };
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
        let lowers = base.lowers(&s.store)?;
        let mut snap = s
            .snapshotter
            .prepare(&lowers, &scratch.path().join("snap"))?;
        let result = (|| {
            let fd = snap.open_root()?;
            let root = RootDir::from_fd(fd, Path::new(&format!("<{}>", vertex.name)))?;
            for a in &f.actions {
                apply(s, b, &root, a, inputs)?;
            }
            Ok::<_, Error>(())
        })();
        if let Err(e) = result {
            let _ = snap.discard();
            return Err(e);
        }
        (snap.commit()?, lowers)
    };
    let layer = commit_dir(s, &upper, &lowers)?;
    Ok(base_plus(&base, layer))
}

/// Commits an upperdir-format directory inside a store scratch dir as a
/// layer, its tar written against `lowers` (topmost first).
pub(crate) fn commit_dir(
    s: &Solver,
    upper: &Path,
    lowers: &[std::path::PathBuf],
) -> Result<Digest> {
    let layer = s.store.commit_layer_dir(upper, |w| {
        executor::diff::write_layer(upper, lowers, w, &executor::diff::DiffOptions::default())
            .map(|_| ())
            .map_err(std::io::Error::other)
    })?;
    Ok(layer.diff_id)
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
pub(crate) fn http_key(h: &HttpSource, d: Option<&Download>) -> KeyParts {
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
