//! Sandbox start-up benchmark (driven by `bench/sandbox-start.sh`).
//!
//! Each iteration prepares a snapshot of a busybox layer, runs `/bin/true`
//! in a fresh sandbox and discards the snapshot; the medians of the three
//! phases are printed. `run` is the sandbox itself — spawn the helper,
//! namespaces, pivot_root, /proc /dev /sys, hosts/resolv.conf, user
//! lookup, exec, wait, teardown — and is what compares to `buildah run` on
//! an existing container.
//!
//! Usage (as root):
//!   sandbox_bench [ITERATIONS] [WORKDIR]
//!   sandbox_bench once WORKDIR        one iteration, no output (for hyperfine)
//!
//! `KILN_SNAPSHOTTER=copy` benchmarks the copy snapshotter. The binary is
//! its own sandbox helper (`run_if_requested`), as kiln is.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use executor::{NullSink, RunIo, Runtime, SandboxSpec, Snapshotter};

fn main() {
    executor::run_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let (iterations, quiet) = match args.get(1).map(String::as_str) {
        Some("once") => (1, true),
        Some(n) => (n.parse().expect("ITERATIONS must be a number"), false),
        None => (50, false),
    };
    let work = PathBuf::from(
        args.get(2)
            .cloned()
            .unwrap_or_else(|| "/var/tmp/kiln-bench".into()),
    );
    let layer = work.join("busybox");
    if !layer.exists() {
        testkit::write_busybox_rootfs(&layer).expect("write busybox rootfs");
    }
    let lowers = vec![layer];
    let snapshotter = Snapshotter::from_env().expect("KILN_SNAPSHOTTER");
    let runtime = Runtime::new();
    let spec = SandboxSpec::new(["/bin/true"]);
    let (mut prepare, mut run, mut discard, mut total) = (vec![], vec![], vec![], vec![]);
    for i in 0..iterations {
        let scratch = work.join(format!("scratch-{}-{i}", std::process::id()));
        let t0 = Instant::now();
        let mut snap = snapshotter.prepare(&lowers, &scratch).expect("prepare");
        let t1 = Instant::now();
        let outcome = runtime
            .run(&mut snap, &spec, RunIo::new(&mut NullSink))
            .expect("run");
        let t2 = Instant::now();
        assert!(outcome.success(), "/bin/true: {outcome}");
        snap.discard().expect("discard");
        let t3 = Instant::now();
        prepare.push(t1 - t0);
        run.push(t2 - t1);
        discard.push(t3 - t2);
        total.push(t3 - t0);
    }
    if quiet {
        return;
    }
    println!(
        "{iterations} × /bin/true ({} snapshotter): median run {:.2} ms; prepare {:.2} ms, discard {:.2} ms, total {:.2} ms",
        snapshotter.kind(),
        ms(&mut run),
        ms(&mut prepare),
        ms(&mut discard),
        ms(&mut total),
    );
}

/// The median, in milliseconds.
fn ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}
