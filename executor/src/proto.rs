//! The protocol between the caller's process and the sandbox helper.
//!
//! The helper's stdin is one end of a Unix socket pair. The caller sends
//! one [`Request`] (with the root filesystem as a detached mount, passed as
//! SCM_RIGHTS), then may send [`Command`]s; the helper answers with
//! [`Event`]s. Closing the caller's end is the kill switch: the helper then
//! kills the whole sandbox. Messages are JSON, each framed by a 4-byte
//! little-endian length. The helper's PID 1 reports to the helper the same
//! way over a pipe.

use std::io;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::snapshot::overlay::LegacyMount;
use crate::spec::SandboxSpec;

/// The hidden first argument that makes a kiln binary act as the sandbox
/// helper.
pub const HELPER_ARG: &str = "__kiln-sandbox";

const MAX_FRAME: usize = 64 << 20;

/// Everything the helper needs to set up and run the sandbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) spec: SandboxSpec,
    /// The directory to attach the root filesystem on (the snapshot's
    /// scratch directory, covered only inside the sandbox).
    pub(crate) mount_point: PathBuf,
    /// When set, mount this overlay instead of attaching a received mount.
    pub(crate) legacy: Option<LegacyMount>,
    /// Generated files to mount read-only: (target, content).
    pub(crate) files: Vec<(String, String)>,
}

/// Caller → helper, after the request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Forward this signal to the command.
    Signal(i32),
}

/// Helper (and its PID 1) → caller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum Event {
    /// Mount-point stubs created in the root filesystem, to remove after
    /// the run. Sent before the command starts.
    Stubs(Vec<Stub>),
    /// The command is running.
    Started,
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal.
    Signaled(i32),
    /// Setup failed before the command ran.
    Failed(Failure),
}

/// A setup failure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Failure {
    pub(crate) stage: String,
    pub(crate) message: String,
    /// Set when the failure was `execve` itself: (program, errno).
    pub(crate) exec: Option<(String, Option<i32>)>,
}

/// A file or directory the sandbox created only to mount something on it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Stub {
    /// Path relative to the root filesystem (no leading `/`).
    pub(crate) path: String,
    /// A directory (else an empty file).
    pub(crate) dir: bool,
    /// The parent directory's mtime before and after the stub was created.
    pub(crate) parent_mtime: ((i64, i64), (i64, i64)),
}

fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on EOF before the first.
fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match rustix::io::read(fd, &mut buf[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => n += k,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Sends one message.
pub(crate) fn send<T: Serialize>(fd: impl AsFd, msg: &T) -> io::Result<()> {
    write_all(fd.as_fd(), &encode(msg)?)
}

/// Sends one message with a file descriptor attached (`fd` must be a
/// socket).
pub(crate) fn send_with_fd<T: Serialize>(
    sock: impl AsFd,
    msg: &T,
    pass: BorrowedFd<'_>,
) -> io::Result<()> {
    let frame = encode(msg)?;
    let fds = [pass];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let sent = rustix::net::sendmsg(
        sock.as_fd(),
        &[IoSlice::new(&frame)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    write_all(sock.as_fd(), &frame[sent..])
}

/// Receives one message; `None` when the peer closed the connection.
pub(crate) fn recv<T: DeserializeOwned>(fd: impl AsFd) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    if !read_exact(fd.as_fd(), &mut len)? {
        return Ok(None);
    }
    recv_body(fd.as_fd(), u32::from_le_bytes(len) as usize).map(Some)
}

fn recv_body<T: DeserializeOwned>(fd: BorrowedFd<'_>, len: usize) -> io::Result<T> {
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "message of {len} bytes is too large"
        )));
    }
    let mut body = vec![0u8; len];
    if !read_exact(fd, &mut body)? && len > 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&body).map_err(io::Error::other)
}

/// Receives one message and the descriptor attached to it, if any.
pub(crate) fn recv_with_fd<T: DeserializeOwned>(
    sock: impl AsFd,
) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    let sock = sock.as_fd();
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut len)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut passed = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                passed.get_or_insert(fd);
            }
        }
    }
    if got == 0 {
        return Ok(None);
    }
    if got < 4 && !read_exact(sock, &mut len[got..])? {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let msg = recv_body(sock, u32::from_le_bytes(len) as usize)?;
    Ok(Some((msg, passed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    #[test]
    fn frames_and_descriptors_cross_a_socket_pair() {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(&a, &Event::Exited(3), file.as_fd()).unwrap();
        send(&a, &Event::Signaled(9)).unwrap();
        drop(a);
        let (first, fd) = recv_with_fd::<Event>(&b).unwrap().unwrap();
        assert_eq!(first, Event::Exited(3));
        assert!(fd.is_some());
        assert_eq!(recv::<Event>(&b).unwrap(), Some(Event::Signaled(9)));
        assert_eq!(recv::<Event>(&b).unwrap(), None);
    }
}
