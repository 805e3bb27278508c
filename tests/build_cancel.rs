//! Ctrl-C during a build: the running step is killed, nothing stays
//! mounted, scratch space is removed, nothing is tagged, and the store
//! keeps working. Needs root.

mod build_common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use build_common::{Kiln, outcome};

fn alive(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

#[test]
fn sigint_cancels_cleanly() {
    let k = Kiln::new();
    // A unique sleep so the check below finds only this test's process.
    let marker = format!("61.{}", std::process::id());
    k.write(
        "Dockerfile",
        format!(
            "FROM busybox\nRUN echo kept > /kept\nRUN echo started && sleep {marker}\nRUN echo never\n"
        ),
    );
    let mut child = k
        .cmd(&["build", "--progress=plain", "-t", "cancel:1", "."])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(" started") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("started"), "the step never started:\n{seen}");
    let wait = Instant::now();
    while !alive(&format!("sleep {marker}")) {
        assert!(wait.elapsed() < Duration::from_secs(10), "sleep never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "kiln did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("cancel"), "{rest}");
    assert!(
        !alive(&format!("sleep {marker}")),
        "the step's process was killed"
    );
    assert!(k.mounts_under_root().is_empty(), "nothing stays mounted");
    // The process's scratch area is gone.
    assert!(
        k.tmp_entries().is_empty(),
        "scratch left behind: {:?}",
        k.tmp_entries()
    );
    // Nothing tagged; the store works; the finished step stays cached.
    k.fails(&["inspect", "cancel:1"]);
    k.ok(&["images"]);
    k.write("Dockerfile", "FROM busybox\nRUN echo kept > /kept\n");
    let p = k.build(&["-t", "after:1"]);
    assert_eq!(outcome(&p, "RUN echo kept"), "CACHED");
}
