//! ADD of an `http(s)://` URL: download into a scratch directory, then copy
//! from there like any other source.
//!
//! As BuildKit: the file is named after the URL path's last element
//! (`__unnamed__` when there is none), has mode 0600, and takes its mtime
//! from `Last-Modified`; `--checksum=sha256:…` must match the bytes. The
//! client is `ureq` (blocking, rustls): the copy engine is thread based and
//! needs no async runtime for one download. Git URLs are not supported yet.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest as _, Sha256};

use super::{Error, Result};
use crate::contenthash::Digest;

/// Whether an ADD source is an HTTP(S) URL.
pub fn is_http_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// Whether an ADD source is a Git URL (BuildKit clones these; kiln does not
/// yet).
pub fn is_git_url(src: &str) -> bool {
    src.starts_with("git@")
        || src.starts_with("git://")
        || ((is_http_url(src) || src.starts_with("ssh://"))
            && src.split('#').next().is_some_and(|u| u.ends_with(".git")))
}

/// The file name BuildKit gives a downloaded URL.
pub fn url_filename(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    let base = crate::context::gopath::base(path);
    if base.is_empty() || base == "." || base == "/" {
        "__unnamed__".to_string()
    } else {
        base.to_string()
    }
}

/// A downloaded URL.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The file written (mode 0600).
    pub path: PathBuf,
    /// sha256 of its bytes.
    pub digest: Digest,
    /// `Last-Modified`, seconds since the epoch.
    pub last_modified: Option<i64>,
}

/// Downloads `url` into `dir/<filename>` (streamed, never held in memory),
/// verifies `checksum` when given, sets mode 0600 and the `Last-Modified`
/// time. On a checksum mismatch the file is removed.
pub fn fetch_url(url: &str, checksum: Option<&str>, dir: &Path, filename: &str) -> Result<Fetched> {
    if is_git_url(url) {
        return Err(Error::GitUnsupported {
            url: url.to_string(),
        });
    }
    let want = match checksum {
        Some(c) => Some(Digest::parse(c).ok_or_else(|| {
            Error::Invalid(format!(
                "invalid checksum {c:?}: expected sha256:<64 hex digits>"
            ))
        })?),
        None => None,
    };
    let http = |reason: String| Error::Http {
        url: url.to_string(),
        reason,
    };
    let mut resp = ureq::get(url).call().map_err(|e| http(e.to_string()))?;
    let last_modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let path = dir.join(filename);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode_0600()
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut h = Sha256::new();
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| http(e.to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(&path, e))?;
    }
    drop(out);
    let digest = Digest::from_hasher(h);
    if let Some(w) = want
        && w != digest
    {
        let _ = std::fs::remove_file(&path);
        return Err(Error::ChecksumMismatch {
            url: url.to_string(),
            expected: w.to_string(),
            actual: digest.to_string(),
        });
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| Error::io(&path, e))?;
    if let Some(t) = last_modified {
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: t,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: t,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, &path, &ts, rustix::fs::AtFlags::empty())
            .map_err(|e| Error::io(&path, e.into()))?;
    }
    Ok(Fetched {
        path,
        digest,
        last_modified,
    })
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// Serves one fixed response per connection on 127.0.0.1, `n` times.
    fn serve(body: &'static [u8], n: usize) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().take(n) {
                let mut s = s.unwrap();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn downloads_with_checksum_mode_and_mtime() {
        let base = serve(b"hello", 2);
        let d = tempfile::tempdir().unwrap();
        let url = format!("{base}/files/greeting.txt?x=1");
        assert_eq!(url_filename(&url), "greeting.txt");
        let f = fetch_url(
            &url,
            Some(Digest::of(b"hello").as_str()),
            d.path(),
            "greeting.txt",
        )
        .unwrap();
        assert_eq!(std::fs::read(&f.path).unwrap(), b"hello");
        let md = std::fs::metadata(&f.path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(md.mode() & 0o7777, 0o600);
        assert_eq!(md.mtime(), 1445412480);
        let err = fetch_url(&url, Some(Digest::of(b"other").as_str()), d.path(), "x").unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        assert!(!d.path().join("x").exists());
    }

    #[test]
    fn names_and_git() {
        assert_eq!(url_filename("https://example.com"), "__unnamed__");
        assert_eq!(url_filename("https://example.com/"), "__unnamed__");
        assert_eq!(url_filename("https://example.com/a/b.tar.gz"), "b.tar.gz");
        assert!(is_git_url("https://github.com/moby/buildkit.git#v0.10"));
        assert!(is_git_url("git@github.com:moby/buildkit.git"));
        assert!(!is_git_url("https://example.com/file"));
        let d = tempfile::tempdir().unwrap();
        let e = fetch_url("git@github.com:a/b.git", None, d.path(), "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ADD of git URL git@github.com:a/b.git: not supported yet"
        );
    }
}
