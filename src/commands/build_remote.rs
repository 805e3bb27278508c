//! The registry side of `kiln build`: importing `--cache-from` sources
//! before the solve, and after it `--push` of every tag and
//! `--cache-to` exports, each shown as a step of its own in the progress
//! (`importing cache manifest from …`, `pushing …`, `exporting cache
//! to …`). Import failures are warnings (the build goes on without that
//! cache, as BuildKit does); push and export failures fail the build —
//! an export with `ignore-error=true` only warns.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use cache::registry::{self, Client, PushOptions};
use cache::{ImageRef, Store};
use solver::solve::remote::export::{ExportReport, export_cache};
use solver::solve::remote::{CacheSource, CacheTarget};
use solver::solve::{ExportedImage, RemoteCache, Solution, Solver};

use crate::progress::RendererProgress;

/// A CLI step that appears in the progress only when it has something to
/// say.
pub(super) struct LazyStep {
    renderer: Arc<dyn RendererProgress>,
    name: String,
    state: Mutex<Option<(usize, Instant)>>,
}

impl LazyStep {
    pub(super) fn new(renderer: Arc<dyn RendererProgress>, name: &str) -> LazyStep {
        LazyStep {
            renderer,
            name: name.to_string(),
            state: Mutex::new(None),
        }
    }

    /// A line under the step (begun if needed).
    pub(super) fn note(&self, text: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (step, _) = *s.get_or_insert_with(|| (self.renderer.begin(&self.name), Instant::now()));
        self.renderer.note(step, text);
    }

    /// Ends the step, if it was begun.
    pub(super) fn end(&self) {
        if let Some((step, t)) = self.state.lock().unwrap_or_else(|e| e.into_inner()).take() {
            self.renderer.end(step, t.elapsed());
        }
    }
}

/// Parses every `--cache-to` before any work.
pub(super) fn parse_cache_to(specs: &[String]) -> anyhow::Result<Vec<CacheTarget>> {
    specs
        .iter()
        .map(|s| CacheTarget::parse(s).map_err(anyhow::Error::from))
        .collect()
}

/// Parses every `--cache-from` (a bare name is a local image when the
/// store has it).
pub(super) fn parse_cache_from(
    specs: &[String],
    store: &Store,
) -> anyhow::Result<Vec<CacheSource>> {
    specs
        .iter()
        .map(|s| CacheSource::parse(s, &|n| store.image(n).is_ok()).map_err(anyhow::Error::from))
        .collect()
}

/// Reads the records of every source; a source that fails is a warning
/// (returned, to print after the build). `None` when nothing was found.
pub(super) fn import_caches(
    store: &Store,
    client: &Arc<Client>,
    sources: &[CacheSource],
    renderer: &Arc<dyn RendererProgress>,
    warnings: &mut Vec<String>,
) -> Option<Arc<RemoteCache>> {
    if sources.is_empty() {
        return None;
    }
    let mut rc = RemoteCache::new(Some(client.clone()));
    for src in sources {
        let t = Instant::now();
        let what = match src {
            CacheSource::Image(n) => format!("importing inline cache of image {n}"),
            CacheSource::Registry(r) => format!("importing cache manifest from {}", r.familiar()),
            CacheSource::Local { dir, tag } => {
                format!("importing cache manifest from {}:{tag}", dir.display())
            }
        };
        let step = renderer.begin(&what);
        match rc.import(store, src) {
            Ok(r) => {
                renderer.note(
                    step,
                    &format!(
                        "{} {} records, {} layers",
                        if r.inline {
                            "inline cache:"
                        } else {
                            "cache manifest:"
                        },
                        r.records,
                        r.layers
                    ),
                );
            }
            Err(e) => {
                renderer.note(step, &format!("WARNING: {e}"));
                warnings.push(format!("{e} (building without it)"));
            }
        }
        renderer.end(step, t.elapsed());
    }
    (!rc.is_empty()).then(|| Arc::new(rc))
}

/// Pushes the image under every tag.
pub(super) fn push_tags(
    store: &Store,
    client: &Client,
    image: &cache::Image,
    tags: &[ImageRef],
    renderer: &Arc<dyn RendererProgress>,
) -> anyhow::Result<Vec<(ImageRef, registry::Pushed)>> {
    let mut out = Vec::new();
    for t in tags {
        let start = Instant::now();
        let step = renderer.begin(&format!("pushing {}", t.familiar()));
        let pushed = registry::push_image(store, client, image, t, &PushOptions::default())
            .with_context(|| format!("push {}", t.familiar()));
        match pushed {
            Ok(p) => {
                renderer.note(
                    step,
                    &format!(
                        "{}: digest: {} size: {}",
                        t.tag().unwrap_or("latest"),
                        p.digest,
                        p.size
                    ),
                );
                renderer.end(step, start.elapsed());
                out.push((t.clone(), p));
            }
            Err(e) => {
                renderer.note(step, &format!("ERROR: {e:#}"));
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Runs every `--cache-to` export; failures are errors unless the target
/// says `ignore-error=true` (then warnings).
pub(super) fn export_caches(
    solver: &Solver,
    solution: &Solution,
    image: &ExportedImage,
    targets: &[CacheTarget],
    client: &Client,
    renderer: &Arc<dyn RendererProgress>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<(String, ExportReport)>> {
    let mut out = Vec::new();
    for t in targets {
        if matches!(t, CacheTarget::Inline) {
            continue;
        }
        let start = Instant::now();
        let step = renderer.begin(&format!("exporting cache to {}", t.label()));
        let note = |text: &str| renderer.note(step, text);
        match export_cache(solver, solution, image, t, Some(client), &note) {
            Ok(Some(r)) => out.push((t.label(), r)),
            Ok(None) => {}
            Err(e) if t.ignore_error() => {
                renderer.note(step, &format!("WARNING: {e}"));
                warnings.push(format!("{e} (ignore-error=true)"));
            }
            Err(e) => {
                renderer.note(step, &format!("ERROR: {e}"));
                renderer.end(step, start.elapsed());
                return Err(anyhow::Error::from(e));
            }
        }
        renderer.end(step, start.elapsed());
    }
    Ok(out)
}
