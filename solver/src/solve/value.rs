//! What a vertex produces: a filesystem made of store layers, or (for the
//! build context) a source read in place.

use std::path::PathBuf;

use cache::{Digest, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::Result;

/// The diffID of an empty layer tar (1024 zero bytes): what a step that
/// changes nothing produces, as in BuildKit.
pub(crate) const EMPTY_LAYER: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// A filesystem: store layers stacked bottom first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fs {
    /// diffIDs, bottom first: what the filesystem is, as image layers.
    pub(crate) layers: Vec<Digest>,
    /// The layers to stack to *see* it when they differ from `layers` (a
    /// delta copy keeps the previous copy's layer and a thin delta on top
    /// instead of rewriting the files); `None`: `layers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) view: Option<Vec<Digest>>,
}

impl Fs {
    /// The layers to stack, bottom first.
    pub(crate) fn view_layers(&self) -> &[Digest] {
        self.view.as_deref().unwrap_or(&self.layers)
    }

    /// The content identity of the filesystem: the OCI ChainID of its
    /// layers (`scratch` for none). Equal filesystems built any way give
    /// equal ids; it is what consumers' cache keys are made of.
    pub(crate) fn id(&self) -> String {
        chain_id(&self.layers)
    }

    /// The layer directories to use as overlay lowerdirs, topmost first.
    /// Empty layers are left out (they add nothing, and overlayfs refuses
    /// the same directory twice in one mount).
    pub(crate) fn lowers(&self, store: &Store) -> Result<Vec<PathBuf>> {
        dirs(store, &self.lower_layers())
    }

    /// The layers whose directories [`Fs::lowers`] returns, topmost first.
    pub(crate) fn lower_layers(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        for d in self.view_layers().iter().rev() {
            if d.as_str() != EMPTY_LAYER && !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    /// Every layer this value needs kept (for cache-entry pins).
    pub(crate) fn all_layers(&self) -> Vec<Digest> {
        let mut v = self.layers.clone();
        if let Some(view) = &self.view {
            for d in view {
                if !v.contains(d) {
                    v.push(d.clone());
                }
            }
        }
        v
    }
}

/// The unpacked directories of `layers`, in order.
pub(crate) fn dirs(store: &Store, layers: &[Digest]) -> Result<Vec<PathBuf>> {
    Ok(layers
        .iter()
        .map(|d| store.unpacked_dir(d))
        .collect::<std::result::Result<_, _>>()?)
}

/// OCI ChainID of a layer list; `scratch` when empty.
pub(crate) fn chain_id(layers: &[Digest]) -> String {
    let mut it = layers.iter();
    let Some(first) = it.next() else {
        return "scratch".into();
    };
    let mut id = first.as_str().to_string();
    for d in it {
        let mut h = Sha256::new();
        h.update(id.as_bytes());
        h.update(b" ");
        h.update(d.as_str().as_bytes());
        id = format!("sha256:{}", hex::encode(h.finalize()));
    }
    id
}

/// What a vertex produced.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A filesystem.
    Fs(Fs),
    /// The build context (read in place through the build's source tree).
    Context,
}

/// A finished vertex.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    /// Its output.
    pub(crate) value: Value,
    /// The layer it adds on top of its base input (Exec, File), or its whole
    /// content (a File on scratch): the image layer of its history entry.
    pub(crate) layer: Option<Digest>,
    /// When that layer was first made (RFC 3339), for the image history.
    pub(crate) created: Option<String>,
}

impl Done {
    /// The filesystem, or an empty one for the context (which no op uses as
    /// a root filesystem).
    pub(crate) fn fs(&self) -> Option<&Fs> {
        match &self.value {
            Value::Fs(f) => Some(f),
            Value::Context => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_oci() {
        let a = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        assert_eq!(chain_id(&[]), "scratch");
        assert_eq!(chain_id(std::slice::from_ref(&a)), a.as_str());
        let mut h = Sha256::new();
        h.update(format!("{a} {b}"));
        assert_eq!(
            chain_id(&[a, b]),
            format!("sha256:{}", hex::encode(h.finalize()))
        );
    }

    #[test]
    fn empty_layer_digest() {
        assert_eq!(
            cache::Digest::of(&[0u8; 1024]).as_str(),
            EMPTY_LAYER,
            "an empty tar is two zero blocks"
        );
    }
}
