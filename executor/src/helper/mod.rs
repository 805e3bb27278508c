//! The sandbox helper: the process that builds and watches one sandbox.
//!
//! # Why a helper process, and why re-exec
//!
//! The caller (kiln's solver) is multi-threaded (rayon, tokio). Forking such
//! a process and then running Rust code in the child is unsound (locks held
//! by other threads are copied locked), and namespace setup needs several
//! processes anyway (a PID namespace only applies to children). So the
//! caller only ever *spawns* (fork + exec, as `std::process::Command`
//! does) a fresh, single-threaded helper — the kiln binary itself, via
//! `/proc/self/exe __kiln-sandbox` — and all namespace, mount and credential
//! work happens there, where `fork` is safe:
//!
//! ```text
//! caller (kiln, threads)           host namespaces
//!  └─ helper  "H"  this module     new session; unshares mount, UTS, IPC,
//!     │                            PID, cgroup (+ network for `none`)
//!     └─ init "I"  init.rs         PID 1: attaches the root, pivot_root,
//!        │                         /proc /dev /sys, mounts, user lookup,
//!        │                         then reaps zombies and forwards signals
//!        └─ command "C" exec.rs    drops privileges, execs the step
//! ```
//!
//! The helper's stdin is a socket to the caller (see [`crate::proto`]): it
//! receives the request and the root filesystem (a detached mount), relays
//! init's events, forwards signals, and kills init — and with it the whole
//! PID namespace — when the caller closes the socket (cancel, timeout, or
//! the caller dying). Init has `PR_SET_PDEATHSIG = SIGKILL` against the
//! helper, so killing the helper also kills everything. Nothing is mounted
//! outside the sandbox's private mount namespace, so the end of the last
//! process unmounts everything, whatever the outcome.
//!
//! A program that embeds the executor must call [`run_if_requested`] first
//! thing in `main` (kiln does), or point [`crate::Runtime::with_helper`] at
//! a binary that does (the crate's `kiln-sandbox` binary).

mod exec;
mod init;
mod mounts;

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use rustix::event::{PollFd, PollFlags};
use rustix::thread::UnshareFlags;

use crate::proto::{self, Command, Event, Failure, HELPER_ARG, Request};
use crate::spec::Network;
use crate::sys;

/// If this process was started as the sandbox helper (its first argument
/// is the hidden `__kiln-sandbox`), runs the helper and exits; otherwise
/// returns at once. Call it before anything else in `main`: before
/// starting threads, parsing arguments or installing loggers.
pub fn run_if_requested() {
    if std::env::args_os().nth(1).as_deref() == Some(OsStr::new(HELPER_ARG)) {
        std::process::exit(main());
    }
}

/// Builds a [`Failure`] for a setup stage.
pub(crate) fn failure(stage: &str, message: impl std::fmt::Display) -> Failure {
    Failure {
        stage: stage.to_string(),
        message: message.to_string(),
        exec: None,
    }
}

fn main() -> i32 {
    // The control socket arrives as stdin; move it out of the way and give
    // everything below a harmless stdin.
    let sock = match take_control_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiln sandbox helper: {e} (this mode is only for kiln's own use)");
            return 125;
        }
    };
    let (request, rootfs) = match proto::recv_with_fd::<Request>(&sock) {
        Ok(Some(r)) => r,
        Ok(None) => return 125,
        Err(e) => {
            let _ = proto::send(&sock, &Event::Failed(failure("reading the request", e)));
            return 125;
        }
    };
    start(request, rootfs, sock)
}

fn take_control_socket() -> std::io::Result<OwnedFd> {
    let stdin = std::io::stdin();
    let sock = rustix::io::fcntl_dupfd_cloexec(stdin.as_fd(), 3)?;
    // Is it really a socket (and not a terminal someone typed into)?
    rustix::net::sockopt::socket_type(&sock)
        .map_err(|_| std::io::Error::other("stdin is not the control socket"))?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    Ok(sock)
}

fn start(request: Request, rootfs: Option<OwnedFd>, sock: OwnedFd) -> i32 {
    let forked = enter_namespaces(&request).and_then(|()| {
        let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| failure("creating a pipe", e))?;
        let fork = sys::fork().map_err(|e| failure("starting the sandbox's init", e))?;
        Ok((pipe, fork))
    });
    match forked {
        Err(f) => {
            let _ = proto::send(&sock, &Event::Failed(f));
            1
        }
        Ok(((events_rd, events_wr), nix::unistd::ForkResult::Child)) => {
            drop(events_rd);
            drop(sock);
            init::run(request, rootfs, events_wr)
        }
        Ok(((events_rd, events_wr), nix::unistd::ForkResult::Parent { child })) => {
            drop(events_wr);
            drop(rootfs);
            supervise(child, events_rd, &sock);
            0
        }
    }
}

/// New session and namespaces for everything below the helper.
fn enter_namespaces(request: &Request) -> Result<(), Failure> {
    // Our own session: the terminal's Ctrl-C goes to kiln, which decides.
    let _ = nix::unistd::setsid();
    let mut ns = UnshareFlags::NEWNS
        | UnshareFlags::NEWUTS
        | UnshareFlags::NEWIPC
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWCGROUP;
    if request.spec.network == Network::None {
        ns |= UnshareFlags::NEWNET;
    }
    sys::unshare(ns).map_err(|e| failure("creating namespaces", e))?;
    // Nothing mounted from now on may propagate back to the host.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| failure("making the mount namespace private", e))?;
    rustix::system::sethostname(request.spec.hostname.as_bytes())
        .map_err(|e| failure("setting the hostname", e))?;
    if request.spec.network == Network::None {
        sys::loopback_up().map_err(|e| failure("bringing up the loopback interface", e))?;
    }
    Ok(())
}

/// Relays init's events to the caller, forwards the caller's signals, and
/// kills init when the caller goes away; returns when init is gone.
fn supervise(init: Pid, events: OwnedFd, sock: &OwnedFd) {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(init.as_raw()).expect("fork returned a valid pid"),
        rustix::process::PidfdFlags::empty(),
    )
    .ok();
    let mut events_open = true;
    let mut sock_open = true;
    let mut finished = false;
    let kill = || {
        let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
    };
    let status = loop {
        let mut fds = Vec::with_capacity(3);
        if events_open {
            fds.push(PollFd::new(&events, PollFlags::IN));
        }
        if sock_open {
            fds.push(PollFd::new(sock, PollFlags::IN));
        }
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        let _ = rustix::event::poll(
            &mut fds,
            if pidfd.is_some() {
                None
            } else {
                Some(&timeout)
            },
        );
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        if events_open {
            if ready[i] {
                match proto::recv::<Event>(&events) {
                    Ok(Some(ev)) => {
                        finished |=
                            matches!(ev, Event::Exited(_) | Event::Signaled(_) | Event::Failed(_));
                        let _ = proto::send(sock, &ev);
                    }
                    _ => events_open = false,
                }
            }
            i += 1;
        }
        if sock_open {
            if ready[i] {
                match proto::recv::<Command>(sock) {
                    Ok(Some(Command::Signal(n))) => {
                        if let Ok(sig) = Signal::try_from(n) {
                            let _ = nix::sys::signal::kill(init, sig);
                        }
                    }
                    // The caller closed its end: cancel, timeout, or gone.
                    _ => {
                        sock_open = false;
                        kill();
                    }
                }
            }
            i += 1;
        }
        let reaped = if pidfd.is_none() || ready[i] {
            match waitpid(init, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => None,
                other => Some(other),
            }
        } else {
            None
        };
        if let Some(s) = reaped {
            break s;
        }
    };
    // Init is gone and with it every process of the sandbox: what it wrote
    // is all in the pipe.
    while events_open {
        match proto::recv::<Event>(&events) {
            Ok(Some(ev)) => {
                finished |= matches!(ev, Event::Exited(_) | Event::Signaled(_) | Event::Failed(_));
                let _ = proto::send(sock, &ev);
            }
            _ => events_open = false,
        }
    }
    if !finished {
        let ev = match status {
            Ok(WaitStatus::Signaled(_, sig, _)) => Event::Signaled(sig as i32),
            Ok(WaitStatus::Exited(_, code)) => Event::Failed(failure(
                "running",
                format!("the sandbox's init exited with status {code} without a result"),
            )),
            other => Event::Failed(failure(
                "running",
                format!("lost the sandbox's init: {other:?}"),
            )),
        };
        let _ = proto::send(sock, &ev);
    }
}
