//! The digest type of content hashes: `sha256:<hex>`, as BuildKit writes
//! them, except for regular files' contents: `blake3:<hex>` (see
//! [`Digest::from_blake3`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A digest in OCI text form: `sha256:` (or, for a file's contents,
/// `blake3:`) + 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(data))
    }

    /// The digest of the empty string (BuildKit's "nothing selected").
    pub fn empty() -> Digest {
        Digest::of(b"")
    }

    /// Finishes a running sha256.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The file digest (see [`Digest::from_blake3`]) of `data`.
    pub fn of_file(data: &[u8]) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(data);
        Digest::from_blake3(h)
    }

    /// Finishes a running BLAKE3: the digest of a regular file (header and
    /// contents). A cold context is hashed for its cache key in full, and
    /// BLAKE3 does that at several times sha256's speed on one core.
    /// These digests never leave kiln's cache keys and stat cache, where
    /// nothing else needs them to be sha256.
    pub fn from_blake3(h: blake3::Hasher) -> Digest {
        Digest(format!("blake3:{}", h.finalize().to_hex()))
    }

    /// Parses `sha256:<64 hex>`; `None` if malformed.
    pub fn parse(s: &str) -> Option<Digest> {
        Self::parse_as(s, "sha256:")
    }

    /// Parses a file digest, `blake3:<64 hex>` (what the stat cache
    /// remembers); `None` if malformed or of another kind, such as an
    /// entry from before file digests were BLAKE3.
    pub fn parse_file(s: &str) -> Option<Digest> {
        Self::parse_as(s, "blake3:")
    }

    fn parse_as(s: &str, prefix: &str) -> Option<Digest> {
        let hex = s.strip_prefix(prefix)?;
        (hex.len() == 64
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
        .then(|| Digest(s.to_string()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_and_parse() {
        let e = Digest::empty();
        assert_eq!(
            e.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(e.as_str()), Some(e));
        assert_eq!(Digest::parse("sha256:abc"), None);
        assert_eq!(
            Digest::parse("md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            None
        );
    }

    #[test]
    fn file_digests_are_blake3_and_parse_apart() {
        let f = Digest::from_blake3(blake3::Hasher::new());
        // BLAKE3 of the empty input.
        assert_eq!(
            f.as_str(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(Digest::parse_file(f.as_str()), Some(f.clone()));
        assert_eq!(Digest::parse(f.as_str()), None);
        assert_eq!(Digest::parse_file(Digest::empty().as_str()), None);
    }
}
