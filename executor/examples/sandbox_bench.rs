//! Sandbox start-up benchmark: prepare a snapshot of the busybox layer, run
//! `/bin/true` in a sandbox, throw the snapshot away — N times — and print
//! the median, as bench/sandbox-start.sh reports it.
//!
//! Usage: sandbox_bench [ITERATIONS] [WORKDIR]   (as root)
//!        sandbox_bench once WORKDIR             (one iteration, for hyperfine)
//!
//! This binary is also its own sandbox helper (`run_if_requested`), like kiln.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use executor::{NullSink, RunIo, Runtime, SandboxSpec, Snapshotter};

fn main() {
    executor::run_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let (iterations, once) = match args.get(1).map(String::as_str) {
        Some("once") => (1, true),
        Some(n) => (n.parse().expect("ITERATIONS"), false),
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
    let snapshotter = Snapshotter::from_env().expect("KILN_SNAPSHOTTER");
    let runtime = Runtime::new();
    let spec = SandboxSpec::new(["/bin/true"]);
    let mut total = Vec::new();
    let mut run_only = Vec::new();
    let mut prep = Vec::new();
    let mut disc = Vec::new();
    for i in 0..iterations {
        let scratch = work.join(format!("scratch-{}-{i}", std::process::id()));
        let t0 = Instant::now();
        let mut snap = snapshotter
            .prepare(&[layer.clone()], &scratch)
            .expect("prepare");
        let t1 = Instant::now();
        let outcome = runtime
            .run(&mut snap, &spec, RunIo::new(&mut NullSink))
            .expect("run");
        let t2 = Instant::now();
        assert!(outcome.success(), "{outcome}");
        if std::env::var_os("BENCH_SLEEP").is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let t3 = Instant::now();
        snap.discard().expect("discard");
        disc.push(t3.elapsed());
        total.push(t0.elapsed());
        run_only.push(t2 - t1);
        prep.push(t1 - t0);
    }
    if once {
        return;
    }
    println!(
        "{iterations} runs of /bin/true: median {:.2} ms prepare+run+discard, {:.2} ms run alone (snapshotter {})",
        ms(median(&mut total)),
        ms(median(&mut run_only)),
        snapshotter.kind()
    );
    if std::env::var_os("BENCH_PHASES").is_some() {
        println!(
            "  prepare {:.2} ms, discard {:.2} ms",
            ms(median(&mut prep)),
            ms(median(&mut disc))
        );
    }
    let _ = Path::new("");
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
