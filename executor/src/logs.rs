//! Output of sandboxed processes: streamed live to a caller-provided
//! [`LogSink`], and kept whole in a per-step log file.
//!
//! Output is read in chunks of at most [`CHUNK`] bytes and handed on at
//! once, so memory does not grow with the amount printed. The log file is
//! written as `<name>.partial` and renamed to its final name when the step
//! is over (logs are not worth an fsync: a log cut short by a power loss is
//! acceptable, a half-written one under the final name is not).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// The largest chunk of output handed to a sink at once.
pub const CHUNK: usize = 64 * 1024;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives a sandbox's output as it is produced.
pub trait LogSink {
    /// A chunk of output (not necessarily whole lines).
    fn output(&mut self, stream: Stream, data: &[u8]);
    /// The process is gone: flush whatever is buffered.
    fn finish(&mut self) {}
}

/// Discards output (the log file still gets it).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl LogSink for NullSink {
    fn output(&mut self, _: Stream, _: &[u8]) {}
}

/// Collects output in memory, up to a limit (for tests and short commands).
#[derive(Debug, Default, Clone)]
pub struct CaptureSink {
    /// Standard output so far.
    pub stdout: Vec<u8>,
    /// Standard error so far.
    pub stderr: Vec<u8>,
    /// Stop collecting past this many bytes per stream (0 = no limit).
    pub limit: usize,
}

impl LogSink for CaptureSink {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let room = if self.limit == 0 {
            data.len()
        } else {
            self.limit.saturating_sub(buf.len()).min(data.len())
        };
        buf.extend_from_slice(&data[..room]);
    }
}

/// Writes output line by line to `out`, each line prefixed with the step's
/// identity (e.g. `#5 `), as build progress does. Partial lines are held
/// until their end arrives, up to [`CHUNK`] bytes; longer lines are cut.
pub struct PrefixSink<W: Write> {
    prefix: String,
    out: W,
    pending: [Vec<u8>; 2],
}

impl<W: Write> PrefixSink<W> {
    /// A sink writing `prefix`ed lines to `out`.
    pub fn new(prefix: impl Into<String>, out: W) -> Self {
        PrefixSink {
            prefix: prefix.into(),
            out,
            pending: [Vec::new(), Vec::new()],
        }
    }

    /// The writer back.
    pub fn into_inner(mut self) -> W {
        self.finish();
        let PrefixSink { out, .. } = self;
        out
    }

    fn emit(&mut self, idx: usize) {
        let line = std::mem::take(&mut self.pending[idx]);
        let mut buf = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        buf.extend_from_slice(self.prefix.as_bytes());
        buf.extend_from_slice(&line);
        buf.push(b'\n');
        // A sink must not fail the build because the terminal went away.
        let _ = self.out.write_all(&buf);
    }
}

impl<W: Write> LogSink for PrefixSink<W> {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        let idx = stream as usize;
        for piece in data.split_inclusive(|b| *b == b'\n') {
            let (body, done) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let mut body = body;
            while self.pending[idx].len() + body.len() > CHUNK {
                let take = CHUNK - self.pending[idx].len();
                self.pending[idx].extend_from_slice(&body[..take]);
                body = &body[take..];
                self.emit(idx);
            }
            self.pending[idx].extend_from_slice(body);
            if done {
                self.emit(idx);
            }
        }
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        for idx in 0..2 {
            if !self.pending[idx].is_empty() {
                self.emit(idx);
            }
        }
        let _ = self.out.flush();
    }
}

impl<F: FnMut(Stream, &[u8])> LogSink for F {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        self(stream, data)
    }
}

/// A log file being written: `<path>.partial` until [`LogFile::finish`].
pub(crate) struct LogFile {
    file: File,
    partial: PathBuf,
    path: PathBuf,
}

impl LogFile {
    pub(crate) fn create(path: &Path) -> Result<LogFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx("create log directory", dir)?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).ctx("create log file", &partial)?;
        Ok(LogFile {
            file,
            partial,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .ctx("write log file", &self.partial)
    }

    pub(crate) fn finish(self) -> Result<()> {
        drop(self.file);
        std::fs::rename(&self.partial, &self.path).ctx("finish log file", &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sink_writes_whole_prefixed_lines() {
        let mut s = PrefixSink::new("#3 ", Vec::new());
        s.output(Stream::Stdout, b"hel");
        s.output(Stream::Stderr, b"oops\n");
        s.output(Stream::Stdout, b"lo\nwor");
        s.output(Stream::Stdout, b"ld");
        let out = s.into_inner();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "#3 oops\n#3 hello\n#3 world\n"
        );
    }

    #[test]
    fn prefix_sink_cuts_endless_lines() {
        let mut s = PrefixSink::new("> ", Vec::new());
        let big = vec![b'x'; CHUNK * 2 + 10];
        s.output(Stream::Stdout, &big);
        let out = s.into_inner();
        let lines: Vec<&[u8]> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), CHUNK + 2);
        assert_eq!(lines[2].len(), 10 + 2);
    }

    #[test]
    fn capture_sink_respects_its_limit() {
        let mut c = CaptureSink {
            limit: 4,
            ..Default::default()
        };
        c.output(Stream::Stdout, b"abcdef");
        c.output(Stream::Stdout, b"gh");
        assert_eq!(c.stdout, b"abcd");
    }

    #[test]
    fn log_file_appears_only_when_finished() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("logs/step.log");
        let mut f = LogFile::create(&p).unwrap();
        f.write(b"hi\n").unwrap();
        assert!(!p.exists());
        f.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hi\n");
    }
}
