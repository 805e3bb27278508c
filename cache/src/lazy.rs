//! Lazy layers: a layer whose diffID and size are known but whose blob
//! is written only when its bytes are needed.
//!
//! A build step can know a layer's diffID by hashing its tar as it streams
//! by, without storing the tar: the tar can be regenerated from layer
//! directories the store already has. [`Store::register_lazy_layer`]
//! records such a layer with a [`LayerRecipe`]; its one blob descriptor
//! (uncompressed OCI layer, digest = diffID) goes into manifests as usual.
//!
//! Everything that reads a layer's bytes (save, push, cache export,
//! [`Store::layer_tar`], unpacking) goes through
//! [`Store::open_layer_blob`], which writes the missing blob on first use:
//! the installed [`Materialize`] streams the tar into a temporary file
//! that is hashed as it is written, fsynced, checked against the diffID
//! (a mismatch places nothing) and renamed into `blobs/`, under the
//! layer's lock so that concurrent readers materialize once.
//!
//! The store cannot write a tar from directories itself (that is the
//! executor's layer diff): whoever opens a store that may hold lazy
//! layers installs a materializer with [`Store::set_materializer`].
//! Without one, reading a lazy layer's missing blob is an error naming
//! the layer.
//!
//! Crash safety: registering writes one record (no file); the recipe's
//! layers are committed directories, kept by the collector while the lazy
//! layer is (see `gc`).

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layers::get_layer;
use crate::meta::Table;
use crate::records::{Descriptor, Layer, LayerRecipe, encode, media};
use crate::store::{LeaseKind, Store};

/// Writes the uncompressed tar of a lazy layer from its recipe.
pub trait Materialize: Send + Sync {
    /// Writes the layer tar `recipe` describes to `w`. It must be the
    /// same bytes as when the layer was registered.
    fn write_tar(&self, store: &Store, recipe: &LayerRecipe, w: &mut dyn Write) -> io::Result<()>;
}

/// The store's materializer slot.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Arc<dyn Materialize>>>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.get().is_some();
        f.debug_struct("Materializer").field("set", &set).finish()
    }
}

impl Slot {
    fn get(&self) -> Option<Arc<dyn Materialize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Store {
    /// Installs what writes lazy layers' blobs (replacing any earlier one).
    pub fn set_materializer(&self, m: Arc<dyn Materialize>) {
        *self
            .materializer
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(m);
    }

    /// Records the layer `diff_id` (an uncompressed tar of `size` bytes)
    /// without its blob: `recipe` says how to write it when needed. Its
    /// layers must be in the store. If the layer is already known, its
    /// record is kept as it is. The layer is leased to this process.
    pub fn register_lazy_layer(
        &self,
        diff_id: &Digest,
        size: u64,
        recipe: LayerRecipe,
    ) -> Result<Layer> {
        self.lease(&[(LeaseKind::Layer, diff_id)])?;
        self.meta.write(|w| {
            if let Some(old) = get_layer(w, diff_id)? {
                return Ok(old);
            }
            for d in recipe.layers() {
                if get_layer(w, d)?.is_none() {
                    return Err(Error::LayerNotFound(format!(
                        "{d} (in the recipe of lazy layer {diff_id})"
                    )));
                }
            }
            let layer = Layer {
                diff_id: diff_id.clone(),
                size,
                blobs: vec![Descriptor {
                    media_type: media::OCI_LAYER.to_string(),
                    digest: diff_id.clone(),
                    size,
                }],
                recipe: Some(recipe.clone()),
            };
            w.put(Table::Layers, diff_id.as_str(), &encode(&layer))?;
            Ok(layer)
        })
    }

    /// Opens the blob `blob` of the layer `diff_id` for reading; if it is
    /// the layer's lazy blob and absent, writes it first (see the module
    /// documentation).
    pub fn open_layer_blob(&self, diff_id: &Digest, blob: &Digest) -> Result<File> {
        match self.open_blob(blob) {
            Err(Error::BlobNotFound(_)) => {}
            r => return r,
        }
        let layer = self
            .layer(diff_id)?
            .ok_or_else(|| Error::LayerNotFound(diff_id.to_string()))?;
        if !layer.is_lazy_blob(blob) {
            return Err(Error::BlobNotFound(blob.to_string()));
        }
        let _lock = self.lock_layer(diff_id)?;
        self.materialize_locked(&layer)?;
        self.open_blob(blob)
    }

    /// Writes the missing blob of a lazy layer; the caller holds the
    /// layer's lock.
    pub(crate) fn materialize_locked(&self, layer: &Layer) -> Result<()> {
        let id = &layer.diff_id;
        if self.has_blob(id) {
            return Ok(()); // written by someone else while we waited
        }
        let Some(recipe) = &layer.recipe else {
            return Err(Error::BlobNotFound(id.to_string()));
        };
        let m = self.materializer.get().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "layer {id} has no blob yet and nothing here can write it \
                 (no layer materializer installed)"
            ))
        })?;
        let t = std::time::Instant::now();
        let mut w = self.blob_writer()?;
        m.write_tar(self, recipe, &mut w)
            .map_err(|e| Error::stream(format!("write the tar of lazy layer {id}"), e))?;
        let pending = w.finish()?;
        crate::blobs::verify(id, &pending.digest, &format!("regenerated layer {id}"))?;
        if pending.size != layer.size {
            return Err(Error::SizeMismatch {
                what: format!("regenerated layer {id}"),
                expected: layer.size,
                actual: pending.size,
            });
        }
        self.lease(&[(LeaseKind::Blob, id), (LeaseKind::Layer, id)])?;
        self.place_blob(&pending)?;
        tracing::debug!("layer {id}: blob written on demand in {:?}", t.elapsed());
        Ok(())
    }

    /// Takes the per-layer lock (unpacking, materializing).
    pub(crate) fn lock_layer(&self, diff_id: &Digest) -> Result<File> {
        let lock_path = self.layout.locks().join(diff_id.hex());
        let lock = File::create(&lock_path).at("create", &lock_path)?;
        lock.lock().at("lock", &lock_path)?;
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testutil::{config_for, ls, store};
    use crate::{ImageRef, NewImage, PruneOptions};
    use testkit::Entry;

    /// "Regenerates" fixed bytes, counting its calls.
    struct Fixed {
        tar: Vec<u8>,
        calls: AtomicUsize,
    }

    impl Materialize for Fixed {
        fn write_tar(&self, _: &Store, _: &LayerRecipe, w: &mut dyn Write) -> io::Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            w.write_all(&self.tar)
        }
    }

    fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
        let e = [(name.to_string(), Entry::File(0o644, data.to_vec()))];
        testkit::write_layer_tar(Vec::new(), &e).unwrap()
    }

    /// A store with two ordinary layers and a lazy one made of them,
    /// whose tar is `tar`.
    fn lazy(s: &Store) -> (Vec<u8>, Layer) {
        let a = s.ingest_layer(&tar_of("a", b"a")[..], Default::default());
        let b = s.ingest_layer(&tar_of("b", b"b")[..], Default::default());
        let tar = tar_of("merged", b"a and b");
        let recipe = LayerRecipe {
            stack: vec![b.unwrap().diff_id],
            lowers: vec![a.unwrap().diff_id],
            clamp_mtime: None,
            own_dir: None,
        };
        let id = Digest::of(&tar);
        let l = s
            .register_lazy_layer(&id, tar.len() as u64, recipe)
            .unwrap();
        (tar, l)
    }

    fn read_all(mut f: impl io::Read) -> Vec<u8> {
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn registers_without_a_blob_and_materializes_once_on_demand() {
        let (_t, s) = store();
        let (tar, l) = lazy(&s);
        assert!(!s.has_blob(&l.diff_id), "no blob written at registration");
        assert_eq!(l.blob().digest, l.diff_id);
        assert_eq!(l.blob().media_type, media::OCI_LAYER);
        assert_eq!(s.layer(&l.diff_id).unwrap().unwrap(), l);
        let e = s.layer_tar(&l.diff_id).err().unwrap().to_string();
        assert!(
            e.contains(l.diff_id.as_str()) && e.contains("materializer"),
            "{e}"
        );
        let m = Arc::new(Fixed {
            tar: tar.clone(),
            calls: AtomicUsize::new(0),
        });
        s.set_materializer(m.clone());
        let got: Vec<Vec<u8>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| sc.spawn(|| read_all(s.open_layer_blob(&l.diff_id, &l.diff_id).unwrap())))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got.iter().all(|g| g == &tar));
        assert_eq!(m.calls.load(Ordering::SeqCst), 1, "materialized once");
        assert_eq!(read_all(s.layer_tar(&l.diff_id).unwrap()), tar);
        assert_eq!(m.calls.load(Ordering::SeqCst), 1);
        let dir = s.unpacked_dir(&l.diff_id).unwrap();
        assert_eq!(std::fs::read(dir.join("merged")).unwrap(), b"a and b");
    }

    #[test]
    fn unpacking_a_lazy_layer_materializes_it() {
        let (_t, s) = store();
        let (tar, l) = lazy(&s);
        s.set_materializer(Arc::new(Fixed {
            tar,
            calls: AtomicUsize::new(0),
        }));
        let dir = s.unpacked_dir(&l.diff_id).unwrap();
        assert_eq!(std::fs::read(dir.join("merged")).unwrap(), b"a and b");
        assert!(s.has_blob(&l.diff_id));
    }

    #[test]
    fn wrong_bytes_are_refused_and_nothing_is_placed() {
        let (_t, s) = store();
        let (_, l) = lazy(&s);
        let before = ls(&s.layout.blobs());
        s.set_materializer(Arc::new(Fixed {
            tar: tar_of("merged", b"something else"),
            calls: AtomicUsize::new(0),
        }));
        let e = s.layer_tar(&l.diff_id).err().unwrap();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(e.to_string().contains(l.diff_id.as_str()), "{e}");
        assert_eq!(ls(&s.layout.blobs()), before, "no blob placed");
        assert!(!s.has_blob(&l.diff_id));
        assert!(ls(s.owner().unwrap().dir()).is_empty(), "no temp file left");
        assert!(s.unpacked_dir(&l.diff_id).is_err());
        assert!(!s.layout.layer_dir(&l.diff_id).exists());
    }

    #[test]
    fn recipe_layers_live_as_long_as_the_lazy_layer() {
        let (_t, s) = store();
        let (_, l) = lazy(&s);
        let recipe = l.recipe.clone().unwrap();
        let tag = ImageRef::parse("lazy:1").unwrap();
        let ids = vec![l.diff_id.clone()];
        let config = config_for(&ids, "2024-01-01T00:00:00Z");
        s.put_image(&NewImage {
            config: &config,
            layers: &ids,
            tags: std::slice::from_ref(&tag),
            ..Default::default()
        })
        .unwrap();
        let root = s.root().to_path_buf();
        drop(s); // releases this process's leases
        let s = Store::open(&root).unwrap();
        s.prune(PruneOptions { all: true }).unwrap();
        for d in recipe.layers() {
            assert!(s.layer(d).unwrap().is_some(), "recipe layer {d} kept");
            assert!(s.has_blob(d), "its blob kept");
        }
        let usage = s.disk_usage().unwrap();
        assert_eq!(usage.images.total, 1);
        assert_eq!(usage.unreferenced.total, 0, "{usage:?}");
        s.remove_image("lazy:1", false).unwrap();
        s.prune(PruneOptions { all: true }).unwrap();
        assert!(s.layer(&l.diff_id).unwrap().is_none());
        for d in recipe.layers() {
            assert!(s.layer(d).unwrap().is_none(), "recipe layer {d} dropped");
        }
        assert!(
            ls(&s.layout.blobs()).is_empty(),
            "{:?}",
            ls(&s.layout.blobs())
        );
    }

    #[test]
    fn a_recipe_needs_its_layers() {
        let (_t, s) = store();
        let missing = Digest::of(b"nothing");
        let recipe = LayerRecipe {
            stack: vec![missing.clone()],
            lowers: vec![],
            clamp_mtime: None,
            own_dir: None,
        };
        let e = s
            .register_lazy_layer(&Digest::of(b"x"), 1, recipe)
            .unwrap_err();
        assert!(e.to_string().contains(missing.as_str()), "{e}");
        assert!(s.layer(&Digest::of(b"x")).unwrap().is_none());
    }
}
