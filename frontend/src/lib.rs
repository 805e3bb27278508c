//! The Dockerfile frontend.
//!
//! Owns everything between Dockerfile text and the build DAG: reading the
//! file (directives, escapes, continuations, heredocs) into an AST that keeps
//! source spans ([`parser`]), typed instructions with validated flags
//! ([`instructions`]), BuildKit's shell-lexer variable expansion
//! ([`shell`]), stage resolution and compilation into [`solver::llb`]
//! vertices plus the image config each stage accumulates ([`compile`]), and
//! BuildKit's lint rules ([`lint`]).
//!
//! Invariants: no input makes any function here panic (the parser is
//! fuzzed); every error that concerns the Dockerfile carries a [`Span`];
//! compiling the same Dockerfile with the same options gives the same
//! vertex digests.

pub mod compile;
mod diagnostic;
mod error;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod shell;
mod span;

pub use compile::{
    CheckReport, CompileOptions, Compiled, ImageMetaResolver, ResolvedImage, ScratchResolver,
    check, compile,
};
pub use diagnostic::render as render_diagnostic;
pub use error::{Error, ErrorKind, Result};
pub use parser::{Ast, Node, parse};
pub use span::{Position, Span};
