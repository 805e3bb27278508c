//! Layers: a diffID, the blob(s) holding its tar, and its unpacked
//! directory (`layers/<hex>/`, overlayfs upperdir format).
//!
//! An unpacked directory is created in the temporary area and renamed into
//! place whole, after a `syncfs`, so `layers/<hex>` exists only when it is
//! complete; it is immutable from then on. Unpacking is lazy (on the first
//! [`Store::unpacked_dir`]), verifies the diffID while it reads, and holds
//! a per-layer lock so that concurrent callers unpack once.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::blobs::{COPY_BUF, PendingBlob, TempGuard, is_dir, verify};
use crate::compression::{self, Compression, peek};
use crate::digest::{Digest, HashingReader, hash_written};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, is_exists_error, remove_any};
use crate::meta::{Reader, Table};
use crate::records::{Descriptor, Layer, LayerRecipe, decode, encode, media};
use crate::scan::{Latch, scan_layer};
use crate::store::{LeaseKind, Store};
use crate::unpack::unpack_layer;

/// What the caller knows about a layer blob it is handing over.
#[derive(Debug, Clone, Default)]
pub struct LayerHints<'a> {
    /// The blob digest it must have (e.g. from a manifest).
    pub blob_digest: Option<&'a Digest>,
    /// The diffID it must have (e.g. from the config's `rootfs.diff_ids`).
    pub diff_id: Option<&'a Digest>,
    /// The media type to record; by default the OCI layer type matching
    /// the detected compression.
    pub media_type: Option<&'a str>,
}

/// A layer blob written to the temporary area.
pub(crate) struct LayerBlob {
    pub(crate) pending: PendingBlob,
    /// sha256 of the uncompressed content.
    pub(crate) diff_id: Digest,
    /// Size of the uncompressed content.
    pub(crate) size: u64,
    pub(crate) compression: Compression,
    /// Whether the content is an acceptable layer tar.
    pub(crate) scan: Result<()>,
}

/// Compressions docker accepts in a layer file but no image format can
/// describe.
fn unsupported_compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    }
}

/// Decompresses `src`, scanning the tar and hashing it for the diffID.
fn decode_and_scan(
    c: Compression,
    src: &mut dyn Read,
    label: &str,
) -> Result<(Result<()>, Digest, u64)> {
    let dec = compression::decoder(c, BufReader::with_capacity(COPY_BUF, src))
        .map_err(|e| Error::stream(format!("decompress {label}"), e))?;
    let mut h = Latch {
        inner: HashingReader::new(dec),
        error: None,
    };
    let scan = scan_layer(&mut h, label);
    drain(&mut h, label)?;
    if let Some(e) = h.error {
        return Err(Error::stream(format!("decompress {c:?} {label}"), e));
    }
    let (d, n, _) = h.inner.finish();
    Ok((scan, d, n))
}

/// Reads to the end of `r`, discarding.
fn drain(r: &mut impl Read, label: &str) -> Result<()> {
    crate::scan::skip(r, &mut vec![0u8; COPY_BUF])
        .map(|_| ())
        .map_err(|e| Error::stream(format!("read {label}"), e))
}

/// Copies everything read through it to `out` (the blob file).
struct Tee<'a, R> {
    inner: R,
    out: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.out.write_all(&buf[..k])?;
        Ok(k)
    }
}

impl Store {
    /// Streams a layer blob (plain, gzip or zstd tar: detected from its
    /// bytes) into the store, computing its diffID on the way, verifying
    /// whatever `hints` says, and records the layer. Returns the layer.
    pub fn ingest_layer(&self, r: impl Read, hints: LayerHints<'_>) -> Result<Layer> {
        let blob = self.write_layer_blob(r, "layer blob")?;
        if let Some(want) = hints.blob_digest {
            verify(want, &blob.pending.digest, "layer blob")?;
        }
        if let Some(want) = hints.diff_id {
            verify(
                want,
                &blob.diff_id,
                &format!("layer {} (diffID)", blob.pending.digest),
            )?;
        }
        self.commit_layer_blob(blob, hints.media_type)
    }

    /// Puts a checked layer blob in place and records the layer.
    pub(crate) fn commit_layer_blob(
        &self,
        blob: LayerBlob,
        media_type: Option<&str>,
    ) -> Result<Layer> {
        let LayerBlob {
            pending,
            diff_id,
            size,
            compression,
            scan,
        } = blob;
        scan?;
        let desc = Descriptor {
            media_type: media_type
                .unwrap_or(compression.oci_layer_media_type())
                .to_string(),
            digest: pending.digest.clone(),
            size: pending.size,
        };
        self.lease(&[
            (LeaseKind::Blob, &desc.digest),
            (LeaseKind::Layer, &diff_id),
        ])?;
        self.place_blob(&pending)?;
        self.record_layer(&diff_id, size, desc)
    }

    /// Streams a layer blob to the temporary area, checking it as a tar
    /// on the way (see [`crate::scan`]). The scan's verdict is returned,
    /// not raised, because an archive member may turn out not to be a
    /// layer at all; read and decompression errors are raised.
    pub(crate) fn write_layer_blob(&self, r: impl Read, label: &str) -> Result<LayerBlob> {
        let (head, r) = peek(r, 6).map_err(|e| Error::stream(format!("read {label}"), e))?;
        let compression = Compression::detect(&head);
        let mut w = self.blob_writer()?;
        let mut src = Latch {
            inner: Tee {
                inner: r,
                out: &mut w,
            },
            error: None,
        };
        let (scan, diff) = match compression {
            Compression::None => {
                let scan = match unsupported_compression(&head) {
                    Some(name) => Err(Error::InvalidLayer {
                        layer: label.to_string(),
                        reason: format!(
                            "{name}-compressed layers are not supported (use gzip, zstd or none)"
                        ),
                    }),
                    None => scan_layer(&mut src, label),
                };
                drain(&mut src, label)?;
                (scan, None)
            }
            c => {
                let (scan, d, n) = decode_and_scan(c, &mut src, label)?;
                // Whatever follows the compressed stream stays part of the blob.
                drain(&mut src, label)?;
                (scan, Some((d, n)))
            }
        };
        if let Some(e) = src.error.take() {
            return Err(Error::stream(format!("read {label}"), e));
        }
        let pending = w.finish()?;
        let (diff_id, size) = diff.unwrap_or_else(|| (pending.digest.clone(), pending.size));
        Ok(LayerBlob {
            pending,
            diff_id,
            size,
            compression,
            scan,
        })
    }

    /// Records that the blob `blob` (already in the store) holds the layer
    /// `diff_id`. The diffID is verified when the layer is first unpacked.
    pub fn register_layer(
        &self,
        diff_id: &Digest,
        blob: Descriptor,
        uncompressed_size: u64,
    ) -> Result<Layer> {
        if !self.has_blob(&blob.digest) {
            return Err(Error::BlobNotFound(blob.digest.to_string()));
        }
        self.lease(&[(LeaseKind::Blob, &blob.digest), (LeaseKind::Layer, diff_id)])?;
        self.record_layer(diff_id, uncompressed_size, blob)
    }

    /// Adds `blob` to the layer record (creating it).
    fn record_layer(&self, diff_id: &Digest, size: u64, blob: Descriptor) -> Result<Layer> {
        self.meta.write(|w| {
            let key = diff_id.as_str();
            let mut layer = match w.get(Table::Layers, key)? {
                Some(v) => decode::<Layer>(key, &v)?,
                None => Layer {
                    diff_id: diff_id.clone(),
                    size,
                    blobs: Vec::new(),
                    recipe: None,
                },
            };
            if !layer.blobs.iter().any(|b| b.digest == blob.digest) {
                layer.blobs.push(blob);
            }
            w.put(Table::Layers, key, &encode(&layer))?;
            Ok(layer)
        })
    }

    /// The layer record for `diff_id`, if known.
    pub fn layer(&self, diff_id: &Digest) -> Result<Option<Layer>> {
        self.meta.read(|r| get_layer(r, diff_id))
    }

    /// The unpacked directory of a layer, for use as an overlay lowerdir.
    /// Unpacks it on first use. The directory must not be modified.
    pub fn unpacked_dir(&self, diff_id: &Digest) -> Result<PathBuf> {
        // A layer this process leased and found unpacked stays so (layer
        // directories are immutable and the lease keeps the collector off):
        // no need to ask the database again.
        let dest = self.layout.layer_dir(diff_id);
        if self.holds_lease(LeaseKind::Layer, diff_id) && is_dir(&dest) {
            return Ok(dest);
        }
        let layer = self
            .layer(diff_id)?
            .ok_or_else(|| Error::LayerNotFound(diff_id.to_string()))?;
        self.lease(&[(LeaseKind::Layer, diff_id)])?;
        if is_dir(&dest) {
            return Ok(dest);
        }
        let _lock = self.lock_layer(diff_id)?;
        if is_dir(&dest) {
            return Ok(dest); // unpacked by someone else while we waited
        }
        let blob = layer.blob();
        if layer.is_lazy_blob(&blob.digest) {
            self.materialize_locked(&layer)?;
        }
        let tmp = TempGuard::new(self.tmp_path("unpack")?);
        fs::create_dir(tmp.path()).at("create directory", tmp.path())?;
        let f = self.open_blob(&blob.digest)?;
        let (_, dec) = compression::auto_decompress(BufReader::with_capacity(COPY_BUF, f))
            .map_err(|e| Error::stream(format!("read layer blob {}", blob.digest), e))?;
        let mut h = HashingReader::new(dec);
        unpack_layer(&mut h, tmp.path(), diff_id.as_str())?;
        let (got, _, _) = h.finish();
        verify(
            diff_id,
            &got,
            &format!("layer {diff_id} unpacked from blob {}", blob.digest),
        )?;
        syncfs(tmp.path())?;
        self.place_layer_dir(tmp.take(), &dest)?;
        Ok(dest)
    }

    /// Commits a directory produced by a build step as a new layer.
    ///
    /// `dir` must be inside a [`Store::temp_dir`] and be in overlay
    /// upperdir format. `write_tar` must write the layer tar of exactly
    /// that directory (e.g. with `executor::diff`); it is stored
    /// uncompressed as the layer's blob and its sha256 is the diffID. The
    /// directory is then renamed into place as the layer's unpacked
    /// directory, without re-extraction. If the layer already exists the
    /// directory is removed instead.
    pub fn commit_layer_dir(
        &self,
        dir: &Path,
        write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Layer> {
        let canon = self.committable_dir(dir)?;
        let pending = synced_while(&canon, || {
            let mut w = self.blob_writer()?;
            write_tar(&mut w)
                .map_err(|e| Error::stream(format!("write layer tar of {}", dir.display()), e))?;
            w.finish()
        })?;
        let diff_id = pending.digest.clone();
        let desc = Descriptor {
            media_type: media::OCI_LAYER.to_string(),
            digest: diff_id.clone(),
            size: pending.size,
        };
        self.lease(&[(LeaseKind::Blob, &diff_id), (LeaseKind::Layer, &diff_id)])?;
        self.place_blob(&pending)?;
        let dest = self.layout.layer_dir(&diff_id);
        if is_dir(&dest) {
            remove_any(&canon)?;
        } else {
            self.place_layer_dir(canon, &dest)?;
        }
        self.record_layer(&diff_id, pending.size, desc)
    }

    /// Commits a directory produced by a build step as a new *lazy* layer
    /// (see `lazy`): like [`Store::commit_layer_dir`], but the tar
    /// `write_tar` writes is only hashed, for the diffID, and not stored;
    /// the blob is written from the directory when something reads it.
    /// `lowers` (topmost first) and `clamp_mtime` are what the tar is
    /// written against, recorded so that it can be written again. This
    /// saves writing — and making durable — the layer's bytes twice.
    pub fn commit_layer_dir_lazy(
        &self,
        dir: &Path,
        lowers: Vec<Digest>,
        clamp_mtime: Option<i64>,
        write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Layer> {
        let canon = self.committable_dir(dir)?;
        let (diff_id, size) = synced_while(&canon, || {
            hash_written(write_tar)
                .map_err(|e| Error::stream(format!("write layer tar of {}", dir.display()), e))
        })?;
        self.lease(&[(LeaseKind::Layer, &diff_id)])?;
        let dest = self.layout.layer_dir(&diff_id);
        if is_dir(&dest) {
            remove_any(&canon)?;
        } else {
            self.place_layer_dir(canon, &dest)?;
        }
        let recipe = LayerRecipe {
            stack: Vec::new(),
            lowers,
            clamp_mtime,
            own_dir: Some(diff_id.clone()),
        };
        self.register_lazy_layer(&diff_id, size, recipe)
    }

    /// Records a lazy layer made of layers the store has (`recipe`): the
    /// tar `write_tar` writes — the one the installed materializer will
    /// write from `recipe` — is hashed for its diffID (on a second thread,
    /// while it is written) and not stored. See [`crate::lazy`].
    pub fn commit_lazy_layer(
        &self,
        recipe: LayerRecipe,
        write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Layer> {
        let (diff_id, size) = hash_written(write_tar)
            .map_err(|e| Error::stream("write the tar of a lazy layer", e))?;
        self.register_lazy_layer(&diff_id, size, recipe)
    }

    /// The committed unpacked directory of a layer, without unpacking
    /// anything: for writing a lazy layer's tar from its own directory.
    pub fn own_layer_dir(&self, diff_id: &Digest) -> Result<PathBuf> {
        let dest = self.layout.layer_dir(diff_id);
        if is_dir(&dest) {
            Ok(dest)
        } else {
            Err(Error::LayerNotFound(format!("{diff_id} (its directory)")))
        }
    }

    /// `dir`, resolved, if it is a directory inside this store's temp area.
    fn committable_dir(&self, dir: &Path) -> Result<PathBuf> {
        let owner_dir = self.owner()?.dir().to_path_buf();
        let canon = dir.canonicalize().at("resolve", dir)?;
        let owner_canon = owner_dir.canonicalize().at("resolve", &owner_dir)?;
        if !canon.starts_with(&owner_canon) || canon == owner_canon || !is_dir(&canon) {
            return Err(Error::InvalidArgument(format!(
                "commit_layer_dir: {} is not a directory inside this store's temp_dir()",
                dir.display()
            )));
        }
        Ok(canon)
    }

    /// The uncompressed tar stream of a layer (its blob written first if
    /// the layer is lazy).
    pub fn layer_tar(&self, diff_id: &Digest) -> Result<Box<dyn Read>> {
        let layer = self
            .layer(diff_id)?
            .ok_or_else(|| Error::LayerNotFound(diff_id.to_string()))?;
        let f = self.open_layer_blob(diff_id, &layer.blob().digest)?;
        let (_, dec) = compression::auto_decompress(BufReader::with_capacity(COPY_BUF, f))
            .map_err(|e| Error::stream(format!("read layer blob {}", layer.blob().digest), e))?;
        Ok(dec)
    }

    /// Renames a finished directory into `layers/`; if another process won
    /// the race, ours is removed.
    fn place_layer_dir(&self, from: PathBuf, dest: &Path) -> Result<()> {
        match fs::rename(&from, dest) {
            Ok(()) => fsync_dir(&self.layout.layers()),
            Err(e) if is_exists_error(&e) => remove_any(&from),
            Err(e) => Err(Error::io("rename into place", dest, e)),
        }
    }
}

/// Reads a layer record.
pub(crate) fn get_layer(r: &impl Reader, diff_id: &Digest) -> Result<Option<Layer>> {
    r.get(Table::Layers, diff_id.as_str())?
        .map(|v| decode(diff_id.as_str(), &v))
        .transpose()
}

/// Runs `write` (the layer's tar) while the freshly written tree at `dir`
/// is flushed to disk: both take as long as the layer is big, and they
/// overlap well (the tar is read from the page cache while writeback goes
/// on). Fails if either fails.
fn synced_while<T>(dir: &Path, write: impl FnOnce() -> Result<T>) -> Result<T> {
    std::thread::scope(|s| {
        let sync = s.spawn(|| {
            let t = std::time::Instant::now();
            let r = sync_tree(dir);
            tracing::debug!("synced {} in {:?}", dir.display(), t.elapsed());
            r
        });
        let t = std::time::Instant::now();
        let written = write();
        tracing::debug!(
            "layer tar of {} written in {:?}",
            dir.display(),
            t.elapsed()
        );
        let synced = sync
            .join()
            .unwrap_or_else(|_| Err(Error::InvalidArgument("sync thread panicked".into())));
        let written = written?;
        synced?;
        Ok(written)
    })
}

/// Above this many entries a tree is flushed with one `syncfs` rather
/// than an fsync per entry.
const FSYNC_EACH_MAX: usize = 256;

/// Makes a freshly written tree durable: an fsync of each file and
/// directory when it is small (a build step's layer usually is), else one
/// `syncfs`. On a disk shared with other busy processes, `syncfs` writes
/// out *their* dirty data too and can take hundreds of milliseconds; a few
/// fsyncs of our own files cost far less.
fn sync_tree(p: &Path) -> Result<()> {
    let mut files = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        files.push(d.clone());
        for e in fs::read_dir(&d).at("read directory", &d)? {
            let e = e.at("read directory", &d)?;
            let ft = e.file_type().at("stat", e.path())?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files.push(e.path());
            }
            if files.len() + stack.len() > FSYNC_EACH_MAX {
                return syncfs(p);
            }
        }
    }
    for f in &files {
        File::open(f).and_then(|h| h.sync_all()).at("fsync", f)?;
    }
    Ok(())
}

/// Flushes the filesystem holding `p` (one call instead of an fsync per
/// file of an unpacked tree).
fn syncfs(p: &Path) -> Result<()> {
    let f = File::open(p).at("open", p)?;
    rustix::fs::syncfs(&f).at("syncfs", p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ls, store};

    #[test]
    fn ingest_compressed_layer_then_unpack_lazily() {
        let (_t, s) = store();
        let tar = testkit::busybox_layer();
        let gz = testkit::gzip(&tar);
        let l = s.ingest_layer(&gz[..], LayerHints::default()).unwrap();
        assert_eq!(l.diff_id.as_str(), testkit::sha256(&tar));
        assert_eq!(l.blob().digest.as_str(), testkit::sha256(&gz));
        assert_eq!(l.blob().media_type, media::OCI_LAYER_GZIP);
        assert_eq!(l.size, tar.len() as u64);
        assert!(!s.layout.layer_dir(&l.diff_id).exists(), "unpacked lazily");
        let dir = s.unpacked_dir(&l.diff_id).unwrap();
        assert!(dir.join("bin/busybox").is_file());
        assert_eq!(s.unpacked_dir(&l.diff_id).unwrap(), dir);
        let mut back = Vec::new();
        s.layer_tar(&l.diff_id)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
    }

    #[test]
    fn wrong_digests_leave_nothing() {
        let (_t, s) = store();
        let tar = testkit::busybox_layer();
        let wrong = Digest::of(b"something else");
        for hints in [
            LayerHints {
                diff_id: Some(&wrong),
                ..Default::default()
            },
            LayerHints {
                blob_digest: Some(&wrong),
                ..Default::default()
            },
        ] {
            let e = s.ingest_layer(&tar[..], hints).unwrap_err();
            assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        }
        let e = s.ingest_blob(&b"data"[..], Some(&wrong)).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        assert!(ls(&s.layout.blobs()).is_empty());
        assert!(
            ls(s.owner().unwrap().dir()).is_empty(),
            "no temporary files left"
        );
        assert!(s.layer(&Digest::of(&tar)).unwrap().is_none());
    }

    #[test]
    fn hostile_layer_is_refused_at_ingest() {
        let (_t, s) = store();
        let tar = testkit::rawtar::raw_tar(&[testkit::rawtar::RawEntry::file("../x", b"x")]);
        let e = s.ingest_layer(&tar[..], LayerHints::default()).unwrap_err();
        assert!(e.to_string().contains("'..'"), "{e}");
        assert!(ls(&s.layout.blobs()).is_empty());
    }

    #[test]
    fn concurrent_unpacks_share_one_directory() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Store>();
        let (_t, s) = store();
        let l = s
            .ingest_layer(&testkit::busybox_layer()[..], LayerHints::default())
            .unwrap();
        let dirs: Vec<PathBuf> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| sc.spawn(|| s.unpacked_dir(&l.diff_id).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(dirs.iter().all(|d| d == &dirs[0]));
        assert_eq!(ls(&s.layout.layers()).len(), 1);
        assert!(
            ls(s.owner().unwrap().dir()).is_empty(),
            "no half-unpacked copies left"
        );
    }

    #[test]
    fn bzip2_and_xz_layers_are_named_in_the_error() {
        let (_t, s) = store();
        for (head, name) in [
            (&b"BZh91AY&SY"[..], "bzip2"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0][..], "xz"),
        ] {
            let e = s
                .ingest_layer(head, LayerHints::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("{name}-compressed layers are not supported")),
                "{e}"
            );
        }
        assert!(ls(&s.layout.blobs()).is_empty());
    }

    #[test]
    fn commit_layer_dir_renames_without_extracting() {
        let (_t, s) = store();
        let scratch = s.temp_dir().unwrap();
        let upper = scratch.path().join("upper");
        fs::create_dir_all(upper.join("app")).unwrap();
        fs::write(upper.join("app/hello"), b"hi\n").unwrap();
        let ino =
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(upper.join("app/hello")).unwrap());
        let layer = s
            .commit_layer_dir(&upper, |w| {
                let mut b = tar::Builder::new(w);
                b.append_dir_all(".", &upper)?;
                b.finish()
            })
            .unwrap();
        let dir = s.unpacked_dir(&layer.diff_id).unwrap();
        let moved = fs::metadata(dir.join("app/hello")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&moved),
            ino,
            "renamed, not copied"
        );
        assert!(!upper.exists());
        assert_eq!(layer.blob().digest, layer.diff_id);
        assert!(s.has_blob(&layer.diff_id));

        let outside = tempfile::tempdir().unwrap();
        let e = s.commit_layer_dir(outside.path(), |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("temp_dir"), "{e}");
    }

    /// Writes the tar of a lazy layer's own directory the way the test
    /// committed it.
    struct OwnDir;

    impl crate::Materialize for OwnDir {
        fn write_tar(&self, s: &Store, r: &LayerRecipe, w: &mut dyn Write) -> io::Result<()> {
            let dir = s
                .own_layer_dir(r.own_dir.as_ref().unwrap())
                .map_err(io::Error::other)?;
            let mut b = tar::Builder::new(w);
            b.append_path_with_name(dir.join("app/hello"), "app/hello")?;
            b.finish()
        }
    }

    #[test]
    fn commit_layer_dir_lazy_stores_no_blob_until_read() {
        let (_t, s) = store();
        let base = s
            .ingest_layer(
                &testkit::write_layer_tar(Vec::new(), &[]).unwrap()[..],
                Default::default(),
            )
            .unwrap();
        let scratch = s.temp_dir().unwrap();
        let upper = scratch.path().join("upper");
        fs::create_dir_all(upper.join("app")).unwrap();
        fs::write(upper.join("app/hello"), b"hi\n").unwrap();
        let tar_of = |dir: &Path, w: &mut dyn Write| {
            let mut b = tar::Builder::new(w);
            b.append_path_with_name(dir.join("app/hello"), "app/hello")?;
            b.finish()
        };
        let mut want = Vec::new();
        tar_of(&upper, &mut want).unwrap();
        let layer = s
            .commit_layer_dir_lazy(&upper, vec![base.diff_id.clone()], Some(7), |w| {
                tar_of(&upper, w)
            })
            .unwrap();
        assert_eq!(layer.diff_id, Digest::of(&want));
        assert_eq!(layer.size, want.len() as u64);
        let recipe = layer.recipe.clone().unwrap();
        assert_eq!(recipe.own_dir.as_ref(), Some(&layer.diff_id));
        assert_eq!(recipe.lowers, vec![base.diff_id.clone()]);
        assert_eq!(recipe.clamp_mtime, Some(7));
        assert!(!upper.exists(), "renamed into place");
        assert!(!s.has_blob(&layer.diff_id), "no blob written at commit");
        let dir = s.unpacked_dir(&layer.diff_id).unwrap();
        assert_eq!(fs::read(dir.join("app/hello")).unwrap(), b"hi\n");

        // Read: the blob is written from the directory, once.
        s.set_materializer(std::sync::Arc::new(OwnDir));
        let mut got = Vec::new();
        s.layer_tar(&layer.diff_id)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, want);
        assert!(s.has_blob(&layer.diff_id));
    }
}
