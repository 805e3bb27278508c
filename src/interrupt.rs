//! Ctrl-C and SIGTERM for long-running commands (`build`, `run`).
//!
//! [`Interrupts::install`] blocks SIGINT, SIGTERM and SIGHUP in the calling
//! thread — call it before any other thread exists, so that every thread
//! inherits the mask — and starts a thread that waits for them with
//! `sigwait` and hands them to a callback. No signal handler runs, so no
//! async-signal-safety rules apply and no `unsafe` is needed. Child
//! processes inherit the blocked mask; the executor's sandbox resets it
//! before it runs a command.

use nix::sys::signal::{SigSet, Signal};

/// The signals kiln turns into cancellation.
fn set() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGINT);
    s.add(Signal::SIGTERM);
    s.add(Signal::SIGHUP);
    s
}

/// Waits for SIGINT/SIGTERM/SIGHUP on a thread of its own.
pub(crate) struct Interrupts;

impl Interrupts {
    /// Blocks the signals and calls `on_signal(signal number, count so
    /// far)` for each one received, from a background thread.
    pub(crate) fn install(on_signal: impl Fn(i32, usize) + Send + 'static) -> anyhow::Result<()> {
        let s = set();
        s.thread_block()?;
        std::thread::Builder::new()
            .name("kiln-signals".into())
            .spawn(move || {
                let mut n = 0;
                while let Ok(sig) = s.wait() {
                    n += 1;
                    on_signal(sig as i32, n);
                }
            })?;
        Ok(())
    }
}
