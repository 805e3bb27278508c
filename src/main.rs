//! The `kiln` binary: parses the command line, wires the library crates
//! together and turns their errors into messages for people.
//!
//! Only this crate prints. Data (image IDs with `-q`, tars with `-o -`,
//! JSON) goes to stdout; everything else goes to stderr.

mod cli;
mod commands;
mod interrupt;
mod progress;
mod root;
mod transfer;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // kiln re-executes itself as the sandbox helper (`__kiln-sandbox`):
    // that must happen before anything else (threads, logging, clap).
    executor::run_if_requested();
    let cli = cli::Cli::parse();
    init_tracing(cli.debug);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            match err.downcast_ref::<commands::run::ExitWith>() {
                Some(e) => ExitCode::from(e.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
