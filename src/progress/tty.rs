//! The live terminal view (indicatif): a header with the elapsed time, one
//! line per step — spinning while it runs, with the last line of its
//! output beneath it, then `CACHED`/its duration — and the failed step's
//! last lines kept on screen.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use solver::solve::{Event, Progress};

use super::{Renderer, secs};

const TAIL: usize = 6;

struct Step {
    name: String,
    bar: ProgressBar,
    tail_bar: Option<ProgressBar>,
    tail: VecDeque<String>,
    partial: Vec<u8>,
    start: Instant,
}

struct State {
    steps: HashMap<usize, Step>,
    done: usize,
    cli_next: usize,
}

/// Live renderer.
pub(crate) struct Tty {
    mp: MultiProgress,
    header: ProgressBar,
    start: Instant,
    state: Mutex<State>,
}

fn style(t: &str) -> ProgressStyle {
    ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Tty {
    pub(crate) fn new() -> Tty {
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = mp.add(ProgressBar::new_spinner());
        header.set_style(style("[+] Building {msg}"));
        header.enable_steady_tick(Duration::from_millis(100));
        Tty {
            mp,
            header,
            start: Instant::now(),
            state: Mutex::new(State {
                steps: HashMap::new(),
                done: 0,
                cli_next: usize::MAX / 2,
            }),
        }
    }

    fn update_header(&self, s: &State) {
        self.header.set_message(format!(
            "{} ({}/{})",
            secs(self.start.elapsed()),
            s.done,
            s.steps.len()
        ));
    }

    fn start_step(&self, s: &mut State, key: usize, name: &str) {
        let bar = self.mp.add(ProgressBar::new_spinner());
        bar.set_style(style(" {spinner} {wide_msg} {elapsed:>4}"));
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        s.steps.insert(
            key,
            Step {
                name: name.to_string(),
                bar,
                tail_bar: None,
                tail: VecDeque::new(),
                partial: Vec::new(),
                start: Instant::now(),
            },
        );
        self.update_header(s);
    }

    fn end_step(&self, s: &mut State, key: usize, label: &str) {
        if let Some(step) = s.steps.get_mut(&key) {
            if let Some(t) = step.tail_bar.take() {
                t.finish_and_clear();
                self.mp.remove(&t);
            }
            step.bar.set_style(style(" => {wide_msg}"));
            let d = secs(step.start.elapsed());
            step.bar
                .finish_with_message(format!("{label}{} {d}", step.name));
            s.done += 1;
        }
        self.update_header(s);
    }
}

impl Progress for Tty {
    fn event(&self, e: Event<'_>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            Event::Started { vertex, name } => self.start_step(&mut s, vertex, name),
            Event::Cached { vertex, name } => {
                self.start_step(&mut s, vertex, name);
                self.end_step(&mut s, vertex, "CACHED ");
            }
            Event::Log { vertex, data, .. } => {
                let mp = &self.mp;
                if let Some(step) = s.steps.get_mut(&vertex) {
                    for piece in data.split_inclusive(|b| *b == b'\n') {
                        match piece.strip_suffix(b"\n") {
                            Some(body) => {
                                let mut l = std::mem::take(&mut step.partial);
                                l.extend_from_slice(body);
                                if step.tail.len() == TAIL {
                                    step.tail.pop_front();
                                }
                                step.tail
                                    .push_back(String::from_utf8_lossy(&l).into_owned());
                            }
                            None if step.partial.len() < 4096 => {
                                step.partial.extend_from_slice(piece)
                            }
                            None => {}
                        }
                    }
                    if let Some(last) = step.tail.back() {
                        let t = step.tail_bar.get_or_insert_with(|| {
                            let t = mp.insert_after(&step.bar, ProgressBar::new_spinner());
                            t.set_style(style("   => {wide_msg}"));
                            t
                        });
                        t.set_message(last.clone());
                    }
                }
            }
            Event::Status { vertex, text } => {
                if let Some(step) = s.steps.get(&vertex) {
                    step.bar.set_message(format!("{} ({text})", step.name));
                }
            }
            Event::Done { vertex, .. } => self.end_step(&mut s, vertex, ""),
            Event::Failed { vertex, .. } => {
                let tail: Vec<String> = s
                    .steps
                    .get(&vertex)
                    .map(|st| st.tail.iter().cloned().collect())
                    .unwrap_or_default();
                self.end_step(&mut s, vertex, "ERROR ");
                for l in tail {
                    let _ = self.mp.println(format!("   > {l}"));
                }
            }
        }
    }
}

impl Renderer for Tty {
    fn begin(&self, name: &str) -> usize {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = s.cli_next;
        s.cli_next += 1;
        self.start_step(&mut s, key, name);
        key
    }
    fn note(&self, step: usize, text: &str) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = s.steps.get(&step) {
            st.bar.set_message(format!("{} ({text})", st.name));
        }
    }
    fn end(&self, step: usize, _: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.end_step(&mut s, step, "");
    }
    fn finish(&self) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.update_header(&s);
        self.header.finish();
        for st in s.steps.values() {
            if !st.bar.is_finished() {
                st.bar.finish();
            }
        }
    }
}
