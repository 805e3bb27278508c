//! Reading `.dockerignore` files (moby's `ignorefile.ReadAll`) and choosing
//! which one applies to a build.
//!
//! `<Dockerfile>.dockerignore` next to the Dockerfile, when it exists,
//! replaces the context's `.dockerignore`; the two are never merged.

use std::io;
use std::path::{Path, PathBuf};

use super::gopath;

/// Parses ignore-file text: strips a UTF-8 BOM, skips lines starting with `#`
/// and blank lines, trims, keeps a `!` prefix, cleans each pattern with Go's
/// `filepath.Clean` and drops a leading `/`.
pub fn parse_ignore_file(data: &[u8]) -> Vec<String> {
    let data = data
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(data);
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = gopath::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    out
}

/// Where a build's ignore patterns came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFile {
    /// The file read, or `None` when there was none.
    pub path: Option<PathBuf>,
    /// Its patterns, in order.
    pub patterns: Vec<String>,
}

/// Finds and reads the ignore file for a build: `<dockerfile>.dockerignore`
/// beside the Dockerfile when it exists (pass `None` for a Dockerfile read
/// from stdin), otherwise `<context>/.dockerignore`, otherwise no patterns.
pub fn load_ignore_file(context_dir: &Path, dockerfile: Option<&Path>) -> io::Result<IgnoreFile> {
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        candidates.push(df.with_file_name(n));
    }
    candidates.push(context_dir.join(".dockerignore"));
    for c in candidates {
        match std::fs::read(&c) {
            Ok(data) => {
                return Ok(IgnoreFile {
                    patterns: parse_ignore_file(&data),
                    path: Some(c),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", c.display()),
                ));
            }
        }
    }
    Ok(IgnoreFile {
        path: None,
        patterns: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_moby() {
        let text = "\u{FEFF}# comment\n  \n  *.log  \n!  keep.log\n/abs/path/\n./rel/../other\n#notcomment-after-space? no\n  # indented is a pattern\r\n!/root\n/\n";
        assert_eq!(
            parse_ignore_file(text.as_bytes()),
            vec![
                "*.log",
                "!keep.log",
                "abs/path",
                "other",
                "# indented is a pattern",
                "!root",
                "/"
            ]
        );
    }

    #[test]
    fn bom_only_on_first_line() {
        let text = "a\n\u{FEFF}b\n";
        assert_eq!(parse_ignore_file(text.as_bytes()), vec!["a", "\u{FEFF}b"]);
    }

    #[test]
    fn lone_bang_is_kept_for_the_matcher_to_reject() {
        assert_eq!(parse_ignore_file(b"!\n"), vec!["!"]);
    }

    #[test]
    fn dockerfile_specific_file_replaces_context_file() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join(".dockerignore"), "from-context\n").unwrap();
        let df_dir = tempfile::tempdir().unwrap();
        let df = df_dir.path().join("app.Dockerfile");
        std::fs::write(&df, "FROM scratch\n").unwrap();

        let got = load_ignore_file(ctx.path(), Some(&df)).unwrap();
        assert_eq!(got.patterns, vec!["from-context"]);
        assert_eq!(
            got.path.as_deref(),
            Some(ctx.path().join(".dockerignore").as_path())
        );

        std::fs::write(
            df_dir.path().join("app.Dockerfile.dockerignore"),
            "only-this\n",
        )
        .unwrap();
        let got = load_ignore_file(ctx.path(), Some(&df)).unwrap();
        assert_eq!(got.patterns, vec!["only-this"]);

        let got = load_ignore_file(ctx.path(), None).unwrap();
        assert_eq!(got.patterns, vec!["from-context"]);

        std::fs::remove_file(ctx.path().join(".dockerignore")).unwrap();
        let got = load_ignore_file(ctx.path(), None).unwrap();
        assert_eq!(
            got,
            IgnoreFile {
                path: None,
                patterns: vec![]
            }
        );
    }
}
