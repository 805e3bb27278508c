//! Every `unsafe` operation of the executor, each with the reason it is
//! sound. The workspace denies `unsafe_code`; this module alone allows it.
//!
//! They all run in the sandbox helper, a freshly exec'd, single-threaded
//! process (see `helper`), never in the caller's possibly multi-threaded
//! process: that is what makes `fork` without `exec` safe here.
#![allow(unsafe_code)]

use std::io;

use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::ForkResult;

/// `fork()`.
///
/// Only the sandbox helper calls this, and it is single-threaded (it is a
/// freshly exec'd process that starts no threads), so the child inherits
/// no locks held by other threads and may allocate freely.
pub(crate) fn fork() -> io::Result<ForkResult> {
    // SAFETY: see above — the calling process has exactly one thread.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Resets every catchable signal to its default action.
///
/// Signal dispositions set to "ignore" survive `execve` (Rust's runtime
/// ignores SIGPIPE, for one); the sandboxed command must start with the
/// defaults, as it would under any shell.
pub(crate) fn reset_signal_dispositions() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal
        // context; there is no handler whose safety we could violate.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
}

/// Marks every file descriptor from 3 up close-on-exec, so that nothing
/// the helper inherited or opened leaks into the sandboxed command.
pub(crate) fn cloexec_from_3() -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it closes nothing, so no owned descriptor is invalidated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the loopback interface of the current network namespace up
/// (`ip link set lo up`), with the classic SIOCSIFFLAGS ioctl.
pub(crate) fn loopback_up() -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the result is checked and owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of a valid
    // ifreq that lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled in ifru_flags, the active union field.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above, for SIOCSIFFLAGS, which only reads the struct.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(2)` of the given namespaces.
pub(crate) fn unshare(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    // SAFETY: rustix marks unshare unsafe because CLONE_FILES would split
    // the descriptor table under other threads' feet. The helper has no
    // other threads, and callers never pass FILES.
    debug_assert!(!flags.contains(rustix::thread::UnshareFlags::FILES));
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}
