//! The frontend's error type: every error that comes from the Dockerfile
//! carries the span it is about, so the CLI can print
//! `file:line:col`, the line and a caret.

use crate::Span;

/// What stage of the frontend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The Dockerfile text could not be parsed (directives, JSON, heredocs).
    Parse,
    /// An instruction is malformed: unknown instruction, bad flag, wrong
    /// number of arguments, invalid value.
    Instruction,
    /// Variable expansion failed (bad substitution, unterminated quote,
    /// `${v?message}`).
    Expansion,
    /// Stage resolution failed: unknown target or stage, cycle, bad index.
    Stage,
    /// A base image's metadata could not be resolved.
    Resolve,
    /// `# check=error=true` turned warnings into an error.
    Lint,
}

/// A frontend error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
    /// The message, without location.
    pub message: String,
    /// Where in the Dockerfile, when known.
    pub span: Option<Span>,
}

/// The frontend's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` at `span`.
    pub fn new(kind: ErrorKind, message: impl Into<String>, span: Option<Span>) -> Self {
        Error {
            kind,
            message: message.into(),
            span,
        }
    }

    /// A parse error.
    pub fn parse(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::Parse, message, Some(span))
    }

    /// An instruction error.
    pub fn instruction(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::Instruction, message, Some(span))
    }

    /// Sets the span if the error has none yet.
    pub fn or_span(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    /// Renders the error the way `kiln` prints it: the message, then
    /// ` --> file:line:col`, the source line and a caret under the span.
    pub fn render(&self, file: &str, source: &str) -> String {
        crate::diagnostic::render("error", &self.message, file, source, self.span)
    }
}
