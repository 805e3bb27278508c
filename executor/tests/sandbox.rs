//! The sandbox, for real: namespaces, mounts, users, isolation.

mod common;

use common::*;
use executor::{SnapshotterKind, Status};

#[test]
fn echo_runs_and_exit_codes_propagate() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "echo");
    let (o, out, err) = sh(&mut snap, "echo hello; echo oops >&2; exit 3");
    assert_eq!(o.status, Status::Exited(3), "{err}");
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
}
