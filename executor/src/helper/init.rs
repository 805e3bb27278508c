//! PID 1 of the sandbox.
//!
//! Sets the sandbox up (root filesystem, mounts, user, working directory),
//! starts the command as its only child, then does what an init must:
//! reaps every zombie reparented to it, forwards the signals it receives to
//! the command, and exits with the command's status the moment the command
//! ends — which makes the kernel kill whatever the command left behind,
//! since a PID namespace dies with its PID 1 (docker's `--init` / tini
//! behaviour).
//!
//! It is not dumpable, so the command (even as root, without
//! CAP_SYS_PTRACE) cannot open `/proc/1/exe`, `/proc/1/fd` or
//! `/proc/1/mem` — the kiln binary and the helper's descriptors stay out
//! of reach.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{exec, failure, mounts};
use crate::proto::{self, Event, Failure, Request};
use crate::user::{self, ExecUser};

/// Largest passwd/group file read (BuildKit's limit).
const MAX_USER_FILE: u64 = 10 << 20;

/// Runs PID 1; never returns.
pub(super) fn run(request: Request, rootfs: Option<OwnedFd>, report: OwnedFd) -> ! {
    let (event, code) = match init(request, rootfs, &report) {
        Ok(ev) => (ev, 0),
        Err(f) => (Event::Failed(f), 1),
    };
    let _ = proto::send(&report, &event);
    std::process::exit(code)
}

fn init(request: Request, rootfs: Option<OwnedFd>, report: &OwnedFd) -> Result<Event, Failure> {
    // Die with the helper, whatever kills it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| failure("setting the parent-death signal", e))?;
    if helper_gone(report) {
        std::process::exit(1);
    }
    // `ps` in the sandbox shows PID 1 as what it is.
    let _ = rustix::thread::set_name(c"kiln-init");
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| failure("making init non-dumpable", e))?;
    rustix::process::umask(rustix::fs::Mode::empty());
    // Every signal is taken with sigwait, below; blocked from now on so
    // none (SIGCHLD above all) is lost before the loop starts.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
        .map_err(|e| failure("blocking signals", e))?;

    let prepared = mounts::prepare(&request)?;
    mounts::enter_rootfs(&request, rootfs)?;
    let stubs = mounts::setup(&request.spec, prepared)?;
    let user = resolve_user(&request.spec.user)?;
    make_workdir(Path::new(&request.spec.cwd), &user)?;
    proto::send(report, &Event::Stubs(stubs)).map_err(|e| failure("reporting", e))?;

    let (exec_rd, exec_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| failure("creating a pipe", e))?;
    let child = match crate::sys::fork().map_err(|e| failure("starting the command", e))? {
        nix::unistd::ForkResult::Child => {
            drop(exec_rd);
            exec::run(&request.spec, &user, exec_wr)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(exec_wr);
    // The pipe closes on a successful exec (close-on-exec) or carries the
    // reason it failed.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = rustix::io::read(&exec_rd, &mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if !buf.is_empty() {
        let _ = waitpid(child, None);
        return Err(serde_json::from_slice::<Failure>(&buf)
            .unwrap_or_else(|_| failure("starting the command", String::from_utf8_lossy(&buf))));
    }
    proto::send(report, &Event::Started).map_err(|e| failure("reporting", e))?;
    Ok(reap(child))
}

/// Is the helper already gone (the parent-death signal was set too late)?
fn helper_gone(report: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        report,
        rustix::event::PollFlags::OUT,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => fds[0].revents().contains(rustix::event::PollFlags::ERR),
        Err(_) => false,
    }
}

/// Waits for the command; reaps every other child on the way and forwards
/// the signals init receives.
fn reap(child: Pid) -> Event {
    let all = SigSet::all();
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return Event::Exited(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    return Event::Signaled(s as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

fn read_user_file(path: &str) -> Result<Option<String>, Failure> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.len() > MAX_USER_FILE {
        return Err(failure(
            "resolving the user",
            format!("{path} is larger than {MAX_USER_FILE} bytes"),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| failure("resolving the user", format!("{path}: {e}")))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn resolve_user(spec: &str) -> Result<ExecUser, Failure> {
    let passwd = read_user_file("/etc/passwd")?;
    let group = read_user_file("/etc/group")?;
    user::resolve(spec, passwd.as_deref(), group.as_deref())
        .map_err(|e| failure("resolving the user", e))
}

/// Creates the working directory when missing: 0755, owned by the user,
/// like BuildKit. Existing directories are left alone.
fn make_workdir(cwd: &Path, user: &ExecUser) -> Result<(), Failure> {
    let mut p = PathBuf::from("/");
    for comp in cwd.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        p.push(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(failure(
                    "creating the working directory",
                    format!("{} exists and is not a directory", p.display()),
                ));
            }
            Err(_) => {}
        }
        let err = |e: std::io::Error| {
            failure(
                "creating the working directory",
                format!("{}: {e}", p.display()),
            )
        };
        std::fs::create_dir(&p).map_err(err)?;
        rustix::fs::chmod(&p, rustix::fs::Mode::from_raw_mode(0o755)).map_err(|e| err(e.into()))?;
        rustix::fs::chown(
            &p,
            Some(rustix::fs::Uid::from_raw(user.uid)),
            Some(rustix::fs::Gid::from_raw(user.gid)),
        )
        .map_err(|e| err(e.into()))?;
    }
    Ok(())
}
