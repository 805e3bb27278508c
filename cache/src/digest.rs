//! Content digests (`sha256:<hex>`) and the hashing readers and writers
//! that compute them while data streams past.
//!
//! Only sha256 is accepted: it is what every OCI and docker tool writes,
//! and accepting nothing else keeps blob paths unambiguous.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::bgwrite::Offload;
use crate::error::{Error, Result};

/// A validated `sha256:<64 lower-case hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Digest> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::InvalidDigest(s.to_string()))?;
        if !is_hex64(hex) {
            return Err(Error::InvalidDigest(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }

    /// Builds a digest from its 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if !is_hex64(hex) {
            return Err(Error::InvalidDigest(hex.to_string()));
        }
        Ok(Digest(format!("sha256:{hex}")))
    }

    /// The sha256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(data))))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The first 12 hex digits, as docker shows image IDs.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is exactly 64 lower-case hex digits.
pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A running sha256 with a byte count.
#[derive(Clone, Default)]
pub(crate) struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.len += data.len() as u64;
    }

    pub(crate) fn finish(self) -> (Digest, u64) {
        (
            Digest(format!("sha256:{}", hex::encode(self.sha.finalize()))),
            self.len,
        )
    }
}

/// A reader that hashes everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// Digest and length of everything read so far, and the inner reader.
    pub(crate) fn finish(self) -> (Digest, u64, R) {
        let (d, n) = self.hasher.finish();
        (d, n, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// Digest and length of everything written, and the inner writer.
    pub(crate) fn finish(self) -> (Digest, u64, W) {
        let (d, n) = self.hasher.finish();
        (d, n, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything `write` writes, on a second thread: producing the
/// bytes (walking a tree, reading files, building headers) and hashing
/// them overlap instead of taking turns. sha256 cannot be split, so on a
/// big stream this brings the time down to the larger of the two, not
/// their sum.
pub(crate) fn hash_written(
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<(Digest, u64)> {
    let mut w = Offload::spawn(
        Hasher::default(),
        |h, chunk| {
            h.update(chunk);
            Ok(())
        },
        |h| Ok(h.finish()),
    );
    write(&mut w)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
        for bad in [
            "sha256:abc",
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd/e3b0c44298fc1c149afbf4c8996fb92427ae41",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashing_reader_and_writer_agree() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        let mut w = HashingWriter::new(Vec::new());
        io::copy(&mut r, &mut w).unwrap();
        let (d1, n1, _) = r.finish();
        let (d2, n2, out) = w.finish();
        assert_eq!((d1.clone(), n1), (d2, n2));
        assert_eq!(d1, Digest::of(&data));
        assert_eq!(out, data);
    }

    #[test]
    fn hash_written_matches_a_plain_hash_at_chunk_boundaries() {
        // Lengths around the chunk size and odd write sizes.
        const CHUNK: usize = 1 << 20; // the hashing thread's chunk size
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (d, n) = hash_written(|w| {
                for piece in data.chunks(70_001) {
                    w.write_all(piece)?;
                }
                Ok(())
            })
            .unwrap();
            assert_eq!((d, n), (Digest::of(&data), len as u64), "length {len}");
        }
    }

    #[test]
    fn hash_written_reports_the_writers_error() {
        let err = hash_written(|w| {
            w.write_all(&vec![1u8; 3 << 20])?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
    }
}
