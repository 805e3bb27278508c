//! The image of a solved build: its config (BuildKit's, field for field)
//! and its layers, and storing it.
//!
//! History and layers come from the target stage ([`StageResult`]): an
//! entry of the base image takes the base's next layer, an entry of this
//! build takes the layer its vertex added, metadata-only entries have none.
//! Times follow BuildKit's exporter (`normalizeLayersAndHistory`): a new
//! layer's entry is dated when the layer was made (kept in the cache, so a
//! cached rebuild gives the very same image), metadata entries take the
//! time of the first new layer or of the layer before them, and the
//! config's `created` is the last entry's. The top-level keys are written
//! in sorted order, as Go's map encoding does in BuildKit. Every image
//! carries its inline cache (`moby.buildkit.cache.v0`, see
//! [`remote::format`](super::remote::format)), as BuildKit writes it with
//! `BUILDKIT_INLINE_CACHE=1`.

use cache::{Digest, ImageRef, NewImage, Store};
use serde_json::{Map, Value};

use super::Solution;
use super::Solver;
use super::error::{Error, Result};
use crate::llb::{Definition, History, LayerSource};

/// Options of the image export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Extra labels (already merged by the frontend; kept for callers that
    /// build definitions by hand).
    pub labels: Vec<(String, String)>,
}

/// An image ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedImage {
    /// The config bytes.
    pub config: Vec<u8>,
    /// Its ID (the config's digest).
    pub id: Digest,
    /// Its layers, bottom first.
    pub layers: Vec<Digest>,
}

/// Builds the target stage's image config and layer list.
pub fn image_config(
    solver: &Solver,
    def: &Definition,
    sol: &Solution,
    opts: &ExportOptions,
) -> Result<ExportedImage> {
    let st = def.target_stage();
    let mut img = st.image.clone();
    for (k, v) in &opts.labels {
        img.config
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.clone(), v.clone());
    }
    let base = match &st.base_image {
        Some(r) => {
            let platform = crate::llb::Platform {
                os: img.os.clone(),
                architecture: img.architecture.clone(),
                variant: img.variant.clone(),
            };
            Some(solver.images.resolve(r, &platform)?)
        }
        None => None,
    };
    let base_layers: Vec<Digest> = base.as_ref().map(|b| b.layers.clone()).unwrap_or_default();
    if st.layers.len() != img.history.len() {
        return Err(Error::Invalid(format!(
            "stage has {} history entries but {} layer sources",
            img.history.len(),
            st.layers.len()
        )));
    }
    let mut layers = Vec::new();
    let mut history: Vec<History> = Vec::with_capacity(img.history.len());
    let mut next_base = 0;
    let mut last_base_entry = None;
    for (h, src) in img.history.iter().zip(&st.layers) {
        let mut h = h.clone();
        match src {
            LayerSource::Empty => h.empty_layer = true,
            LayerSource::Base => {
                let d = base_layers.get(next_base).ok_or_else(|| {
                    Error::Invalid(format!(
                        "the base image {} has fewer layers than its history says",
                        st.base_image.as_deref().unwrap_or("?")
                    ))
                })?;
                next_base += 1;
                layers.push(d.clone());
                h.empty_layer = false;
                last_base_entry = Some(history.len());
            }
            LayerSource::Vertex(o) => {
                let done = sol.get(o.vertex).ok_or_else(|| {
                    Error::Invalid(format!(
                        "history layer of vertex {} was not built",
                        o.vertex
                    ))
                })?;
                let d = done
                    .layer
                    .clone()
                    .ok_or_else(|| Error::Invalid(format!("vertex {} made no layer", o.vertex)))?;
                layers.push(d);
                h.empty_layer = false;
                if h.created.is_none() {
                    h.created = done.created.clone();
                }
            }
        }
        history.push(h);
    }
    // Base layers the base's history does not account for (images without
    // history): keep them, after the accounted ones.
    if next_base < base_layers.len() {
        let at = last_base_entry.map_or(0, |i| i + 1);
        let extra = &base_layers[next_base..];
        let layer_at = history[..at].iter().filter(|h| !h.empty_layer).count();
        for (k, d) in extra.iter().enumerate() {
            layers.insert(layer_at + k, d.clone());
            history.insert(at + k, History::default());
        }
    }
    fill_created(&mut history);
    if let Some(epoch) = solver.opts.epoch {
        let base_history = base
            .as_ref()
            .and_then(|b| serde_json::from_slice::<crate::llb::Image>(&b.config).ok())
            .map(|i| i.history)
            .unwrap_or_default();
        clamp_created(&mut history, &base_history, epoch)?;
    }
    let created = history.iter().rev().find_map(|h| h.created.clone());

    let mut m = Map::new();
    m.insert(
        "architecture".into(),
        Value::String(img.architecture.clone()),
    );
    if let Some(a) = &img.author {
        m.insert("author".into(), Value::String(a.clone()));
    }
    m.insert("config".into(), to_value(&img.config)?);
    if let Some(c) = &created {
        m.insert("created".into(), Value::String(c.clone()));
    }
    if !history.is_empty() {
        m.insert("history".into(), to_value(&history)?);
    }
    // The inline cache: which of this image's layers answer which cache
    // keys (BuildKit's `moby.buildkit.cache.v0`), so that `--cache-from`
    // this image reuses them anywhere.
    if let Some(v) =
        super::remote::format::inline_value(&sol.cache_entries(solver.opts.epoch), &layers)
    {
        m.insert(
            super::remote::format::INLINE_CACHE_KEY.into(),
            Value::String(v),
        );
    }
    m.insert("os".into(), Value::String(img.os.clone()));
    if !img.os_version.is_empty() {
        m.insert("os.version".into(), Value::String(img.os_version.clone()));
    }
    m.insert(
        "rootfs".into(),
        serde_json::json!({
            "type": "layers",
            "diff_ids": layers.iter().map(Digest::as_str).collect::<Vec<_>>(),
        }),
    );
    if !img.variant.is_empty() {
        m.insert("variant".into(), Value::String(img.variant.clone()));
    }
    let config =
        serde_json::to_vec(&Value::Object(m)).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(ExportedImage {
        id: Digest::of(&config),
        config,
        layers,
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Invalid(e.to_string()))
}

/// BuildKit's rule for history entries without a time: the first new
/// layer's time (or the last known one), then the time of the entry before.
fn fill_created(history: &mut [History]) {
    let mut created: Option<String> = None;
    let mut missing = false;
    for h in history.iter() {
        if h.created.is_some() {
            created = h.created.clone();
            if missing {
                break;
            }
        } else {
            missing = true;
        }
    }
    missing = false;
    for h in history.iter_mut() {
        if h.created.is_some() {
            if missing {
                created = h.created.clone();
            }
        } else {
            missing = true;
            h.created = created.clone();
        }
    }
}

/// `SOURCE_DATE_EPOCH`, as BuildKit applies it: the base image's own
/// entries keep their times; from the first entry that differs from the
/// base's history on, no entry is dated later than the epoch (nor left
/// undated).
fn clamp_created(history: &mut [History], base: &[History], epoch: i64) -> Result<()> {
    let at = jiff::Timestamp::from_second(epoch)
        .map_err(|e| Error::Invalid(format!("SOURCE_DATE_EPOCH {epoch}: {e}")))?;
    let text = at.to_string();
    let mut diverged = false;
    for (i, h) in history.iter_mut().enumerate() {
        if !diverged && base.get(i) == Some(h) {
            continue;
        }
        diverged = true;
        let later = match h.created.as_deref().map(str::parse::<jiff::Timestamp>) {
            Some(Ok(t)) => t > at,
            _ => true,
        };
        if later {
            h.created = Some(text.clone());
        }
    }
    Ok(())
}

/// Stores the image and points `tags` at it, unless the store already has
/// this very image with these tags (a fully cached rebuild writes nothing).
/// Returns the image and whether anything was written. Its layers must be
/// in the store: after a build that imported cache records, call
/// [`Solver::ensure_layers`] first.
pub fn commit_image(
    store: &Store,
    img: &ExportedImage,
    tags: &[ImageRef],
) -> Result<(cache::Image, bool)> {
    if let Ok(existing) = store.image(img.id.as_str())
        && tags.iter().all(|t| existing.tags.contains(t))
    {
        return Ok((existing, false));
    }
    let stored = store.put_image(&NewImage {
        config: &img.config,
        layers: &img.layers,
        manifest: None,
        tags,
        repo_digests: &[],
    })?;
    Ok((stored, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(created: Option<&str>) -> History {
        History {
            created: created.map(str::to_string),
            ..History::default()
        }
    }

    #[test]
    fn created_times_follow_buildkit() {
        // base entry, metadata, new layer, metadata
        let mut v = vec![h(Some("base")), h(None), h(Some("new")), h(None)];
        fill_created(&mut v);
        let got: Vec<_> = v.iter().map(|h| h.created.clone().unwrap()).collect();
        assert_eq!(got, ["base", "new", "new", "new"]);
        let mut v = vec![
            h(Some("a")),
            h(None),
            h(Some("b")),
            h(None),
            h(Some("c")),
            h(None),
        ];
        fill_created(&mut v);
        let got: Vec<_> = v.iter().map(|h| h.created.clone().unwrap()).collect();
        assert_eq!(got, ["a", "b", "b", "b", "c", "c"]);
        let mut v = vec![h(None), h(None)];
        fill_created(&mut v);
        assert!(v.iter().all(|h| h.created.is_none()));
    }

    #[test]
    fn epoch_clamps_only_this_builds_entries() {
        let base = vec![h(Some("2030-01-01T00:00:00Z"))];
        let mut v = vec![
            h(Some("2030-01-01T00:00:00Z")),
            h(Some("2026-01-01T00:00:00Z")),
            h(Some("2000-01-01T00:00:00Z")),
            h(None),
        ];
        clamp_created(&mut v, &base, 1_700_000_000).unwrap();
        let got: Vec<_> = v.iter().map(|h| h.created.clone().unwrap()).collect();
        assert_eq!(
            got,
            [
                "2030-01-01T00:00:00Z",
                "2023-11-14T22:13:20Z",
                "2000-01-01T00:00:00Z",
                "2023-11-14T22:13:20Z"
            ]
        );
    }
}
