//! The caller's side of a sandbox run.
//!
//! [`Runtime::run`] generates the /etc files, creates the cgroup,
//! spawns the sandbox helper (see [`crate::helper`] for the process
//! design), hands it the request and the root filesystem, then streams the
//! command's output to the sink and the log file while waiting for the
//! end, cancellation or the timeout. Afterwards it reads the OOM counter,
//! removes the cgroup and the mount-point stubs, and reports the
//! [`Outcome`]. Whatever happens, nothing stays mounted: every mount lives
//! in the sandbox's private mount namespace, which dies with its last
//! process.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::cancel::CancelToken;
use crate::cgroup::{Cgroup, Hierarchy};
use crate::error::{Error, Result};
use crate::fsutil::set_mtime;
use crate::logs::{CHUNK, LogFile, LogSink, Stream};
use crate::outcome::{Outcome, Status};
use crate::proto::{self, Command, Event, Failure, HELPER_ARG, Request, Stub};
use crate::snapshot::{RootfsSource, Snapshot};
use crate::spec::SandboxSpec;

/// How long the helper gets to clean up after being told to stop, before
/// it is killed outright.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How often signals queued on a [`CancelToken`] are looked at.
const SIGNAL_TICK: Duration = Duration::from_millis(100);

/// Starts sandboxes.
#[derive(Debug, Clone)]
pub struct Runtime {
    helper: PathBuf,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a run's output goes, and when it must stop.
pub struct RunIo<'a> {
    sink: &'a mut dyn LogSink,
    log_file: Option<PathBuf>,
    cancel: Option<CancelToken>,
    timeout: Option<Duration>,
}

impl<'a> RunIo<'a> {
    /// Output streamed to `sink`; no log file, no cancellation, no timeout.
    pub fn new(sink: &'a mut dyn LogSink) -> Self {
        RunIo {
            sink,
            log_file: None,
            cancel: None,
            timeout: None,
        }
    }

    /// Also keep the whole output (stdout and stderr interleaved as they
    /// arrived) in this file, e.g. `<store>/logs/<build>/<step>.log`. It
    /// appears under this name when the run is over.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Stop (kill everything) when this token is cancelled; forward the
    /// signals sent through it.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Stop (kill everything) after this long.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }
}

impl Runtime {
    /// A runtime that re-executes the current binary as the sandbox helper
    /// (`/proc/self/exe __kiln-sandbox`): the binary's `main` must call
    /// [`crate::run_if_requested`] first.
    pub fn new() -> Self {
        Runtime {
            helper: PathBuf::from("/proc/self/exe"),
        }
    }

    /// A runtime that uses another binary as the helper (one whose `main`
    /// calls [`crate::run_if_requested`], such as this crate's
    /// `kiln-sandbox`).
    pub fn with_helper(path: impl Into<PathBuf>) -> Self {
        Runtime {
            helper: path.into(),
        }
    }

    /// Runs `spec` on `snapshot` and waits for it to end. Output goes to
    /// `io`'s sink as it is produced. Returns how the command ended; errors
    /// are for a sandbox that could not be set up or a command that could
    /// not be started. The snapshot can then be committed or discarded.
    pub fn run(
        &self,
        snapshot: &mut Snapshot,
        spec: &SandboxSpec,
        io: RunIo<'_>,
    ) -> Result<Outcome> {
        spec.validate()?;
        let files = run_files(spec);
        let cgroup = if spec.limits.any() {
            Some(Cgroup::create(
                &Hierarchy::detect()?,
                &crate::cgroup::unique_name(),
                &spec.limits,
            )?)
        } else {
            None
        };
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::os("create a socket pair", e))?;
        let rootfs = snapshot.rootfs_source()?;
        let mut child = std::process::Command::new(&self.helper)
            .arg0("kiln-sandbox")
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("start the sandbox helper", &self.helper, e))?;
        let mut run = Running {
            child: &mut child,
            sock: ours,
            stubs: Vec::new(),
            end: None,
        };
        let result = run.go(snapshot, spec, files, rootfs, cgroup.as_ref(), io);
        let stubs = std::mem::take(&mut run.stubs);
        let end = run.end.take();
        drop(run);
        // Whatever happened, the helper is gone before we look at anything.
        let _ = child.kill_if_running();
        let helper_status = child.wait();
        remove_stubs(snapshot.writable_dir(), &stubs);
        let oom = cgroup.as_ref().is_some_and(Cgroup::oom_killed);
        drop(cgroup);
        let stopped = result?;
        let outcome = |status| Outcome {
            status,
            oom_killed: oom,
            memory_limit: spec.limits.memory,
        };
        if let Some(s) = stopped {
            return Ok(outcome(s));
        }
        match end {
            Some(Event::Exited(c)) => Ok(outcome(Status::Exited(c))),
            Some(Event::Signaled(s)) => Ok(outcome(Status::Signaled(s))),
            Some(Event::Failed(f)) if oom => Err(Error::Setup {
                stage: f.stage,
                message: format!(
                    "{} (out of memory: the memory limit was reached)",
                    f.message
                ),
            }),
            Some(Event::Failed(f)) => Err(failure_error(f)),
            // The OOM killer took the helper or init itself: everything died.
            _ if oom => Ok(outcome(Status::Signaled(libc::SIGKILL))),
            _ => Err(Error::Helper(format!(
                "{} ended ({}) without reporting a result; is it a kiln binary whose main calls executor::run_if_requested()?",
                self.helper.display(),
                helper_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string())
            ))),
        }
    }
}

trait KillIfRunning {
    fn kill_if_running(&mut self) -> std::io::Result<()>;
}

impl KillIfRunning for Child {
    fn kill_if_running(&mut self) -> std::io::Result<()> {
        match self.try_wait()? {
            Some(_) => Ok(()),
            None => self.kill(),
        }
    }
}

fn failure_error(f: Failure) -> Error {
    match f.exec {
        Some((program, errno)) => Error::Exec {
            program,
            errno,
            message: f.message,
        },
        None => Error::Setup {
            stage: f.stage,
            message: f.message,
        },
    }
}

/// The generated /etc files: hosts, resolv.conf (and hostname). They are
/// never written to disk: the sandbox serves them from a private tmpfs.
fn run_files(spec: &SandboxSpec) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "/etc/hosts".to_string(),
            crate::network::hosts_file(&spec.hostname, &spec.extra_hosts),
        ),
        (
            "/etc/resolv.conf".to_string(),
            crate::network::resolv_conf(spec.network),
        ),
    ];
    if spec.hostname_file {
        files.push(("/etc/hostname".to_string(), format!("{}\n", spec.hostname)));
    }
    files
}

/// One run in progress.
struct Running<'c> {
    child: &'c mut Child,
    sock: OwnedFd,
    stubs: Vec<Stub>,
    end: Option<Event>,
}

impl Running<'_> {
    /// Talks to the helper until everything is closed. Returns
    /// `Some(status)` when the run was stopped (cancel, timeout).
    fn go(
        &mut self,
        snapshot: &Snapshot,
        spec: &SandboxSpec,
        files: Vec<(String, String)>,
        rootfs: RootfsSource,
        cgroup: Option<&Cgroup>,
        io: RunIo<'_>,
    ) -> Result<Option<Status>> {
        let RunIo {
            sink,
            log_file,
            cancel,
            timeout,
        } = io;
        if let Some(cg) = cgroup {
            cg.add(self.child.id())?;
        }
        let mut log = match &log_file {
            Some(p) => Some(LogFile::create(p)?),
            None => None,
        };
        let (legacy, fd) = match rootfs {
            RootfsSource::Detached(fd) => (None, Some(fd)),
            RootfsSource::Legacy(l) => (Some(l), None),
        };
        let request = Request {
            spec: spec.clone(),
            mount_point: snapshot.mount_point(),
            legacy,
            files,
        };
        let sent = match &fd {
            Some(fd) => proto::send_with_fd(&self.sock, &request, fd.as_fd()),
            None => proto::send(&self.sock, &request),
        };
        drop(fd);
        if let Err(e) = sent {
            // The helper died at once: its stderr says why, if anything.
            let mut why = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut why);
            }
            return Err(Error::Helper(format!(
                "could not send the request: {e} {}",
                why.trim()
            )));
        }

        let mut stdout = self.child.stdout.take();
        let mut stderr = self.child.stderr.take();
        let mut sock_open = true;
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut stopped: Option<Status> = None;
        let mut stop_sent_at: Option<Instant> = None;
        let mut signal_pos = 0;
        let mut buf = vec![0u8; CHUNK];
        let mut failed_write: Option<Error> = None;

        while stdout.is_some() || stderr.is_some() || sock_open {
            // Stop requests.
            if stopped.is_none() {
                let why = if cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
                    Some(Status::Cancelled)
                } else if deadline.is_some_and(|d| Instant::now() >= d) {
                    Some(Status::TimedOut(timeout.unwrap_or_default()))
                } else {
                    None
                };
                if let Some(s) = why {
                    stopped = Some(s);
                    stop_sent_at = Some(Instant::now());
                    // The helper reads EOF and kills the sandbox's init.
                    let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Write);
                }
            }
            if let Some(t) = stop_sent_at
                && t.elapsed() > KILL_GRACE
            {
                let _ = self.child.kill_if_running();
            }
            if let (Some(c), None) = (&cancel, stopped) {
                let (sigs, pos) = c.signals_since(signal_pos);
                signal_pos = pos;
                for s in sigs {
                    let _ = proto::send(&self.sock, &Command::Signal(s));
                }
            }

            let mut wait: Option<Duration> = None;
            let mut shorten = |d: Duration| wait = Some(wait.map_or(d, |w: Duration| w.min(d)));
            if let (Some(d), None) = (deadline, stopped) {
                shorten(d.saturating_duration_since(Instant::now()));
            }
            if cancel.is_some() && stopped.is_none() {
                shorten(SIGNAL_TICK);
            }
            if let Some(t) = stop_sent_at {
                shorten(KILL_GRACE.saturating_sub(t.elapsed()) + Duration::from_millis(10));
            }

            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            let mut slots = [usize::MAX; 4];
            if let Some(o) = &stdout {
                slots[0] = fds.len();
                fds.push(PollFd::new(o, PollFlags::IN));
            }
            if let Some(e) = &stderr {
                slots[1] = fds.len();
                fds.push(PollFd::new(e, PollFlags::IN));
            }
            if sock_open {
                slots[2] = fds.len();
                fds.push(PollFd::new(&self.sock, PollFlags::IN));
            }
            if let (Some(c), None) = (&cancel, stopped)
                && let Some(w) = c.wake_fd()
            {
                slots[3] = fds.len();
                fds.push(PollFd::new(w, PollFlags::IN));
            }
            let ts = wait.map(|d| rustix::event::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as _,
            });
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::os("wait for the sandbox", e)),
            }
            let ready: Vec<bool> = (0..4)
                .map(|i| slots[i] != usize::MAX && !fds[slots[i]].revents().is_empty())
                .collect();
            drop(fds);

            for (idx, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
                if !ready[idx] {
                    continue;
                }
                let got = match idx {
                    0 => stdout.as_ref().map(|p| rustix::io::read(p, &mut buf)),
                    _ => stderr.as_ref().map(|p| rustix::io::read(p, &mut buf)),
                };
                let closed = match got {
                    None => false,
                    Some(Ok(0)) => true,
                    Some(Ok(n)) => {
                        sink.output(stream, &buf[..n]);
                        if let (Some(l), None) = (&mut log, &failed_write)
                            && let Err(e) = l.write(&buf[..n])
                        {
                            failed_write = Some(e);
                        }
                        false
                    }
                    Some(Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN)) => false,
                    Some(Err(_)) => true,
                };
                if closed {
                    if idx == 0 {
                        stdout = None;
                    } else {
                        stderr = None;
                    }
                }
            }
            if ready[2] {
                match proto::recv::<Event>(&self.sock) {
                    Ok(Some(Event::Stubs(s))) => self.stubs.extend(s),
                    Ok(Some(Event::Started)) => {}
                    Ok(Some(ev)) => self.end = Some(ev),
                    Ok(None) | Err(_) => sock_open = false,
                }
            }
        }
        sink.finish();
        if let Some(l) = log {
            l.finish()?;
        }
        if let Some(e) = failed_write {
            return Err(e);
        }
        Ok(stopped)
    }
}

/// Removes mount-point stubs (deepest first) from the writable layer,
/// when they are still what the sandbox created (an empty file, an empty
/// directory), and gives their parent directory back the mtime it had
/// before — unless the command changed it too.
fn remove_stubs(root: &Path, stubs: &[Stub]) {
    for s in stubs.iter().rev() {
        let p = root.join(&s.path);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let untouched = if s.dir {
            m.is_dir()
                && std::fs::read_dir(&p)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
        } else {
            m.is_file() && m.len() == 0
        };
        if !untouched {
            continue;
        }
        let Some(parent) = p.parent() else { continue };
        let Ok(pm) = std::fs::symlink_metadata(parent) else {
            continue;
        };
        let removed = if s.dir {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if removed.is_err() {
            continue;
        }
        let now = (pm.mtime(), pm.mtime_nsec());
        let (before, after) = s.parent_mtime;
        let restore = if now == after { before } else { now };
        let _ = set_mtime(parent, restore.0, restore.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_removed_only_when_untouched() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/hosts"), "").unwrap();
        std::fs::write(r.join("etc/used"), "data").unwrap();
        std::fs::create_dir_all(r.join("mnt/cache")).unwrap();
        set_mtime(&r.join("etc"), 1000, 0).unwrap();
        let m = std::fs::metadata(r.join("etc")).unwrap();
        let stubs = vec![
            Stub {
                path: "etc/hosts".into(),
                dir: false,
                parent_mtime: ((500, 0), (m.mtime(), m.mtime_nsec())),
            },
            Stub {
                path: "etc/used".into(),
                dir: false,
                parent_mtime: ((500, 0), (1, 0)),
            },
            Stub {
                path: "mnt".into(),
                dir: true,
                parent_mtime: ((0, 0), (0, 0)),
            },
            Stub {
                path: "mnt/cache".into(),
                dir: true,
                parent_mtime: ((0, 0), (0, 0)),
            },
        ];
        remove_stubs(r, &stubs);
        assert!(!r.join("etc/hosts").exists());
        assert!(
            r.join("etc/used").exists(),
            "a stub the command wrote to is kept"
        );
        assert!(!r.join("mnt").exists());
        let m = std::fs::metadata(r.join("etc")).unwrap();
        assert_eq!((m.mtime(), m.mtime_nsec()), (500, 0));
    }
}
