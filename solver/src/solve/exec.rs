//! RUN: a process in the executor's sandbox on an overlay snapshot of the
//! input layers, with its `--mount`s; its upperdir becomes the new layer.
//!
//! Mounts: a bind of the build context is the context directory itself,
//! read-only (or a filtered/writable copy when `.dockerignore` hides files
//! or the mount is `rw`: writes are thrown away, as in BuildKit); a bind of
//! another filesystem is a copy of its merged layers; cache mounts come
//! from `cachemount`; tmpfs is the kernel's; secrets are files the sandbox
//! copies into its private tmpfs and/or environment variables — never part
//! of the key, a layer or a log. SSH forwarding is not supported (a
//! required ssh mount fails the step, an optional one is left out).

use std::collections::VecDeque;
use std::sync::Arc;

use executor::{LogSink, Mount, MountKind, Network, RunIo, SandboxSpec, Security, SnapshotterKind};

use super::cachemount::{self, CacheDir, NewCache};
use super::error::{Error, Result};
use super::progress::{Event, Stream};
use super::value::{Done, Fs, Value};
use super::view::ReadView;
use super::{Build, Solver};
use crate::contenthash::{Selection, SourceOptions, SourceTree};
use crate::fileop::{self, CopyOptions, RootDir};
use crate::llb::{self, Exec, Vertex, VertexId};

/// Lines of output kept for the error message of a failed step.
const TAIL_LINES: usize = 20;

/// Streams a step's output to the progress and keeps its last lines.
struct StepSink<'a> {
    s: &'a Solver,
    v: VertexId,
    tail: VecDeque<String>,
    partial: Vec<u8>,
}

impl StepSink<'_> {
    fn push_line(&mut self, line: &[u8]) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        let mut l = String::from_utf8_lossy(line).into_owned();
        l.truncate(4096);
        self.tail.push_back(l);
    }
}

impl LogSink for StepSink<'_> {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        self.s.progress.event(Event::Log {
            vertex: self.v,
            stream,
            data,
        });
        for piece in data.split_inclusive(|b| *b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(body) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(body);
                    self.push_line(&line);
                }
                None => {
                    if self.partial.len() < 4096 {
                        self.partial.extend_from_slice(piece);
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.push_line(&line);
        }
    }
}

/// What must live until the step is over.
#[derive(Default)]
struct Guards {
    caches: Vec<CacheDir>,
    views: Vec<executor::Snapshot>,
    scratch: Vec<tempfile::TempDir>,
}

impl Drop for Guards {
    fn drop(&mut self) {
        for s in self.views.drain(..) {
            let _ = s.discard();
        }
    }
}

/// Runs an exec vertex; returns the input filesystem plus the new layer.
pub(crate) fn run(
    s: &Solver,
    b: &Build<'_>,
    v: VertexId,
    _vertex: &Vertex,
    e: &Exec,
    inputs: &[Arc<Done>],
) -> Result<Fs> {
    let base = match e.rootfs {
        Some(i) => inputs
            .get(i)
            .and_then(|d| d.fs())
            .cloned()
            .ok_or_else(|| Error::Invalid("exec rootfs is not a filesystem".into()))?,
        None => Fs::default(),
    };
    let lowers = base.lowers(&s.store)?;
    let scratch = s.store.temp_dir()?;
    let mut guards = Guards::default();
    let spec = spec(s, b, e, inputs, &mut guards)?;
    let mut snap = s
        .snapshotter
        .prepare(&lowers, &scratch.path().join("snap"))?;
    let log_dir = s.store.logs_dir()?.join(&s.opts.build_id);
    std::fs::create_dir_all(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
    let mut sink = StepSink {
        s,
        v,
        tail: VecDeque::new(),
        partial: Vec::new(),
    };
    let outcome = s.runtime.run(
        &mut snap,
        &spec,
        RunIo::new(&mut sink)
            .log_file(log_dir.join(format!("{v}.log")))
            .cancel(s.cancel.clone()),
    );
    drop(guards);
    let outcome = match outcome {
        Ok(o) => o,
        Err(err) => {
            let _ = snap.discard();
            return Err(err.into());
        }
    };
    if s.cancel.is_cancelled() || outcome.status == executor::Status::Cancelled {
        let _ = snap.discard();
        return Err(Error::Cancelled);
    }
    if !outcome.success() {
        let _ = snap.discard();
        let status = match outcome.status {
            executor::Status::Exited(c) if !outcome.oom_killed => format!("exit code: {c}"),
            _ => outcome.to_string(),
        };
        return Err(Error::RunFailed {
            command: e.args.join(" "),
            status,
            exit_code: outcome.exit_code(),
            tail: sink.tail.into_iter().collect(),
        });
    }
    let upper = snap.commit_unsynced()?;
    let layer = super::file::commit_dir(s, &upper, &lowers)?;
    drop(scratch);
    Ok(super::file::base_plus(&base, layer))
}

/// The sandbox spec of a RUN, with its mounts prepared.
fn spec(
    s: &Solver,
    b: &Build<'_>,
    e: &Exec,
    inputs: &[Arc<Done>],
    guards: &mut Guards,
) -> Result<SandboxSpec> {
    let mut spec = SandboxSpec::new(e.args.clone());
    spec.env = e.env.clone();
    if let Some(p) = &e.proxy_env {
        for (k, v) in &p.vars {
            for name in [k.to_ascii_uppercase(), k.to_ascii_lowercase()] {
                if !spec
                    .env
                    .iter()
                    .any(|x| x.split('=').next() == Some(name.as_str()))
                {
                    spec.env.push(format!("{name}={v}"));
                }
            }
        }
    }
    spec.cwd = if e.cwd.is_empty() {
        "/".into()
    } else {
        e.cwd.clone()
    };
    spec.user = e.user.clone();
    spec.network = match e.network {
        llb::NetworkMode::Default => s.opts.network,
        llb::NetworkMode::None => Network::None,
        llb::NetworkMode::Host => Network::Host,
    };
    spec.security = match e.security {
        llb::SecurityMode::Sandbox => Security::Sandbox,
        llb::SecurityMode::Insecure => Security::Insecure,
    };
    spec.limits = s.opts.limits;
    for m in &e.mounts {
        let kind = match &m.kind {
            llb::MountKind::Bind {
                input,
                source,
                readonly,
            } => bind(
                s,
                b,
                input.and_then(|i| inputs.get(i)),
                source,
                *readonly,
                guards,
            )?,
            llb::MountKind::Cache {
                id,
                sharing,
                from,
                source,
                mode,
                uid,
                gid,
                readonly,
            } => {
                let seed_input = from.and_then(|i| inputs.get(i)).cloned();
                let seed = |dir: &std::path::Path| -> Result<()> {
                    match &seed_input {
                        Some(d) => copy_into(s, b, Some(d), source, dir),
                        None => Ok(()),
                    }
                };
                let dir = cachemount::acquire(
                    &s.store.cache_mounts_dir()?,
                    id,
                    *sharing,
                    &NewCache {
                        mode: mode.unwrap_or(0o755),
                        uid: uid.unwrap_or(0),
                        gid: gid.unwrap_or(0),
                        seed: Some(&seed),
                    },
                )?;
                let path = dir.path.clone();
                guards.caches.push(dir);
                if *readonly {
                    MountKind::Bind {
                        source: path,
                        readonly: true,
                    }
                } else {
                    MountKind::Cache { source: path }
                }
            }
            llb::MountKind::Tmpfs { size } => MountKind::Tmpfs {
                size: (*size > 0).then_some(*size),
            },
            llb::MountKind::Secret {
                id,
                env,
                required,
                mode,
                uid,
                gid,
            } => {
                let Some(src) = s.opts.secrets.get(id) else {
                    if *required {
                        return Err(Error::SecretNotFound { id: id.clone() });
                    }
                    continue;
                };
                if let Some(var) = env {
                    let value = s.opts.secrets.value(id)?.unwrap_or_default();
                    let value = String::from_utf8(value).map_err(|_| {
                        Error::Invalid(format!(
                            "secret {id} is not valid UTF-8 and cannot be an environment variable"
                        ))
                    })?;
                    spec.env
                        .retain(|x| x.split('=').next() != Some(var.as_str()));
                    spec.env.push(format!("{var}={value}"));
                }
                if m.target.is_empty() {
                    continue;
                }
                let source = match src {
                    super::SecretSource::File(p) => {
                        std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?
                    }
                    super::SecretSource::Env(_) => {
                        let t = s.store.temp_dir()?;
                        let p = t.path().join("secret");
                        let value = s.opts.secrets.value(id)?.unwrap_or_default();
                        write_private(&p, &value)?;
                        guards.scratch.push(t);
                        p
                    }
                };
                MountKind::Secret {
                    source,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                }
            }
            llb::MountKind::Ssh { required, .. } => {
                if *required {
                    return Err(Error::Unsupported("RUN --mount=type=ssh".into()));
                }
                continue;
            }
        };
        spec.mounts.push(Mount {
            target: m.target.clone(),
            kind,
        });
    }
    Ok(spec)
}

/// Writes a file only root can read.
fn write_private(p: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    f.write_all(data).map_err(|e| Error::io(p, e))
}

/// The host directory to bind for `RUN --mount=type=bind`.
fn bind(
    s: &Solver,
    b: &Build<'_>,
    input: Option<&Arc<Done>>,
    source: &str,
    readonly: bool,
    guards: &mut Guards,
) -> Result<MountKind> {
    let rel = source.trim_start_matches('/');
    match input.map(|d| &d.value) {
        Some(Value::Context) if readonly && !b.context.is_filtered()? => {
            let dir = b.context.dir()?;
            let tree = b.context.tree()?;
            // Resolve inside the context (symlinks cannot leave it).
            if tree.resolve(rel.as_bytes(), true)?.is_none() {
                return Err(Error::Invalid(format!(
                    "bind mount source \"/{rel}\": not found in the build context"
                )));
            }
            Ok(MountKind::Bind {
                source: dir.join(rel),
                readonly: true,
            })
        }
        Some(Value::Fs(fs)) if !fs.view_layers().is_empty() => {
            // A private copy of the merged layers: writes (rw) vanish with it.
            let lowers = fs.lowers(&s.store)?;
            let t = s.store.temp_dir()?;
            let snap = executor::Snapshotter::new(SnapshotterKind::Copy)
                .prepare(&lowers, &t.path().join("bind"))?;
            let root = snap.writable_dir().to_path_buf();
            guards.views.push(snap);
            guards.scratch.push(t);
            let r = RootDir::open(&root)?;
            let (resolved, _) = r.resolve(rel)?.ok_or_else(|| {
                Error::Invalid(format!("bind mount source \"/{rel}\": not found"))
            })?;
            Ok(MountKind::Bind {
                source: root.join(resolved),
                readonly,
            })
        }
        _ => {
            // The context with .dockerignore applied or writable, or an
            // empty filesystem: a copy of what is visible.
            let t = s.store.temp_dir()?;
            let dir = t.path().join("bind");
            std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            copy_into(s, b, input, source, &dir)?;
            guards.scratch.push(t);
            Ok(MountKind::Bind {
                source: dir,
                readonly,
            })
        }
    }
}

/// Copies `source` (a directory's contents, or a file) of an input into
/// the existing directory `dest`.
fn copy_into(
    s: &Solver,
    b: &Build<'_>,
    input: Option<&Arc<Done>>,
    source: &str,
    dest: &std::path::Path,
) -> Result<()> {
    let mut _view = None;
    let tree: Arc<SourceTree> = match input.map(|d| &d.value) {
        Some(Value::Context) => b.context.tree()?,
        Some(Value::Fs(fs)) => {
            let v = ReadView::open(s, fs)?;
            let t = SourceTree::open(&v.path(), SourceOptions::rootfs())?;
            _view = Some(v);
            Arc::new(t)
        }
        None => return Ok(()),
    };
    let root = RootDir::open(dest)?;
    let sel = Selection {
        path: source.to_string(),
        follow_links: true,
        ..Default::default()
    };
    let opts = CopyOptions {
        dest: "/".into(),
        dir_contents_only: true,
        ..Default::default()
    };
    fileop::copy(&tree, &sel, &opts, &root)?;
    Ok(())
}
