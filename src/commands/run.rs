//! `kiln run`: one process in a new container made from an image in the
//! store, with docker's flags and semantics (ENTRYPOINT + CMD, `--rm`,
//! `-e`, `--env-file`, `-v`, `-w`, `-u`, `--entrypoint`, `--network`,
//! `--memory`, `--cpus`, `--pids-limit`, `--hostname`).
//!
//! The container runs on an overlay snapshot of the image's layers in the
//! store's scratch space; its output goes to kiln's stdout and stderr; kiln
//! exits with its status (125 when the container could not be set up, 126
//! when the command could not be executed, 127 when it was not found).
//! kiln keeps no containers: the writable layer is always thrown away, as
//! with `--rm`. SIGINT, SIGTERM and SIGHUP are forwarded to the command; a
//! second Ctrl-C kills the container.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use executor::container::{ImageConfig, RunOptions, container_spec, run_container};
use executor::{CancelToken, LogSink, RunIo, Runtime, Snapshotter, Stream};
use serde_json::Value;

use super::Globals;
use super::images::open_store;
use crate::interrupt::Interrupts;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub(crate) struct Args {
    /// Remove the container when it exits (kiln always does: it keeps no
    /// containers).
    #[arg(long)]
    rm: bool,
    /// Set an environment variable (`NAME=value`, or `NAME` to copy it from
    /// kiln's environment).
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Read environment variables from a file (`NAME=value` lines).
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Bind-mount a host path: `HOST:CONTAINER[:ro|rw]`.
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volume: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// User (`name|uid[:group|gid]`).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    user: Option<String>,
    /// Overwrite the image's ENTRYPOINT (and drop its CMD).
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,
    /// Network: `host` (default) or `none` (only loopback).
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Memory limit (`512m`, `1g`, bytes).
    #[arg(short = 'm', long, value_name = "BYTES")]
    memory: Option<String>,
    /// CPU quota in CPUs (`1.5`).
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Container hostname.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// The image (reference, ID or ID prefix).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// The command and its arguments (default: the image's CMD).
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Container output straight to kiln's stdout/stderr, unprefixed.
struct StdSink;

impl LogSink for StdSink {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        // A closed stdout (e.g. `| head`) must not stop the container.
        let _ = match stream {
            Stream::Stdout => std::io::stdout().lock().write_all(data),
            Stream::Stderr => std::io::stderr().lock().write_all(data),
        };
    }
    fn finish(&mut self) {
        let _ = std::io::stdout().flush();
    }
}

/// The parts of an image config `kiln run` needs.
fn image_config(json: &serde_json::Map<String, Value>) -> ImageConfig {
    let cfg = json.get("config").and_then(Value::as_object);
    let strs = |k: &str| -> Option<Vec<String>> {
        cfg?.get(k)?.as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    };
    let text = |k: &str| -> Option<String> {
        cfg?.get(k)?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    ImageConfig {
        entrypoint: strs("Entrypoint"),
        cmd: strs("Cmd"),
        env: strs("Env").unwrap_or_default(),
        working_dir: text("WorkingDir"),
        user: text("User"),
    }
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let token = CancelToken::new();
    {
        let token = token.clone();
        Interrupts::install(move |sig, n| {
            if n > 1 && sig == nix::libc::SIGINT {
                token.cancel();
            } else {
                token.signal(sig);
            }
        })?;
    }
    let store = open_store(g)?;
    let img = store.image(&args.image)?;
    let config_bytes = store.image_config(&img)?;
    let config = cache::ImageConfig::parse(&config_bytes, &img.id)?;
    let opts = RunOptions {
        rm: true,
        env: args.env,
        env_files: args.env_file,
        volumes: args.volume,
        workdir: args.workdir,
        user: args.user,
        entrypoint: args.entrypoint,
        network: args.network,
        memory: args.memory,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
        hostname: args.hostname,
        args: args.args,
    };
    let spec = container_spec(&image_config(config.json()), &opts, &|k| {
        std::env::var(k).ok()
    })
    .map_err(|e| exit_with(e, &args.image))?;
    // Topmost layer first, as overlay wants them.
    let mut lowers = Vec::with_capacity(img.layers.len());
    for d in img.layers.iter().rev() {
        lowers.push(
            store
                .unpacked_dir(d)
                .with_context(|| format!("unpack layer {d} of {}", args.image))?,
        );
    }
    let scratch = store.temp_dir()?;
    let snapshotter = Snapshotter::from_env()?;
    let mut sink = StdSink;
    let result = run_container(
        &Runtime::new(),
        &snapshotter,
        &lowers,
        &scratch.path().join("container"),
        &spec,
        true,
        RunIo::new(&mut sink).cancel(token.clone()),
    );
    drop(scratch);
    match result {
        Ok((outcome, _)) => {
            if outcome.oom_killed || token.is_cancelled() {
                eprintln!("kiln: container {outcome}");
            }
            Ok(ExitCode::from(outcome.exit_code().clamp(0, 255) as u8))
        }
        Err(e) => Err(exit_with(e, &args.image)),
    }
}

/// An executor error as a message, carrying docker's exit code for it.
fn exit_with(e: executor::Error, image: &str) -> anyhow::Error {
    anyhow::Error::new(ExitWith {
        code: e.docker_exit_code(),
        message: format!("container from {image}: {e}"),
    })
}

/// An error that makes kiln exit with a given code (docker's 125, 126 or
/// 127 for a container that could not be started).
#[derive(Debug)]
pub(crate) struct ExitWith {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong.
    pub(crate) message: String,
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}
