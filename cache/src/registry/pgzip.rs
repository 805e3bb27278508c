//! Parallel gzip for pushing big layers, pigz-style: the input is cut
//! into blocks compressed on all cores, each with the previous block's
//! last 32 KiB as its dictionary and ending on a byte boundary (a sync
//! flush), so the blocks concatenate into one ordinary gzip member that
//! every decoder reads. The output depends only on the input, the level
//! and [`BLOCK`] — not on the number of threads — so a layer compresses
//! to the same digest on every machine.
//!
//! The compressed stream is handed over as a [`Read`] fed through a
//! bounded channel: an error on the compressing side reaches the reader
//! as an error, never as a clean (truncated) end of stream.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per block.
pub(crate) const BLOCK: usize = 1 << 20;
/// The deflate window: the dictionary each block gets from the one before.
const WINDOW: usize = 32 << 10;

/// A reader of the gzip compression of `input`, computed on `threads`
/// threads (blocks in flight at once).
pub(crate) fn gzip_reader<R: Read + Send + 'static>(
    input: R,
    level: u32,
    threads: usize,
) -> GzipReader {
    let (tx, rx) = sync_channel(threads.max(1) * 2);
    let handle = std::thread::spawn(move || {
        if let Err(e) = compress(input, level, threads.max(1), &tx) {
            let _ = tx.send(Err(e));
        }
    });
    GzipReader {
        rx,
        buf: Vec::new(),
        pos: 0,
        handle: Some(handle),
    }
}

/// The compressed stream (see [`gzip_reader`]).
pub(crate) struct GzipReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    handle: Option<JoinHandle<()>>,
}

impl Read for GzipReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    if let Some(h) = self.handle.take() {
                        h.join()
                            .map_err(|_| io::Error::other("the gzip thread panicked"))?;
                    }
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads up to `BLOCK` bytes (fewer only at the end).
fn read_block(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    r.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// Bytes of each block tried at level 1 to tell incompressible data.
const SAMPLE: usize = 64 << 10;

/// Whether `data` looks incompressible (already compressed or random):
/// its first [`SAMPLE`] bytes do not shrink by 2% at level 1.
fn incompressible(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(SAMPLE)];
    if sample.len() < 4096 {
        return false;
    }
    let mut c = Compress::new(Compression::new(1), false);
    let mut out = Vec::with_capacity(sample.len() + 1024);
    if c.compress_vec(sample, &mut out, FlushCompress::Finish)
        .is_err()
    {
        return false;
    }
    out.len() * 100 >= sample.len() * 98
}

/// Raw deflate of `data` with `dict`, ending with a sync flush, or
/// finishing the stream when `last`. Incompressible blocks are stored
/// (level 0): deflating random bytes costs a second per 60 MB and saves
/// nothing. The choice depends only on the data.
fn deflate_block(data: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let level = if incompressible(data) { 0 } else { level };
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == data.len();
        let room = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once all input is in and the
            // compressor stopped short of filling the buffer.
            Status::Ok | Status::BufError if !last && done_input && room => return Ok(out),
            _ => out.reserve(out.capacity().max(64 << 10)),
        }
    }
}

fn compress(
    mut input: impl Read,
    level: u32,
    threads: usize,
    tx: &SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<()> {
    let send = |v: Vec<u8>| {
        tx.send(Ok(v))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "gzip reader dropped"))
    };
    // Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
    send(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = flate2::Crc::new();
    let mut dict: Vec<u8> = Vec::new();
    let mut next = read_block(&mut input)?;
    loop {
        // A round: up to `threads` blocks, compressed at once.
        let mut blocks = Vec::with_capacity(threads);
        let mut last = false;
        while blocks.len() < threads {
            let block = std::mem::take(&mut next);
            crc.update(&block);
            next = if block.len() == BLOCK {
                read_block(&mut input)?
            } else {
                Vec::new()
            };
            last = next.is_empty();
            let d = std::mem::replace(
                &mut dict,
                block[block.len().saturating_sub(WINDOW)..].to_vec(),
            );
            blocks.push((block, d, last));
            if last {
                break;
            }
        }
        let outs: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
            let hs: Vec<_> = blocks
                .iter()
                .map(|(b, d, l)| s.spawn(move || deflate_block(b, d, level, *l)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("gzip worker panicked")))
                })
                .collect()
        });
        for o in outs {
            send(o?)?;
        }
        if last {
            break;
        }
    }
    let mut trailer = crc.sum().to_le_bytes().to_vec();
    trailer.extend_from_slice(&crc.amount().to_le_bytes());
    send(trailer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gz(data: Vec<u8>, threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        gzip_reader(io::Cursor::new(data), 6, threads)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_and_is_independent_of_threads() {
        let mut data = Vec::new();
        let mut x: u32 = 1;
        // Compressible text with some noise, 3.5 blocks.
        while data.len() < 3 * BLOCK + BLOCK / 2 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.extend_from_slice(format!("line {} {}\n", data.len() % 977, x >> 28).as_bytes());
        }
        let one = gz(data.clone(), 1);
        let two = gz(data.clone(), 2);
        let four = gz(data.clone(), 4);
        assert_eq!(one, two);
        assert_eq!(one, four);
        assert!(one.len() < data.len() / 3, "it compresses: {}", one.len());
        assert_eq!(gunzip(&one), data);
        // The system's gzip agrees.
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), &one).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(t.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn random_blocks_are_stored_and_still_round_trip() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data: Vec<u8> = (0..2 * BLOCK + 100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(incompressible(&data));
        // Followed by a compressible block.
        data.extend(std::iter::repeat_n(b'z', BLOCK));
        let z = gz(data.clone(), 2);
        assert!(
            z.len() < data.len() - BLOCK / 2,
            "{} vs {}",
            z.len(),
            data.len()
        );
        assert!(z.len() > 2 * BLOCK, "the random part is stored");
        assert_eq!(gunzip(&z), data);
    }

    #[test]
    fn edge_sizes() {
        for len in [0, 1, WINDOW, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(gunzip(&gz(data.clone(), 2)), data, "len {len}");
        }
    }

    #[test]
    fn input_errors_reach_the_reader() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'a');
                self.0 -= n;
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let e = gzip_reader(Failing(3 * BLOCK), 6, 2)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
    }
}
