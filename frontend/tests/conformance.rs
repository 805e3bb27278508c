//! Runs BuildKit's parser corpus (`shared/conformance/buildkit-parser`):
//! every positive case must dump byte-identically to its `result`, every
//! negative case must be rejected. The corpus lives outside the repository;
//! it is looked up in `$KILN_CONFORMANCE_DIR`, else in `shared/` next to
//! the workspace root or one of its ancestors. A missing corpus FAILS.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILN_CONFORMANCE_DIR") {
        return PathBuf::from(d);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors().skip(1) {
        let c = dir.join("shared/conformance/buildkit-parser");
        if c.is_dir() {
            return c;
        }
    }
    panic!(
        "BuildKit parser corpus not found: expected shared/conformance/buildkit-parser next to the \
         workspace root ({}/../shared) or one of its ancestors, or KILN_CONFORMANCE_DIR",
        manifest.parent().unwrap().display()
    );
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn buildkit_positive_cases_dump_identically() {
    let dir = corpus_dir().join("testfiles");
    let mut failures = Vec::new();
    let all = cases(&dir);
    for case in &all {
        let src = fs::read(case.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(case.join("result"))
            .unwrap()
            .replace("\r\n", "\n");
        match frontend::parse(&src) {
            Ok(ast) => {
                let got = ast.dump();
                if got != expected {
                    let first = got
                        .lines()
                        .zip(expected.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    failures.push(format!(
                        "{}: line {}:\n  got:      {:?}\n  expected: {:?}",
                        case.display(),
                        first + 1,
                        got.lines().nth(first),
                        expected.lines().nth(first)
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: parse error: {e}", case.display())),
        }
    }
    assert_eq!(
        all.len(),
        33,
        "expected 33 positive cases in {}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn buildkit_negative_cases_are_rejected() {
    let dir = corpus_dir().join("testfiles-negative");
    let all = cases(&dir);
    assert_eq!(
        all.len(),
        4,
        "expected 4 negative cases in {}",
        dir.display()
    );
    for case in &all {
        let src = fs::read(case.join("Dockerfile")).unwrap();
        assert!(
            frontend::parse(&src).is_err(),
            "{} was accepted",
            case.display()
        );
    }
}
