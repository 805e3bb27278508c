//! Content digests (`sha256:<hex>`) and the canonical serialisation that
//! vertex digests are computed over.
//!
//! The canonical form is compact JSON produced by serde from the op structs
//! themselves: struct fields serialise in declaration order, maps are
//! `BTreeMap`s (sorted), and no floats are involved, so equal values always
//! give equal bytes. Changing a field's name or order changes every digest;
//! that is deliberate and must come with a version bump of [`DIGEST_VERSION`].

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Mixed into every vertex digest so that a change of the canonical form
/// never collides with digests written by an older kiln.
pub(crate) const DIGEST_VERSION: &str = "kiln.llb.v1";

/// A `sha256:<64 hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Wraps an existing `algorithm:hex` string without checking it.
    pub fn from_string(s: impl Into<String>) -> Self {
        Digest(s.into())
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part after `sha256:`.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(_, h)| h)
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        let h = self.hex();
        &h[..h.len().min(12)]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Canonical bytes of a serialisable value (compact JSON).
pub(crate) fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data structs with string keys cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            Digest::sha256(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::sha256(b"").short(), "e3b0c44298fc");
    }
}
