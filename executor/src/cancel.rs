//! Cancelling running sandboxes, and forwarding signals to them.
//!
//! A [`CancelToken`] is cheap to clone and may be shared by every sandbox
//! of a build: one Ctrl-C cancels them all. Cancelling kills each
//! sandbox's whole process tree and unmounts everything (the sandbox's
//! mount namespace goes away with its last process).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Cancels, or sends signals to, the sandboxes it is given to.
#[derive(Debug, Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cancelled: AtomicBool,
    /// Becomes readable (for good) on cancel, waking every waiting run.
    wake: Option<OwnedFd>,
    /// Signals to forward, in order; each run keeps its own position.
    signals: Mutex<Vec<i32>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that has not been triggered.
    pub fn new() -> Self {
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).ok();
        CancelToken {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                wake,
                signals: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Kills every sandbox running with this token, and any started later.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(fd) = &self.inner.wake {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// Has [`CancelToken::cancel`] been called?
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Forwards signal `sig` (e.g. `libc::SIGTERM`) to the command of every
    /// sandbox running with this token (as `docker run` forwards the
    /// signals it receives). Delivered within 100 ms.
    pub fn signal(&self, sig: i32) {
        if let Ok(mut s) = self.inner.signals.lock() {
            s.push(sig);
        }
    }

    /// Signals sent since position `from`, and the new position.
    pub(crate) fn signals_since(&self, from: usize) -> (Vec<i32>, usize) {
        match self.inner.signals.lock() {
            Ok(s) => (s.get(from..).unwrap_or_default().to_vec(), s.len()),
            Err(_) => (Vec::new(), from),
        }
    }

    /// A descriptor that becomes readable when cancelled.
    pub(crate) fn wake_fd(&self) -> Option<&OwnedFd> {
        self.inner.wake.as_ref()
    }
}
