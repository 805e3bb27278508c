//! A file writer that does its `write`s and the final `fsync` on a
//! background thread, so that hashing (on the caller's thread) overlaps
//! with the disk. Storing a 1 GiB blob is otherwise hash time + write
//! time; with this it is about the larger of the two.
//!
//! Memory is bounded: at most `DEPTH` buffers of `CHUNK` bytes are in
//! flight. An error on the thread is reported by the next `write` or by
//! `finish`.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

/// Writes to a file on a background thread.
pub(crate) struct BgWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    /// Emptied buffers coming back, to avoid reallocating.
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<File>>>,
}

impl BgWriter {
    pub(crate) fn new(file: File) -> BgWriter {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::spawn(move || {
            let mut file = file;
            for mut chunk in rx {
                file.write_all(&chunk)?;
                chunk.clear();
                let _ = spare_tx.try_send(chunk);
            }
            file.sync_all()?;
            Ok(file)
        });
        BgWriter {
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
                .unwrap_or_else(|| io::Error::other("writer thread stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<File> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("writer thread panicked"))?,
            None => Err(io::Error::other("writer already finished")),
        }
    }

    /// Writes what is buffered, waits for the thread, fsyncs; returns the file.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Write for BgWriter {
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

impl Drop for BgWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
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
