//! How a sandboxed process ended.

use std::time::Duration;

/// The end of a sandbox run that got as far as starting the command (or
/// was stopped on purpose). Setup failures are errors instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What happened to the command.
    pub status: Status,
    /// The kernel's OOM killer killed a process of the sandbox (its memory
    /// limit was reached).
    pub oom_killed: bool,
    /// The memory limit that applied, for messages.
    pub memory_limit: Option<u64>,
}

/// What happened to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// The caller cancelled the run; the whole sandbox was killed.
    Cancelled,
    /// The run took longer than its timeout; the whole sandbox was killed.
    TimedOut(Duration),
}

impl Outcome {
    /// Exit code 0, and no OOM kill along the way.
    pub fn success(&self) -> bool {
        self.status == Status::Exited(0) && !self.oom_killed
    }

    /// The status as a shell would report it: the exit code, 128 + N for
    /// signal N, 130 when cancelled (as for Ctrl-C), 124 on timeout (as
    /// `timeout(1)`).
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
            Status::Cancelled => 130,
            Status::TimedOut(_) => 124,
        }
    }
}

/// A signal's name, `SIGKILL` style, or its number.
fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Status::Exited(c) => write!(f, "exit code {c}")?,
            Status::Signaled(s) => write!(f, "killed by {}", signal_name(s))?,
            Status::Cancelled => write!(f, "cancelled")?,
            Status::TimedOut(d) => write!(f, "timed out after {d:?}")?,
        }
        if self.oom_killed {
            match self.memory_limit {
                Some(m) => write!(
                    f,
                    " (out of memory: the {} memory limit was reached)",
                    human_bytes(m)
                )?,
                None => write!(f, " (out of memory)")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes() {
        let o = Outcome {
            status: Status::Signaled(9),
            oom_killed: true,
            memory_limit: Some(64 << 20),
        };
        assert_eq!(
            o.to_string(),
            "killed by SIGKILL (out of memory: the 64 MiB memory limit was reached)"
        );
        assert_eq!(o.exit_code(), 137);
        assert!(!o.success());
        let ok = Outcome {
            status: Status::Exited(0),
            oom_killed: false,
            memory_limit: None,
        };
        assert!(ok.success());
        assert_eq!(ok.to_string(), "exit code 0");
    }
}
