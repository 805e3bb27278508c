//! Blobs: content-addressed files under `blobs/sha256/`.
//!
//! A blob is written to the owner's temporary area while its digest is
//! computed, fsynced, leased, and renamed into place; so a file under
//! `blobs/` is always complete and always has the digest of its name.
//! Blobs are never rewritten: storing a blob that exists is a no-op.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::bgwrite::BgWriter;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, remove_any};
use crate::store::{LeaseKind, Store};

/// Copy buffer size for streaming blobs.
pub(crate) const COPY_BUF: usize = 1 << 20;

/// A blob written to the temporary area and not yet in place.
pub(crate) struct PendingBlob {
    pub(crate) path: PathBuf,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes a temporary file when dropped, unless taken.
pub(crate) struct TempGuard(Option<PathBuf>);

impl TempGuard {
    pub(crate) fn new(path: PathBuf) -> TempGuard {
        TempGuard(Some(path))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().expect("guard not taken")
    }

    pub(crate) fn take(mut self) -> PathBuf {
        self.0.take().expect("guard not taken")
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = remove_any(p);
        }
    }
}

/// A temporary file being filled, hashed as it is written (the hashing
/// on the caller's thread, the writing and fsync on another).
pub(crate) struct BlobWriter {
    guard: TempGuard,
    inner: HashingWriter<BgWriter>,
}

impl BlobWriter {
    pub(crate) fn create(path: PathBuf) -> Result<BlobWriter> {
        let f = File::create(&path).at("create", &path)?;
        Ok(BlobWriter {
            inner: HashingWriter::new(BgWriter::new(f)),
            guard: TempGuard::new(path),
        })
    }

    /// Writes out and fsyncs; the blob is then ready to be put in place.
    pub(crate) fn finish(self) -> Result<PendingBlob> {
        let BlobWriter { guard, inner } = self;
        let (digest, size, bg) = inner.finish();
        bg.finish().at("write", guard.path())?;
        let path = guard.take();
        Ok(PendingBlob { path, digest, size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Store {
    /// Streams `r` into the store as a blob, verifying `expected` if
    /// given. Returns its digest and size. Nothing is stored on error.
    pub fn ingest_blob(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        copy(&mut r, &mut w, "blob stream")?;
        let pending = w.finish()?;
        if let Some(want) = expected {
            verify(want, &pending.digest, "blob")?;
        }
        self.commit_blob(pending)
    }

    /// Stores `data` as a blob.
    pub fn put_blob_bytes(&self, data: &[u8]) -> Result<Digest> {
        Ok(self.ingest_blob(data, None)?.0)
    }

    /// Whether the blob is in the store.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.layout.blob(d).exists()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.layout.blob(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(d.to_string()),
            _ => Error::io("open", &p, e),
        })
    }

    /// Reads a small blob (a config, a manifest) whole; refuses blobs over
    /// `limit` bytes.
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let f = self.open_blob(d)?;
        let p = self.layout.blob(d);
        let len = f.metadata().at("stat", &p)?.len();
        if len > limit {
            return Err(Error::InvalidImage {
                what: format!("blob {d}"),
                reason: format!("{len} bytes is larger than the {limit}-byte limit for metadata"),
            });
        }
        let mut v = Vec::with_capacity(len as usize);
        (&f).read_to_end(&mut v).at("read", &p)?;
        Ok(v)
    }

    /// Size of a blob in bytes.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let p = self.layout.blob(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(d.to_string()))
            }
            Err(e) => Err(Error::io("stat", &p, e)),
        }
    }

    pub(crate) fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(self.tmp_path("blob")?)
    }

    /// Leases the blob and moves it into place (or drops it if an equal
    /// blob is already there).
    pub(crate) fn commit_blob(&self, pending: PendingBlob) -> Result<(Digest, u64)> {
        self.lease(&[(LeaseKind::Blob, &pending.digest)])?;
        self.place_blob(&pending)?;
        Ok((pending.digest.clone(), pending.size))
    }

    /// Moves a pending blob into place; the caller has leased it.
    pub(crate) fn place_blob(&self, pending: &PendingBlob) -> Result<()> {
        let dest = self.layout.blob(&pending.digest);
        if dest.exists() {
            return Ok(());
        }
        fs::rename(&pending.path, &dest).at("rename into place", &dest)?;
        fsync_dir(&self.layout.blobs())
    }

    /// Deletes a blob file (garbage collection only).
    pub(crate) fn delete_blob_file(&self, d: &Digest) -> Result<()> {
        remove_any(&self.layout.blob(d))
    }

    /// Path of a blob, for the crate's own streaming readers.
    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.layout.blob(d)
    }
}

/// Compares digests, with an error naming `what`.
pub(crate) fn verify(want: &Digest, got: &Digest, what: &str) -> Result<()> {
    if want != got {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: want.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

/// Copies with a large buffer, naming the source on error.
pub(crate) fn copy(r: &mut impl Read, w: &mut impl Write, what: &str) -> Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::stream(format!("read {what}"), e)),
        };
        w.write_all(&buf[..k])
            .map_err(|e| Error::stream(format!("write {what}"), e))?;
        n += k as u64;
    }
}

/// Whether `p` names an existing directory.
pub(crate) fn is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}
