//! BuildKit's shell-word lexer: variable expansion (`$v`, `${v:-w}`,
//! `${v#p}`, `${v/p/r}`, ...), quote removal and word splitting, exactly as
//! `frontend/dockerfile/shell/lex.go` does it. The compiler uses it on the
//! instructions BuildKit expands; the parser uses it to find heredoc words.

mod env;
mod lex;
mod pattern;

pub use env::{Env, EnvList, NoEnv};
pub use lex::{LexError, Lexer, Processed};
