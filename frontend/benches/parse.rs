//! Parser benchmark (not a test): parses a generated 10,000-line
//! Dockerfile (every instruction kind, continuations, heredocs, JSON and
//! shell forms, comments) and prints the median and minimum of several
//! runs, plus the time to compile it. Run with
//! `cargo bench -p frontend --bench parse`.

use std::time::{Duration, Instant};

fn generate(lines: usize) -> String {
    let mut s =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\nFROM ${BASE} AS build\n");
    let mut i = 0;
    while s.lines().count() < lines {
        i += 1;
        s.push_str(&format!(
            "# step {i}\nENV VAR_{i}=\"value {i}\" OTHER_{i}=x\nRUN --mount=type=cache,target=/root/.cache \\\n    set -eux; \\\n    echo \"building {i}\" && \\\n    make -j4 target-{i}\nCOPY --chown=app:app --chmod=644 src/file{i}.txt /app/files/\nRUN [\"/bin/sh\", \"-c\", \"echo json {i}\"]\nLABEL com.example.step{i}=\"yes\"\nWORKDIR /app/dir{i}\nRUN <<EOF\necho heredoc {i}\nEOF\nEXPOSE {}\n",
            1000 + i % 50000
        ));
    }
    s.push_str("CMD [\"/app/run\"]\n");
    s
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0])
}

fn main() {
    let src = generate(10_000);
    let n_lines = src.lines().count();
    let runs = 31;
    let mut parse_times = Vec::new();
    let mut nodes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let ast = frontend::parse(src.as_bytes()).expect("benchmark Dockerfile parses");
        parse_times.push(t.elapsed());
        nodes = ast.nodes.len();
    }
    let (median, min) = stats(parse_times);
    println!(
        "parse: {n_lines} lines, {nodes} instructions, {} bytes",
        src.len()
    );
    println!(
        "parse: median {:.2} ms, min {:.2} ms over {runs} runs",
        ms(median),
        ms(min)
    );

    let ast = frontend::parse(src.as_bytes()).unwrap();
    let mut compile_times = Vec::new();
    let mut vertices = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let c = frontend::compile(
            &ast,
            &frontend::CompileOptions::default(),
            &frontend::ScratchResolver,
        )
        .expect("benchmark Dockerfile compiles");
        compile_times.push(t.elapsed());
        vertices = c.definition.vertices.len();
    }
    let (median, min) = stats(compile_times);
    println!(
        "compile: {vertices} vertices, median {:.2} ms, min {:.2} ms over 7 runs",
        ms(median),
        ms(min)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
