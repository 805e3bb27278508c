//! `kiln debug`: developer views of the frontend's work — the raw parse
//! tree in BuildKit's test-dump format, and the compiled build graph.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Globals;
use super::check::{compile_options, located, read_dockerfile};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the raw parse tree in BuildKit's test-dump format.
    Parse {
        /// The Dockerfile (`-` for standard input).
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            default_value = "Dockerfile"
        )]
        file: PathBuf,
    },
    /// Print the build graph the Dockerfile compiles to.
    Graph(GraphArgs),
}

/// Output formats of `debug graph`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// One line per vertex, details indented.
    Text,
    /// Graphviz DOT.
    Dot,
    /// The whole definition as JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GraphArgs {
    /// The Dockerfile (`-` for standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    file: PathBuf,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Build-time variable (`KEY=VALUE`).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Target platform (`os/arch[/variant]`).
    #[arg(long)]
    platform: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub(crate) fn run(_globals: &Globals, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Parse { file } => {
            let (name, src) = read_dockerfile(&file)?;
            let ast = frontend::parse(&src).map_err(|e| located(e, &name, &src))?;
            print!("{}", ast.dump());
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph(a) => {
            let (name, src) = read_dockerfile(&a.file)?;
            let opts = compile_options(&a.build_args, a.target, a.platform.as_deref())?;
            let ast = frontend::parse(&src).map_err(|e| located(e, &name, &src))?;
            let compiled = frontend::compile(&ast, &opts, &frontend::ScratchResolver)
                .map_err(|e| located(e, &name, &src))?;
            let def = &compiled.definition;
            match a.format {
                Format::Text => print!("{}", solver::llb::render_text(def)),
                Format::Dot => print!("{}", solver::llb::render_dot(def)),
                Format::Json => println!("{}", serde_json::to_string_pretty(def)?),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
