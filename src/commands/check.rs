//! `kiln check`: parses, validates and compiles a Dockerfile without
//! building, and prints BuildKit's lint warnings, one per line, as
//! `file:line: Rule: message`. Exits non-zero on errors, or on warnings
//! when the Dockerfile says `# check=error=true`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Dockerfile (`-` for standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    pub(crate) file: PathBuf,
    /// Build-time variable (`KEY=VALUE`, or `KEY` to copy it from the
    /// environment if set).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub(crate) build_args: Vec<String>,
    /// The stage to check (default: the last one).
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Target platform (`os/arch[/variant]`).
    #[arg(long)]
    pub(crate) platform: Option<String>,
}

/// Reads the Dockerfile named on the command line (`-`: stdin).
pub(crate) fn read_dockerfile(path: &std::path::Path) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the Dockerfile from standard input")?;
        return Ok(("<stdin>".into(), buf));
    }
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.display().to_string(), data))
}

/// Turns a frontend error into a message with `file:line:col`, the source
/// line and a caret.
pub(crate) fn located(err: frontend::Error, file: &str, src: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(src);
    let rendered = err.render(file, &text);
    let body = rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .trim_end();
    anyhow::anyhow!("{body}")
}

/// `--build-arg` values: `K=V`, or `K` taken from the environment when set.
pub(crate) fn parse_build_args(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some(("", _)) => anyhow::bail!("invalid --build-arg {a:?}: empty name"),
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Compile options from the common flags.
pub(crate) fn compile_options(
    build_args: &[String],
    target: Option<String>,
    platform: Option<&str>,
) -> anyhow::Result<frontend::CompileOptions> {
    let target_platform = platform
        .map(|p| solver::llb::Platform::parse(p).map_err(anyhow::Error::msg))
        .transpose()
        .context("invalid --platform")?;
    Ok(frontend::CompileOptions {
        target,
        build_args: parse_build_args(build_args)?,
        target_platform,
        ..frontend::CompileOptions::default()
    })
}

pub(crate) fn run(_globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (name, src) = read_dockerfile(&args.file)?;
    let opts = compile_options(&args.build_args, args.target, args.platform.as_deref())?;
    let report = frontend::check(&src, &opts).map_err(|e| located(e, &name, &src))?;
    let mut out = String::new();
    for w in &report.warnings {
        out.push_str(&w.to_line(&name));
        out.push('\n');
    }
    print!("{out}");
    let n = report.warnings.len();
    if n == 0 {
        eprintln!("Check complete, no warnings found.");
    } else {
        eprintln!(
            "Check complete, {n} warning{} found.",
            if n == 1 { " has been" } else { "s have been" }
        );
    }
    if report.fail {
        eprintln!("error: lint violations found and the Dockerfile sets # check=error=true");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
