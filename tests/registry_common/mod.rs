//! Shared helpers of the registry integration tests: testkit's [`Kiln`]
//! runner for this crate's `kiln` binary, a two-layer fixture image, and
//! the check that a failed command left nothing in the store.

#![allow(dead_code)]

use testkit::FixtureImage;
pub(crate) use testkit::cli::Kiln;

/// A fresh, empty state directory (with a private docker config) for the
/// `kiln` binary under test.
pub(crate) fn kiln() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}

/// Asserts a failed command left nothing: no image, no temporary file,
/// no blob — except complete, verified layers a failed pull finished
/// before the failure, which nothing references (a retry reuses them)
/// and which `kiln prune` removes.
#[track_caller]
pub(crate) fn assert_empty_store(k: &Kiln) {
    assert_eq!(k.ok(&["images", "-q"]), "", "an image is visible");
    let tmp = k.tmp_entries();
    assert!(tmp.is_empty(), "tmp left: {tmp:?}");
    k.assert_blobs_intact();
    k.ok(&["prune"]);
    assert!(k.blobs().is_empty(), "blobs left: {:?}", k.blobs());
    let layers = k.layer_dirs();
    assert!(layers.is_empty(), "layers left: {layers:?}");
}

/// busybox plus a small second layer.
pub(crate) fn two_layer_image(tag: &str) -> FixtureImage {
    use testkit::rawtar::RawEntry as E;
    let mut img = FixtureImage::busybox(tag);
    img.layers.push(testkit::rawtar::raw_tar(&[
        E::dir("srv/"),
        E::file("srv/hello", b"hello from the second layer\n"),
    ]));
    img
}
