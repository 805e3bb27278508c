//! The first build of a context copy: the copy runs while its key is
//! computed.
//!
//! A COPY's key needs the digest of every selected context file, and a
//! cold context has no stat-cache entries to answer it: reading and
//! hashing 400 MB takes as long as copying it. When no entry can hit
//! anyway — the cache is off for the step, or the store has never
//! recorded an entry of the step's *shape* (definition and inputs, see
//! [`record::shape_key`]) and has no earlier build of the step to do a
//! delta against — there is nothing to wait for: the copy starts at once
//! and the key is hashed beside it, on the cores the copy leaves idle
//! (its commit mostly waits for the disk). The key is still checked once
//! known, so a shape index that lags behind the entries (a store written
//! before it existed) costs a redundant copy, never a wrong result.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::error::{Error, Result};
use super::progress::Event;
use super::value::Done;
use super::{Build, Solver, file, record, shape};
use crate::llb::{FileOp, Vertex, VertexId};

impl Solver {
    /// Whether `f` is a context copy that no cache entry can answer, so
    /// it may run before its key is known. Not with `--explain-cache`
    /// (the explanation compares keys first) nor with imported caches
    /// (their entries are not in the shape index).
    pub(super) fn copies_before_keying(
        &self,
        vertex: &Vertex,
        f: &FileOp,
        inputs: &[Arc<Done>],
        ignore: bool,
    ) -> Result<bool> {
        if self.opts.explain
            || self.remote.is_some()
            || file::delta_copy_action(f, inputs).is_none()
        {
            return Ok(false);
        }
        if ignore {
            return Ok(true);
        }
        let (def, ids) = shape(vertex, inputs)?;
        let step = record::step_key(&self.opts.dockerfile_id, &self.opts.target, &vertex.name);
        let seen = self
            .store
            .cache_get_many(&[&step, &record::shape_key(&def, &ids, self.opts.epoch)])?;
        Ok(seen.iter().all(Option::is_none))
    }

    /// Runs context copy `f` while its key is hashed on another thread,
    /// then records the result under that key.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_while_keying(
        &self,
        build: &Build<'_>,
        v: VertexId,
        vertex: &Vertex,
        f: &FileOp,
        inputs: &[Arc<Done>],
        ignore: bool,
        start: Instant,
    ) -> Result<Arc<Done>> {
        self.progress.event(Event::Started {
            vertex: v,
            name: &vertex.name,
        });
        let pool = KeyPool::new()?;
        let (parts, copied) = std::thread::scope(|sc| {
            let keying = sc.spawn(|| {
                let t = Instant::now();
                let parts = pool.pool.install(|| self.key_parts(build, vertex, inputs));
                // Saved while the copy commits, not after.
                build.context.save_stat_cache();
                tracing::debug!(
                    "{}: cache key (beside the copy) in {:?}",
                    vertex.name,
                    t.elapsed()
                );
                parts
            });
            let copied = file::run(self, build, v, vertex, f, inputs, None);
            // Whatever is left of the key is now all this step waits for.
            pool.raise_priority();
            (keying.join(), copied)
        });
        // The key's error first: it is the one a keyed-first build gives
        // (a missing source, say), and the copy meets the same problem.
        let parts = parts.map_err(|_| Error::Invalid("the cache key thread panicked".into()))??;
        let (fs, manifest) = copied?.finish(build)?;
        let key = parts.key();
        let _ = build.keys[v].set(key.clone());
        if !ignore && let Some(rec) = self.lookup(&key)? {
            return Ok(self.hit(build, v, vertex, rec));
        }
        self.finish(v, vertex, &key, parts, fs, manifest, start)
    }
}

/// Threads for hashing the key beside the copy, at the lowest priority
/// while the copy runs: the copy keeps both cores while it creates files,
/// and the hashing fills the time its commit waits for the disk. Hashing
/// first, or beside it at the same priority, takes just as long in all
/// (both are CPU-bound). Their priority is raised again once the copy is
/// done, so that a busy machine (other stages running) cannot starve them.
struct KeyPool {
    pool: rayon::ThreadPool,
    tids: Arc<Mutex<Vec<rustix::process::Pid>>>,
}

impl KeyPool {
    fn new() -> Result<KeyPool> {
        let tids = Arc::new(Mutex::new(Vec::new()));
        let seen = tids.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads())
            .thread_name(|i| format!("kiln-key-{i}"))
            .start_handler(move |_| {
                // Failing to change a priority only costs speed.
                let _ = rustix::process::setpriority_process(None, 19);
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(rustix::thread::gettid());
            })
            .build()
            .map_err(|e| Error::Invalid(format!("start the key hashing threads: {e}")))?;
        Ok(KeyPool { pool, tids })
    }

    /// Back to the normal priority (needs CAP_SYS_NICE; without it they
    /// stay low).
    fn raise_priority(&self) {
        for tid in self.tids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = rustix::process::setpriority_process(Some(*tid), 0);
        }
    }
}
