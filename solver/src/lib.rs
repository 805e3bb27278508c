//! The build solver.
//!
//! Owns the build DAG types ([`llb`]) that the frontend compiles into, and
//! the scheduler ([`solve`]) that runs the vertices a target needs, in
//! parallel, reusing results from the content-addressed cache, and turns
//! the results into an image. [`context`], [`contenthash`] and [`fileop`]
//! read the build context and perform COPY/ADD.

pub mod contenthash;
pub mod context;
pub mod fileop;
pub mod llb;
pub mod solve;
