//! The Dockerfile frontend.
//!
//! Owns everything between Dockerfile text and the build DAG: reading the
//! file (directives, escapes, continuations, heredocs) into an AST that keeps
//! source spans, typed instructions with validated flags, BuildKit's
//! shell-lexer variable expansion, stage resolution, and compilation into
//! [`solver::llb`] vertices plus the image config each stage accumulates.
