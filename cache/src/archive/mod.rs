//! Image archives: `docker save`-style tars and OCI image layouts.
//!
//! [`load`] reads docker-archives of every docker version (pre-25
//! `<id>/layer.tar` + `manifest.json`, and Docker 25+ which is also an OCI
//! layout) and plain OCI image-layout tars, with plain, gzip or zstd
//! layers, from any stream (stdin included: one pass, nothing seeks).
//! [`save`] writes one tar that is both a docker-archive and an OCI image
//! layout, as Docker 25+ does, byte-identical for the same images.

mod load;
mod save;

pub(crate) use load::host_arch;
pub use load::{Loaded, load};
pub use save::{SaveItem, save};

/// Normalises an archive member name: no leading `./` or `/`, no `.`
/// components, `..` applied (names escaping the archive are refused by the
/// caller, which never uses them as filesystem paths anyway).
pub(crate) fn clean_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::clean_member;

    #[test]
    fn member_names() {
        assert_eq!(clean_member("./manifest.json").unwrap(), "manifest.json");
        assert_eq!(clean_member("a/../b/layer.tar").unwrap(), "b/layer.tar");
        assert_eq!(clean_member("blobs/sha256/").unwrap(), "blobs/sha256");
        assert!(clean_member("../x").is_none());
    }
}
