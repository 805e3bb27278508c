//! Base images (`FROM`, `COPY --from=<image>`): the seam between the
//! solver and wherever images come from.
//!
//! [`BaseImages`] resolves a normalised reference to an image whose layers
//! are all in the store. [`StoreImages`] looks only in the local store and
//! reports a missing image with a hint; a registry-backed implementation
//! (pull on miss, or always with `--pull`) wraps or replaces it without any
//! change to the solver. Both the frontend (for the config: Env, WorkingDir,
//! ONBUILD…) and the solver (for the layers) must see the same answer
//! during one build, so implementations remember what they resolved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cache::{Digest, Store};

use super::error::{Error, Result};
use crate::llb::Platform;

/// A base image whose layers are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference it was resolved from.
    pub reference: String,
    /// The image ID (config digest).
    pub id: Digest,
    /// The config bytes.
    pub config: Vec<u8>,
    /// Its layers' diffIDs, bottom first (all known to the store).
    pub layers: Vec<Digest>,
}

/// Finds base images.
pub trait BaseImages: Send + Sync {
    /// Resolves `reference` (normalised, e.g.
    /// `docker.io/library/busybox:latest`, possibly `name@sha256:…`) for
    /// `platform`. Repeated calls during a build must give the same image.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Arc<BaseImage>>;
}

/// Base images from the local store only.
pub struct StoreImages {
    store: Arc<Store>,
    memo: Mutex<HashMap<String, Arc<BaseImage>>>,
}

impl std::fmt::Debug for StoreImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreImages").finish_non_exhaustive()
    }
}

impl StoreImages {
    /// Resolves against `store`.
    pub fn new(store: Arc<Store>) -> Self {
        StoreImages {
            store,
            memo: Mutex::new(HashMap::new()),
        }
    }
}

impl BaseImages for StoreImages {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<Arc<BaseImage>> {
        if let Some(b) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(reference)
        {
            return Ok(b.clone());
        }
        let img = match self.store.image(reference) {
            Ok(img) => img,
            Err(cache::Error::ImageNotFound(_)) => {
                return Err(Error::ImageNotFound {
                    reference: reference.to_string(),
                    hint: "; kiln does not pull images yet: load it with `kiln load -i IMAGE.tar` \
                           (e.g. from `docker save`), or `kiln pull` it once pulling is available"
                        .into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let config = self.store.image_config(&img)?;
        let b = Arc::new(BaseImage {
            reference: reference.to_string(),
            id: img.id.clone(),
            config,
            layers: img.layers.clone(),
        });
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reference.to_string(), b.clone());
        Ok(b)
    }
}
