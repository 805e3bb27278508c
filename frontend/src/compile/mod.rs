//! Compilation: typed instructions → [`solver::llb::Definition`].
//!
//! Mirrors BuildKit's `dockerfile2llb`: global (meta) ARGs and the
//! automatic platform args are evaluated first; every FROM is expanded with
//! them; stages are linked (`FROM <stage>`, `COPY --from`, `RUN
//! --mount=from=`), cycles rejected, the target chosen and only the stages
//! it needs are compiled, ONBUILD triggers of base images and base stages
//! are run first. Each instruction is then dispatched in order
//! ([`dispatch`], [`run`], [`copy`]), producing vertices and editing the
//! stage's image config and history.
//!
//! The build context is one `Local` vertex whose include patterns are the
//! paths COPY/ADD/bind mounts read from it; since those are only known at
//! the end, dispatch runs twice (the first run collects the paths and the
//! lint warnings, the second builds the final graph). Both runs are pure.

mod copy;
mod dispatch;
mod paths;
mod reference;
mod resolver;
mod run;
mod stages;

pub use resolver::{ImageMetaResolver, ResolvedImage, ScratchResolver};

use std::collections::BTreeMap;

use solver::llb::{Definition, Platform};

use crate::instructions::parse_dockerfile;
use crate::lint::{CheckConfig, Linter, Warning};
use crate::parser::Ast;
use crate::{Error, ErrorKind, Result, Span};

/// What to build and with which arguments.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--platform` (default: the host's).
    pub target_platform: Option<Platform>,
    /// The platform the build runs on (default: the host's).
    pub build_platform: Option<Platform>,
    /// `.dockerignore` patterns, carried by the context vertex.
    pub context_excludes: Vec<String>,
    /// `--label k=v`: added to the target image.
    pub labels: BTreeMap<String, String>,
    /// Prefix of cache mount ids (BuildKit's `BUILDKIT_CACHE_MOUNT_NS`).
    pub cache_id_namespace: String,
}

/// The result of compiling.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The graph and the stages' images.
    pub definition: Definition,
    /// Lint warnings (BuildKit's check rules).
    pub warnings: Vec<Warning>,
}

/// Compiles a parsed Dockerfile.
///
/// Lint warnings are returned; with `# check=error=true` they make
/// compilation fail with an [`ErrorKind::Lint`] error instead.
pub fn compile(
    ast: &Ast,
    opts: &CompileOptions,
    resolver: &dyn ImageMetaResolver,
) -> Result<Compiled> {
    let (compiled, error_on_warning) = compile_inner(ast, opts, resolver)?;
    if error_on_warning && let Some(w) = compiled.warnings.first() {
        let n = compiled.warnings.len();
        return Err(Error::new(
            ErrorKind::Lint,
            format!(
                "{n} lint violation{} found and # check=error=true: {}: {}",
                if n > 1 { "s" } else { "" },
                w.rule,
                w.message
            ),
            Some(w.span),
        ));
    }
    Ok(compiled)
}

fn compile_inner(
    ast: &Ast,
    opts: &CompileOptions,
    resolver: &dyn ImageMetaResolver,
) -> Result<(Compiled, bool)> {
    let config = match &ast.directives.check {
        Some(d) => CheckConfig::parse(&d.value)
            .map_err(|e| Error::new(ErrorKind::Parse, e, Some(Span::lines(d.line, d.line))))?,
        None => CheckConfig::default(),
    };
    let error_on_warning = config.error;
    let mut lint = Linter::new(config);
    let df = parse_dockerfile(ast, &mut lint)?;
    let prepared = stages::prepare(&df, opts, resolver, &mut lint)?;
    // First run: collect context paths and warnings.
    let first = dispatch::run_all(&prepared, opts, None, Some(&mut lint))?;
    // Second run: the final graph with the context's include patterns.
    let out = dispatch::run_all(&prepared, opts, Some(first.context_paths), None)?;
    Ok((
        Compiled {
            definition: out.definition,
            warnings: lint.into_warnings(),
        },
        error_on_warning,
    ))
}

/// What `kiln check` reports.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The warnings, in line order.
    pub warnings: Vec<Warning>,
    /// `# check=error=true` and there are warnings.
    pub fail: bool,
}

/// Parses, validates and compiles `src` with the [`ScratchResolver`]
/// without building: the warnings `kiln check` prints, or the first error.
pub fn check(src: &[u8], opts: &CompileOptions) -> Result<CheckReport> {
    let ast = crate::parse(src)?;
    let (compiled, error_on_warning) = compile_inner(&ast, opts, &ScratchResolver)?;
    Ok(CheckReport {
        fail: error_on_warning && !compiled.warnings.is_empty(),
        warnings: compiled.warnings,
    })
}

#[cfg(test)]
mod tests;
