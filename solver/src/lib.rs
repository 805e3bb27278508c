//! The build solver.
//!
//! Owns the build DAG types ([`llb`]) that the frontend compiles into, and
//! (later) the scheduler that runs the vertices a target needs, in parallel,
//! reusing results from the content-addressed cache.

pub mod contenthash;
pub mod context;
pub mod fileop;
pub mod llb;
