//! Output: streamed live with the step's prefix, kept whole in a log file,
//! in bounded memory however much is printed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use executor::{LogSink, PrefixSink, RunIo, SandboxSpec, SnapshotterKind, Stream};

fn spec(script: &str) -> SandboxSpec {
    let mut s = SandboxSpec::new(["/bin/sh", "-c", script]);
    s.env.push("PATH=/bin:/usr/bin".into());
    s
}

#[test]
fn output_is_prefixed_live_and_kept_in_a_log_file() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "logs");
    let logs = workdir("logs-dir");
    let log = logs.join("build-1/step-3.log");

    /// Remembers when each chunk arrived, and passes it on.
    struct Timed<S> {
        inner: S,
        arrivals: Vec<(Instant, Vec<u8>)>,
    }
    impl<S: LogSink> LogSink for Timed<S> {
        fn output(&mut self, stream: Stream, data: &[u8]) {
            self.arrivals.push((Instant::now(), data.to_vec()));
            self.inner.output(stream, data);
        }
        fn finish(&mut self) {
            self.inner.finish();
        }
    }
    let mut sink = Timed {
        inner: PrefixSink::new("#3 ", Vec::new()),
        arrivals: Vec::new(),
    };
    let o = runtime()
        .run(
            &mut snap,
            &spec("echo first; echo warning >&2; sleep 1; printf 'second\\nno newline'"),
            RunIo::new(&mut sink).log_file(&log),
        )
        .unwrap();
    let end = Instant::now();
    assert!(o.success());
    // The first line reached the sink while the step was still sleeping.
    let (first_at, first) = &sink.arrivals[0];
    assert_eq!(first, b"first\n");
    assert!(
        end - *first_at >= Duration::from_millis(800),
        "output was not live"
    );
    let printed = String::from_utf8(sink.inner.into_inner()).unwrap();
    assert_eq!(printed, "#3 first\n#3 warning\n#3 second\n#3 no newline\n");
    let kept = std::fs::read_to_string(&log).unwrap();
    assert_eq!(kept, "first\nwarning\nsecond\nno newline");
    assert!(!logs.join("build-1/step-3.log.partial").exists());
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn hundreds_of_megabytes_of_output_use_bounded_memory() {
    let mut snap = prepare(SnapshotterKind::Overlay, &[busybox_layer()], "biglog");
    let log = workdir("biglog-dir").join("step.log");
    const SIZE: u64 = 300 << 20;
    let before = peak_rss_kib();
    let mut counted = [0u64; 2];
    let mut sink = |stream: Stream, data: &[u8]| counted[stream as usize] += data.len() as u64;
    let o = runtime()
        .run(
            &mut snap,
            &spec(&format!(
                "head -c {SIZE} /dev/zero | tr '\\0' a; head -c 1000 /dev/zero >&2"
            )),
            RunIo::new(&mut sink).log_file(&log),
        )
        .unwrap();
    assert!(o.success());
    assert_eq!(counted, [SIZE, 1000]);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), SIZE + 1000);
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(
        grew < 32 * 1024,
        "peak memory grew by {grew} KiB for {SIZE} bytes of output"
    );
    std::fs::remove_file(&log).unwrap();
}
