//! Streaming a blob out of a registry, resuming after failures.
//!
//! A connection that resets or stalls mid-body is reopened with `Range:
//! bytes=N-` and the stream goes on where it stopped (up to the client's
//! retry count, with backoff), so a 1 GiB layer survives a hiccup without
//! starting over. A body that *ends cleanly* short of the size the
//! manifest declared, or goes past it, is an error: that is a registry
//! (or proxy) serving the wrong content, not a network failure. The
//! digest is not checked here: the store verifies it while it writes.

use std::io::{self, Read};

use ureq::BodyReader;

use super::client::io_retryable;
use super::error::{Error, Result};
use super::progress::Event;
use super::repository::{Repository, header_str};
use crate::digest::Digest;

/// A blob's bytes as they arrive.
pub struct BlobReader<'r> {
    repo: &'r Repository<'r>,
    digest: Digest,
    url: String,
    /// The size the blob must have, if known.
    expected: Option<u64>,
    pos: u64,
    body: Option<BodyReader<'static>>,
    failures: u32,
    report: bool,
}

impl<'c> Repository<'c> {
    /// Opens a blob for reading. `size` (from a descriptor) is enforced
    /// when given. The first request happens here, so "not found" and
    /// "unauthorized" surface as typed errors.
    pub fn fetch_blob(&'c self, d: &Digest, size: Option<u64>) -> Result<BlobReader<'c>> {
        let mut r = BlobReader {
            repo: self,
            digest: d.clone(),
            url: self.url(&format!("blobs/{d}")),
            expected: size,
            pos: 0,
            body: None,
            failures: 0,
            report: false,
        };
        r.body = Some(r.open()?);
        Ok(r)
    }
}

impl BlobReader<'_> {
    /// Reports [`Event::Progress`] to the client's progress sink.
    pub fn with_progress(mut self) -> Self {
        self.report = true;
        self
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn what(&self) -> String {
        format!("blob {} of {}", self.digest, self.repo.full_name())
    }

    /// Sends the GET (from `pos`), checking status and length.
    fn open(&mut self) -> Result<BodyReader<'static>> {
        let mut req = self.repo.req("GET", self.url.clone());
        if self.pos > 0 {
            req = req.header("range", format!("bytes={}-", self.pos));
        }
        let resp = self.repo.client.send(req)?;
        let status = resp.status().as_u16();
        let length: Option<u64> = header_str(&resp, "content-length").and_then(|s| s.parse().ok());
        let skip = match status {
            200 => {
                if let (Some(want), Some(got)) = (self.expected, length)
                    && want != got
                {
                    return Err(Error::Store(crate::error::Error::SizeMismatch {
                        what: self.what(),
                        expected: want,
                        actual: got,
                    }));
                }
                if self.expected.is_none() {
                    self.expected = length;
                }
                // A server that ignores Range sends everything again.
                self.pos
            }
            206 if self.pos > 0 => 0,
            _ => return Err(self.repo.error_for("GET", &self.url, &self.what(), resp)),
        };
        let mut body = resp.into_body().into_reader();
        if skip > 0 {
            io::copy(&mut (&mut body).take(skip), &mut io::sink()).map_err(|e| {
                Error::Transport {
                    method: "GET".into(),
                    url: self.url.clone(),
                    message: e.to_string(),
                    hint: String::new(),
                }
            })?;
        }
        Ok(body)
    }

    /// Gives up on the current connection; reopens if retries are left.
    fn recover(&mut self, err: io::Error) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        let client = self.repo.client;
        let err = match err.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
            Some(u) => io::Error::new(err.kind(), client.describe(u)),
            None => err,
        };
        if self.failures > client.options().retries {
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "GET {}: {err} (after {} attempts, {} of {} bytes received)",
                    self.url,
                    self.failures,
                    self.pos,
                    self.expected.map_or("?".to_string(), |e| e.to_string())
                ),
            ));
        }
        let what = format!("GET {}", self.url);
        client.progress().event(Event::Retry {
            what: &what,
            error: &err.to_string(),
            attempt: self.failures,
        });
        tracing::debug!("resuming {what} at byte {}: {err}", self.pos);
        std::thread::sleep(client.delay(self.failures));
        match self.open() {
            Ok(b) => {
                self.body = Some(b);
                Ok(())
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                return Err(io::Error::other(format!(
                    "GET {}: connection lost",
                    self.url
                )));
            };
            match body.read(buf) {
                Ok(0) => {
                    if let Some(want) = self.expected
                        && self.pos < want
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "{}: truncated body: the registry sent {} of {want} bytes",
                                self.what(),
                                self.pos
                            ),
                        ));
                    }
                    return Ok(0);
                }
                Ok(n) => {
                    self.pos += n as u64;
                    if let Some(want) = self.expected
                        && self.pos > want
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: more than the declared {want} bytes", self.what()),
                        ));
                    }
                    if self.report {
                        self.repo.client.progress().event(Event::Progress {
                            digest: &self.digest,
                            done: self.pos,
                        });
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if io_retryable(&e) => self.recover(e)?,
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("GET {}: {e}", self.url)));
                }
            }
        }
    }
}
