//! Running any program from a test and insisting on how it ends: the
//! panic message shows the command, its exit status and everything it
//! printed, so a failing test says why.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Panics unless `out` ended the way `success` says; `what` names the
/// command in the message.
#[track_caller]
pub(crate) fn expect(what: &str, out: &Output, success: bool) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if success {
        assert!(
            out.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    } else {
        assert!(
            !out.status.success(),
            "{what} should have failed; stdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// Runs `cmd` (stdout and stderr captured) and expects success.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    expect(&format!("{cmd:?}"), &out, true);
    out
}

/// Runs `cmd` (stdout and stderr captured) and expects failure.
#[track_caller]
pub fn run_fails(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    expect(&format!("{cmd:?}"), &out, false);
    out
}

/// Runs `cmd`, expects success, and returns its stdout.
#[track_caller]
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

/// Runs `cmd` with `input` as its stdin (written from another thread, so
/// a large input cannot deadlock against a full stdout pipe); stdout and
/// stderr are captured. Whether it succeeded is the caller's to check.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for the child");
    writer
        .join()
        .expect("stdin writer")
        .unwrap_or_else(|e| panic!("write the stdin of {cmd:?}: {e}"));
    out
}

/// [`run_with_stdin`], expecting success.
#[track_caller]
pub fn run_ok_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let out = run_with_stdin(cmd, input);
    expect(&format!("{cmd:?}"), &out, true);
    out
}

/// Fails loudly when a tool the tests need is not on `PATH`
/// (`.ci/install-deps` installs them all).
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} is not installed: run .ci/install-deps");
}
