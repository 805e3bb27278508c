//! Base images (`FROM`, `COPY --from=<image>`): the seam between the
//! solver and wherever images come from.
//!
//! [`BaseImages`] resolves a normalised reference to an image whose layers
//! are all in the store. [`StoreImages`] looks only in the local store and
//! reports a missing image with a hint; [`RegistryImages`] uses the local
//! image when there is one and pulls what is missing (or, with
//! [`PullPolicy::Always`] — `--pull` — asks the registry every time and
//! pulls when the tag moved). Both the frontend (for the config: Env,
//! WorkingDir, ONBUILD…) and the solver (for the layers) must see the same
//! answer during one build, so implementations remember what they resolved:
//! the digest a reference resolved to is pinned for the whole build, and
//! the frontend writes it into the graph (`FROM name:tag@sha256:…`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cache::registry::{self, Client};
use cache::{Digest, ImageRef, Store};

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
    /// The registry digest the reference resolved to (the manifest's, or
    /// the index's for a multi-platform image), when known: pulled now,
    /// or recorded when the local image was pulled.
    pub digest: Option<Digest>,
}

impl BaseImage {
    /// The reference with the resolved digest appended
    /// (`docker.io/library/busybox:latest@sha256:…`), or the reference
    /// itself when no digest is known or it already names one.
    pub fn pinned(&self) -> String {
        match &self.digest {
            Some(d) if !self.reference.contains('@') => format!("{}@{d}", self.reference),
            _ => self.reference.clone(),
        }
    }
}

/// Finds base images.
pub trait BaseImages: Send + Sync {
    /// Resolves `reference` (normalised, e.g.
    /// `docker.io/library/busybox:latest`, possibly `name@sha256:…` or
    /// `name:tag@sha256:…`) for `platform`. Repeated calls during a build
    /// must give the same image, also for the pinned form of a reference
    /// resolved before ([`BaseImage::pinned`]).
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Arc<BaseImage>>;

    /// Every image resolved so far (for the build's record of its bases).
    fn resolved(&self) -> Vec<Arc<BaseImage>> {
        Vec::new()
    }
}

/// What resolved images are remembered by: the reference as asked and
/// the platform.
fn memo_key(reference: &str, platform: &Platform) -> String {
    format!("{reference}\0{platform}")
}

/// The store's image for `reference`, as a [`BaseImage`]; `Ok(None)` when
/// the store does not have it.
fn from_store(store: &Store, reference: &str) -> Result<Option<BaseImage>> {
    let img = match store.image(reference) {
        Ok(img) => img,
        Err(cache::Error::ImageNotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let config = store.image_config(&img)?;
    // A digest recorded for this repository when the image was pulled.
    let digest = ImageRef::parse(reference).ok().and_then(|r| {
        if let Some(d) = r.digest() {
            return Some(d.clone());
        }
        let name = r.name();
        img.repo_digests.iter().find_map(|rd| {
            let (n, d) = rd.split_once('@')?;
            (n == name).then(|| Digest::parse(d).ok()).flatten()
        })
    });
    Ok(Some(BaseImage {
        reference: reference.to_string(),
        id: img.id.clone(),
        config,
        layers: img.layers.clone(),
        digest,
    }))
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
        let Some(b) = from_store(&self.store, reference)? else {
            return Err(Error::ImageNotFound {
                reference: reference.to_string(),
                hint: "; load it with `kiln load -i IMAGE.tar` (e.g. from `docker save`) \
                       or `kiln pull` it"
                    .into(),
            });
        };
        let b = Arc::new(b);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert(reference.to_string(), b.clone());
        memo.insert(b.pinned(), b.clone());
        Ok(b)
    }

    fn resolved(&self) -> Vec<Arc<BaseImage>> {
        distinct(&self.memo.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The distinct images of a memo, in a stable order.
fn distinct(memo: &HashMap<String, Arc<BaseImage>>) -> Vec<Arc<BaseImage>> {
    let mut out: Vec<Arc<BaseImage>> = Vec::new();
    for b in memo.values() {
        if !out
            .iter()
            .any(|o| o.reference == b.reference && o.id == b.id)
        {
            out.push(b.clone());
        }
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    out
}

/// When [`RegistryImages`] asks the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only for images the store does not have.
    #[default]
    Missing,
    /// Every time (`--pull`): the tag is resolved at the registry and the
    /// image pulled if it is not the one the store has. A reference by
    /// digest that the store has is used as is (it cannot have changed).
    Always,
}

/// A line of news for the user (`pulling …`, `resolved … to …`).
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// Base images from the store, pulled from their registry when missing
/// (or always, with [`PullPolicy::Always`]). A pulled image is stored and
/// tagged as `kiln pull` would, so the next build finds it locally.
pub struct RegistryImages {
    store: Arc<Store>,
    client: Arc<Client>,
    policy: PullPolicy,
    notify: Option<Notify>,
    memo: Mutex<HashMap<String, Arc<BaseImage>>>,
    /// Held while pulling, so that one reference is pulled once.
    pulling: Mutex<()>,
}

impl std::fmt::Debug for RegistryImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryImages")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RegistryImages {
    /// Resolves against `store`, pulling through `client`.
    pub fn new(store: Arc<Store>, client: Arc<Client>, policy: PullPolicy) -> Self {
        RegistryImages {
            store,
            client,
            policy,
            notify: None,
            memo: Mutex::new(HashMap::new()),
            pulling: Mutex::new(()),
        }
    }

    /// Reports what it does (pulls, resolved digests) to `notify`.
    pub fn with_notify(mut self, notify: Notify) -> Self {
        self.notify = Some(notify);
        self
    }

    fn say(&self, text: &str) {
        if let Some(n) = &self.notify {
            n(text);
        }
    }

    fn memo_get(&self, key: &str) -> Option<Arc<BaseImage>> {
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn pull(&self, reference: &str, r: &ImageRef, platform: &Platform) -> Result<BaseImage> {
        let want =
            registry::Platform::parse(&platform.to_string()).map_err(|e| Error::Registry {
                reference: reference.to_string(),
                source: Box::new(e),
            })?;
        self.say(&format!("pulling {}", r.familiar()));
        let pulled =
            registry::pull_image(&self.store, &self.client, r, Some(&want)).map_err(|e| {
                Error::Registry {
                    reference: reference.to_string(),
                    source: Box::new(e),
                }
            })?;
        let digest = pulled.resolved.digest.clone();
        self.say(&format!(
            "resolved {} to {}@{digest}{}",
            r.familiar(),
            r.familiar_name(),
            if pulled.downloaded == 0 {
                String::new()
            } else {
                format!(" ({} layers downloaded)", pulled.downloaded)
            }
        ));
        let config = self.store.image_config(&pulled.image)?;
        Ok(BaseImage {
            reference: reference.to_string(),
            id: pulled.image.id.clone(),
            config,
            layers: pulled.image.layers.clone(),
            digest: Some(digest),
        })
    }
}

impl BaseImages for RegistryImages {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Arc<BaseImage>> {
        let key = memo_key(reference, platform);
        if let Some(b) = self.memo_get(&key) {
            return Ok(b);
        }
        let _one = self.pulling.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = self.memo_get(&key) {
            return Ok(b);
        }
        let r = ImageRef::parse(reference).map_err(Error::Store)?;
        let local = match (self.policy, r.digest()) {
            (PullPolicy::Missing, _) | (PullPolicy::Always, Some(_)) => {
                from_store(&self.store, reference)?
            }
            (PullPolicy::Always, None) => None,
        };
        let b = match local {
            Some(b) => b,
            None => {
                // `name:tag@digest` pulls by digest (the tag is informative).
                self.pull(reference, &r, platform)?
            }
        };
        let b = Arc::new(b);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert(key, b.clone());
        memo.insert(memo_key(&b.pinned(), platform), b.clone());
        Ok(b)
    }

    fn resolved(&self) -> Vec<Arc<BaseImage>> {
        distinct(&self.memo.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_references() {
        let d = Digest::of(b"m");
        let mut b = BaseImage {
            reference: "docker.io/library/busybox:latest".into(),
            id: Digest::of(b"c"),
            config: Vec::new(),
            layers: Vec::new(),
            digest: None,
        };
        assert_eq!(b.pinned(), "docker.io/library/busybox:latest");
        b.digest = Some(d.clone());
        assert_eq!(b.pinned(), format!("docker.io/library/busybox:latest@{d}"));
        b.reference = format!("docker.io/library/busybox@{d}");
        assert_eq!(b.pinned(), b.reference);
    }
}
