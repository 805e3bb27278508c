//! BuildKit's plain progress: every step numbered in the order it starts
//! (`#5 [2/3] RUN make`), its output line by line with the time since it
//! started (`#5 0.215 compiling…`), then `#5 DONE 1.2s`, `#5 CACHED` or
//! `#5 ERROR: …`; a blank line before each new step.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use solver::solve::{Event, Progress};

use super::{Renderer, secs};

struct Step {
    n: usize,
    start: Instant,
    partial: [Vec<u8>; 2],
}

struct State {
    out: Box<dyn Write + Send>,
    next: usize,
    steps: HashMap<usize, Step>,
    /// The step whose lines were printed last (a blank line separates steps).
    last: Option<usize>,
    /// CLI steps, keyed after every vertex id.
    cli_next: usize,
}

/// Plain renderer.
pub(crate) struct Plain {
    state: Mutex<State>,
}

const CLI_BASE: usize = usize::MAX / 2;

impl Plain {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Plain {
        Plain {
            state: Mutex::new(State {
                out,
                next: 1,
                steps: HashMap::new(),
                last: None,
                cli_next: CLI_BASE,
            }),
        }
    }
}

impl State {
    fn number(&mut self, key: usize) -> usize {
        if let Some(s) = self.steps.get(&key) {
            return s.n;
        }
        let n = self.next;
        self.next += 1;
        self.steps.insert(
            key,
            Step {
                n,
                start: Instant::now(),
                partial: [Vec::new(), Vec::new()],
            },
        );
        n
    }

    fn line(&mut self, key: usize, text: &str) {
        let n = self.number(key);
        if self.last != Some(key) {
            if self.last.is_some() {
                let _ = writeln!(self.out);
            }
            self.last = Some(key);
        }
        let _ = writeln!(self.out, "#{n} {text}");
        let _ = self.out.flush();
    }

    fn log(&mut self, key: usize, stream: usize, data: &[u8]) {
        self.number(key);
        let mut lines = Vec::new();
        {
            let step = self.steps.get_mut(&key).expect("numbered");
            let t = step.start.elapsed().as_secs_f64();
            for piece in data.split_inclusive(|b| *b == b'\n') {
                match piece.strip_suffix(b"\n") {
                    Some(body) => {
                        let mut l = std::mem::take(&mut step.partial[stream]);
                        l.extend_from_slice(body);
                        lines.push(format!("{t:.3} {}", String::from_utf8_lossy(&l)));
                    }
                    None => step.partial[stream].extend_from_slice(piece),
                }
            }
        }
        for l in lines {
            self.line(key, &l);
        }
    }

    fn flush_partial(&mut self, key: usize) {
        let Some(step) = self.steps.get_mut(&key) else {
            return;
        };
        let t = step.start.elapsed().as_secs_f64();
        let parts: Vec<Vec<u8>> = step
            .partial
            .iter_mut()
            .map(std::mem::take)
            .filter(|p| !p.is_empty())
            .collect();
        for p in parts {
            self.line(key, &format!("{t:.3} {}", String::from_utf8_lossy(&p)));
        }
    }
}

impl Progress for Plain {
    fn event(&self, e: Event<'_>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            Event::Started { vertex, name } => s.line(vertex, name),
            Event::Cached { vertex, name } => {
                s.line(vertex, name);
                s.line(vertex, "CACHED");
            }
            Event::Log {
                vertex,
                stream,
                data,
            } => s.log(vertex, stream as usize, data),
            Event::Status { vertex, text } => s.line(vertex, text),
            Event::Done { vertex, elapsed } => {
                s.flush_partial(vertex);
                s.line(vertex, &format!("DONE {}", secs(elapsed)));
            }
            Event::Failed { vertex, error, .. } => {
                s.flush_partial(vertex);
                s.line(vertex, &format!("ERROR: {error}"));
            }
        }
    }
}

impl Renderer for Plain {
    fn begin(&self, name: &str) -> usize {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = s.cli_next;
        s.cli_next += 1;
        s.line(key, name);
        key
    }
    fn note(&self, step: usize, text: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.line(step, text);
    }
    fn end(&self, step: usize, elapsed: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.line(step, &format!("DONE {}", secs(elapsed)));
    }
    fn finish(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn buildkit_plain_format() {
        let buf = Buf::default();
        let p = Plain::new(Box::new(buf.clone()));
        p.event(Event::Cached {
            vertex: 0,
            name: "[1/2] FROM docker.io/library/busybox:latest",
        });
        p.event(Event::Started {
            vertex: 3,
            name: "[2/2] RUN echo hi",
        });
        p.event(Event::Log {
            vertex: 3,
            stream: solver::solve::Stream::Stdout,
            data: b"hi\npart",
        });
        p.event(Event::Done {
            vertex: 3,
            elapsed: Duration::from_millis(1234),
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "#1 [1/2] FROM docker.io/library/busybox:latest");
        assert_eq!(lines[1], "#1 CACHED");
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], "#2 [2/2] RUN echo hi");
        assert!(
            lines[4].starts_with("#2 0.") && lines[4].ends_with(" hi"),
            "{}",
            lines[4]
        );
        assert!(lines[5].ends_with(" part"), "{}", lines[5]);
        assert_eq!(lines[6], "#2 DONE 1.2s");
    }
}
