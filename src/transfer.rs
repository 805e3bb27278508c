//! Registry plumbing shared by `pull`, `push`, `login` (and later
//! `build`): the client built from flags and environment, and the
//! rendering of transfer progress — bars on a terminal (indicatif),
//! docker-like plain lines otherwise. Everything goes to stderr.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use cache::Digest;
use cache::registry::{BlobOutcome, Client, ClientOptions, Event, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--insecure-registry` (repeatable), shared by the registry commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Allow plain http:// to this registry (host[:port]); also
    /// KILN_INSECURE_REGISTRIES=host1,host2. Loopback registries always may.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
}

/// A client from the environment plus the flags, reporting to `progress`.
pub(crate) fn client(args: &RegistryArgs, progress: Arc<dyn Progress>) -> anyhow::Result<Client> {
    let mut opts = ClientOptions::from_env()?;
    opts.insecure_registries
        .extend(args.insecure_registries.iter().cloned());
    Ok(Client::new(opts).with_progress(progress))
}

/// Renders [`Event`]s; `quiet` drops all but retries.
pub(crate) struct Renderer {
    quiet: bool,
    bars: Option<MultiProgress>,
    active: Mutex<HashMap<Digest, ProgressBar>>,
    /// Words for outcomes, per command ("Pull complete", "Pushed").
    pull: bool,
}

impl Renderer {
    /// A renderer for a pull (`pull = true`) or a push.
    pub(crate) fn new(pull: bool, quiet: bool) -> Arc<Renderer> {
        let tty = std::io::stderr().is_terminal() && !quiet;
        Arc::new(Renderer {
            quiet,
            bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            active: Mutex::new(HashMap::new()),
            pull,
        })
    }

    /// A line for the user, above the bars.
    pub(crate) fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    /// Clears whatever bars are left (on error).
    pub(crate) fn finish(&self) {
        for (_, b) in self.active.lock().expect("lock").drain() {
            b.abandon();
        }
    }

    fn outcome_text(&self, o: BlobOutcome) -> &'static str {
        match (o, self.pull) {
            (BlobOutcome::AlreadyExists, true) => "Already exists",
            (BlobOutcome::AlreadyExists, false) => "Layer already exists",
            (BlobOutcome::Downloaded, _) => "Pull complete",
            (BlobOutcome::Pushed, _) => "Pushed",
            (BlobOutcome::Mounted, _) => "Mounted",
            (BlobOutcome::Compressed, _) => "Compressed",
        }
    }
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

/// `12.3MB` as docker prints sizes (decimal units).
pub(crate) fn human(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.3}GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}kB", n / 1e3)
    } else {
        format!("{n}B")
    }
}

impl Progress for Renderer {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Retry {
                what,
                error,
                attempt,
            } => {
                // Retries are shown even when quiet: they explain slowness.
                let msg = format!("retrying {what} (attempt {attempt} failed: {error})");
                match &self.bars {
                    Some(m) => {
                        let _ = m.println(msg);
                    }
                    None => eprintln!("{msg}"),
                }
            }
            _ if self.quiet => {}
            Event::Start {
                digest,
                size,
                action,
            } => {
                let verb = match action {
                    "download" => "Downloading",
                    "upload" => "Pushing",
                    "compress" => "Compressing",
                    other => other,
                };
                match &self.bars {
                    Some(m) => {
                        let bar = m.add(ProgressBar::new(size));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                            )
                            .expect("valid template")
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(short(digest).to_string());
                        bar.set_message(verb);
                        if let Some(old) = self
                            .active
                            .lock()
                            .expect("lock")
                            .insert(digest.clone(), bar)
                        {
                            old.finish_and_clear();
                        }
                    }
                    None => eprintln!("{}: {verb} {}", short(digest), human(size)),
                }
            }
            Event::Progress { digest, done } => {
                if let Some(b) = self.active.lock().expect("lock").get(digest) {
                    b.set_position(done);
                }
            }
            Event::Done { digest, outcome } => {
                let text = self.outcome_text(outcome);
                let bar = self.active.lock().expect("lock").remove(digest);
                match (&self.bars, bar) {
                    (Some(_), Some(b)) => {
                        b.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}").expect("template"),
                        );
                        b.finish_with_message(text);
                    }
                    (Some(m), None) => {
                        let _ = m.println(format!("{}: {text}", short(digest)));
                    }
                    (None, _) => eprintln!("{}: {text}", short(digest)),
                }
            }
        }
    }
}
