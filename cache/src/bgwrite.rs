//! Writers whose bytes are consumed on a background thread, so that the
//! work of producing them (hashing, walking a tree, reading files) overlaps
//! with the work of consuming them.
//!
//! [`Offload`] hands chunks of [`CHUNK`] bytes to a thread running a
//! consumer; memory is bounded (at most [`DEPTH`] chunks in flight, emptied
//! chunks come back for reuse). An error on the thread is reported by the
//! next `write` or by [`Offload::finish`]. Two consumers:
//!
//! - [`BgWriter`]: writes to a file and fsyncs it at the end, so storing a
//!   1 GiB blob is about the larger of hash time and write time, not their
//!   sum;
//! - [`crate::digest::hash_written`]: sha256, so that producing a layer tar
//!   and hashing it overlap.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

/// Bytes written here are consumed on a background thread; `T` is what
/// the consumer returns at the end.
pub(crate) struct Offload<T> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    /// Emptied buffers coming back, to avoid reallocating.
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<T>>>,
}

/// Writes to a file on a background thread and fsyncs it at the end.
pub(crate) type BgWriter = Offload<File>;

impl BgWriter {
    pub(crate) fn new(file: File) -> BgWriter {
        Offload::spawn(
            file,
            |f, chunk| f.write_all(chunk),
            |f| {
                f.sync_all()?;
                Ok(f)
            },
        )
    }
}

impl<T: Send + 'static> Offload<T> {
    /// Starts the thread: `consume` gets each chunk in order with `state`,
    /// `finish` turns the state into the result once all is consumed.
    pub(crate) fn spawn<S: Send + 'static>(
        mut state: S,
        mut consume: impl FnMut(&mut S, &[u8]) -> io::Result<()> + Send + 'static,
        finish: impl FnOnce(S) -> io::Result<T> + Send + 'static,
    ) -> Offload<T> {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::spawn(move || {
            for mut chunk in rx {
                consume(&mut state, &chunk)?;
                chunk.clear();
                let _ = spare_tx.try_send(chunk);
            }
            finish(state)
        });
        Offload {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            spare,
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.tx.as_ref().expect("not finished");
        if tx.send(full).is_err() {
            // The thread stopped: it failed. Collect its error.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("background thread stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<T> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("background thread panicked"))?,
            None => Err(io::Error::other("background thread already finished")),
        }
    }

    /// Hands over what is buffered, waits for the thread; returns its result.
    pub(crate) fn finish(mut self) -> io::Result<T> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl<T: Send + 'static> Write for Offload<T> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T> Drop for Offload<T> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_in_order() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let mut w = BgWriter::new(File::create(&p).unwrap());
        let mut want = Vec::new();
        for i in 0..3000u32 {
            let piece = vec![(i % 251) as u8; (i as usize * 37) % 5000];
            w.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
        }
        w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), want);
    }

    #[test]
    fn reports_write_errors() {
        // /dev/full fails every write with ENOSPC.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut w = BgWriter::new(f);
        let chunk = vec![0u8; CHUNK];
        let mut failed = false;
        for _ in 0..(DEPTH + 3) {
            if w.write_all(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed || w.finish().is_err());
    }
}
