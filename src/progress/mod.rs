//! Rendering build progress: BuildKit's plain line protocol
//! ([`plain::Plain`]), a live terminal view ([`tty::Tty`], indicatif), or
//! nothing (quiet). All of it goes to stderr.

pub(crate) mod plain;
pub(crate) mod tty;

use std::io::IsTerminal;
use std::sync::Arc;

use solver::solve::{NullProgress, Progress};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    /// A live view per step.
    Tty,
    /// BuildKit's numbered lines, all output.
    Plain,
    /// Nothing (only the image ID on stdout).
    Quiet,
}

impl Mode {
    /// Resolves `auto` against stderr.
    pub(crate) fn resolve(self) -> Mode {
        match self {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Mode::Auto => Mode::Plain,
            m => m,
        }
    }
}

/// What the build command needs from a renderer besides solver events.
pub(crate) trait Renderer: Progress {
    /// An extra step of the CLI's own (`exporting to image`): returns its
    /// handle.
    fn begin(&self, name: &str) -> usize;
    /// A status line of such a step.
    fn note(&self, step: usize, text: &str);
    /// Ends such a step.
    fn end(&self, step: usize, elapsed: std::time::Duration);
    /// Stops live drawing (before printing errors or results).
    fn finish(&self);
}

/// A renderer that shows nothing.
pub(crate) struct Quiet;

impl Progress for Quiet {
    fn event(&self, e: solver::solve::Event<'_>) {
        NullProgress.event(e);
    }
}

impl Renderer for Quiet {
    fn begin(&self, _: &str) -> usize {
        0
    }
    fn note(&self, _: usize, _: &str) {}
    fn end(&self, _: usize, _: std::time::Duration) {}
    fn finish(&self) {}
}

/// The renderer for a mode.
pub(crate) fn renderer(mode: Mode) -> Arc<dyn RendererProgress> {
    match mode.resolve() {
        Mode::Quiet => Arc::new(Quiet),
        Mode::Tty => Arc::new(tty::Tty::new()),
        Mode::Plain | Mode::Auto => Arc::new(plain::Plain::new(Box::new(std::io::stderr()))),
    }
}

/// A renderer usable as the solver's progress.
pub(crate) trait RendererProgress: Renderer {
    /// Upcast for the solver.
    fn as_progress(self: Arc<Self>) -> Arc<dyn Progress>;
}

impl<T: Renderer + 'static> RendererProgress for T {
    fn as_progress(self: Arc<Self>) -> Arc<dyn Progress> {
        self
    }
}

/// Seconds with one decimal, BuildKit style (`1.2s`).
pub(crate) fn secs(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
