//! kiln's own parser cases, in the format of BuildKit's corpus
//! (`cases/<name>/Dockerfile` and the expected dump in `result`), for
//! what that corpus does not cover: heredocs, unknown instructions,
//! non-ASCII text, heredocs under ONBUILD.

use std::fs;
use std::path::Path;

#[test]
fn own_cases_dump_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut n = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case in entries {
        let src = fs::read(case.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(case.join("result")).unwrap();
        let got = frontend::parse(&src)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
            .dump();
        assert_eq!(got, expected, "{}", case.display());
        n += 1;
    }
    assert!(n >= 4, "cases missing in {}", dir.display());
}
