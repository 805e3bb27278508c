//! How compilation learns about base images: the [`ImageMetaResolver`]
//! trait, implemented by the CLI against the store and registries, and
//! [`ScratchResolver`] for tools that must not touch either.

use solver::llb::{Image, Platform};

/// A base image as the resolver found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference to pull: the normalised one, with `@sha256:<digest>`
    /// appended when the resolver pinned the manifest.
    pub reference: String,
    /// The image config (Env, WorkingDir, User, Shell, OnBuild, history,
    /// rootfs...).
    pub config: Image,
    /// The image is known to have no layers at all: it is treated as
    /// `scratch` (as BuildKit does).
    pub no_layers: bool,
}

/// Resolves a normalised image reference for a platform.
pub trait ImageMetaResolver {
    /// Resolves `reference` (already normalised, e.g.
    /// `docker.io/library/alpine:3.20`) for `platform`. The error text is
    /// shown to the user after the reference.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// A resolver that knows no image: every image has an empty config for
/// the requested platform. Used by `kiln debug graph` and `kiln check`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScratchResolver;

impl ImageMetaResolver for ScratchResolver {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            reference: reference.to_string(),
            config: Image {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                ..Image::default()
            },
            no_layers: false,
        })
    }
}
