//! `kiln build`: a Dockerfile and a context into an image, with docker's
//! flags.
//!
//! The command reads the Dockerfile and `.dockerignore`, compiles the graph
//! (frontend; base images from the store, pulled from their registry when
//! missing or with `--pull`), imports `--cache-from` records, solves it
//! (solver: parallel, cached, sandboxed), writes the image config and
//! stores the image under the `-t` tags, then pushes the tags (`--push`),
//! exports the cache (`--cache-to`) and writes `--output`, `--iidfile`,
//! `--metadata-file` and, with `-q`, the image ID on stdout. Nothing is
//! tagged or pushed when the build fails. Progress goes to stderr
//! (`--progress`), data to stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use cache::{ImageRef, Store};
use executor::{Limits, Network};
use solver::solve::{
    BaseImages, ExportOptions, NoCache, PullPolicy, RegistryImages, Secrets, SolveOptions, Solver,
    commit_image, image_config,
};

use super::Globals;
#[path = "build_remote.rs"]
mod remote;
use super::check::{located, parse_build_args};
use super::images::open_store;
use crate::interrupt::Interrupts;
use crate::progress::{self, Mode};
use crate::transfer::{self, RegistryArgs};
use remote::LazyStep;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Name and optionally tag the image (`name:tag`); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Build-time variable (`KEY=VALUE`, or `KEY` to take it from the
    /// environment when set).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Do not use the build cache for these stages (repeatable).
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// External cache sources (repeatable): an image (its inline cache;
    /// a local image if the store has one by that name, else a registry
    /// reference), `type=registry,ref=REF` or `type=local,src=DIR`.
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    /// Cache export destinations (repeatable):
    /// `type=registry,ref=REF[,mode=min|max][,ignore-error=true]`,
    /// `type=local,dest=DIR[,mode=…]` or `type=inline`.
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Always check the registry for newer versions of base images.
    #[arg(long)]
    pull: bool,
    /// Push every `-t` tag to its registry once the build succeeded.
    #[arg(long)]
    push: bool,
    /// Write the build's result metadata (image ID, pushed digests, base
    /// images) as JSON to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The network of RUN steps: `default` (host), `none` or `host`.
    #[arg(long, value_name = "MODE", default_value = "default")]
    network: String,
    /// Set a label on the image (`KEY=VALUE`); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Say for each step that runs why it missed the cache.
    #[arg(long)]
    explain_cache: bool,
    /// Progress output: auto, tty, plain or quiet.
    #[arg(long, value_enum, env = "BUILDKIT_PROGRESS", default_value = "auto")]
    progress: Mode,
    /// Output: `type=docker|oci|tar|local,dest=PATH`, a directory, or `-`
    /// (a tar of the filesystem on stdout).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    output: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID[,src=PATH|env=VAR]`.
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,
    /// Memory limit of each RUN (`512m`, `2g`).
    #[arg(short = 'm', long, value_name = "BYTES")]
    memory: Option<String>,
    /// CPU quota of each RUN, in CPUs.
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// How many steps run at once (default: the number of CPUs, at least
    /// 4: steps often wait on the network, a sleep or the disk rather than
    /// compute).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Target platform (only the host's can run RUN steps).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// The build context: a directory, or `-` for a tar (or a Dockerfile)
    /// on stdin.
    #[arg(value_name = "CONTEXT")]
    context: String,
}

/// Where the result goes besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    /// docker/OCI archive (one tar that is both) to a file or stdout.
    Archive(Option<PathBuf>),
    /// The flattened filesystem as a tar.
    Tar(Option<PathBuf>),
    /// The flattened filesystem in a directory.
    Local(PathBuf),
}

fn parse_output(s: &str) -> anyhow::Result<Output> {
    if s == "-" {
        return Ok(Output::Tar(None));
    }
    if !s.contains('=') {
        return Ok(Output::Local(PathBuf::from(s)));
    }
    let mut kind = None;
    let mut dest = None;
    for f in s.split(',') {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("invalid --output {s:?}: {f:?} is not KEY=VALUE"))?;
        match k {
            "type" => kind = Some(v.to_string()),
            "dest" => dest = Some(v.to_string()),
            "name" | "push" | "oci-mediatypes" | "compression" | "tar" => {}
            _ => bail!("invalid --output {s:?}: unknown key {k:?}"),
        }
    }
    let dest = dest.filter(|d| d != "-").map(PathBuf::from);
    Ok(match kind.as_deref() {
        Some("docker") | Some("oci") => Output::Archive(dest),
        Some("tar") => Output::Tar(dest),
        Some("local") => Output::Local(
            dest.with_context(|| format!("--output {s:?}: type=local needs dest=DIR"))?,
        ),
        Some("image") | Some("registry") => {
            bail!("--output {s:?}: push with `-t NAME[:TAG] --push` instead")
        }
        Some(t) => bail!("--output {s:?}: unknown type {t:?} (docker, oci, tar or local)"),
        None => bail!("--output {s:?}: type= is required"),
    })
}

/// Adapts the solver's base images to the frontend's resolver.
struct Resolver(Arc<dyn BaseImages>);

impl frontend::ImageMetaResolver for Resolver {
    fn resolve(
        &self,
        reference: &str,
        platform: &solver::llb::Platform,
    ) -> Result<frontend::ResolvedImage, String> {
        let b = self.0.resolve(reference, platform).map_err(|e| {
            let msg = e.to_string();
            msg.strip_prefix(&format!("image {reference} "))
                .or_else(|| msg.strip_prefix(&format!("{reference}: ")))
                .map(str::to_string)
                .unwrap_or(msg)
        })?;
        let config: solver::llb::Image = serde_json::from_slice(&b.config)
            .map_err(|e| format!("invalid image config {}: {e}", b.id))?;
        Ok(frontend::ResolvedImage {
            // The digest it resolved to, pinned for the rest of the build.
            reference: b.pinned(),
            config,
            no_layers: b.layers.is_empty(),
        })
    }
}

/// The Dockerfile and the context directory, with what must live as long
/// as the build (a context extracted from stdin).
struct Inputs {
    dockerfile_name: String,
    dockerfile_path: Option<PathBuf>,
    dockerfile: Vec<u8>,
    context: Option<PathBuf>,
    _extracted: Option<tempfile::TempDir>,
}

fn read_inputs(args: &Args, store: &Store) -> anyhow::Result<Inputs> {
    if args.context.contains("://") || args.context.starts_with("git@") {
        bail!(
            "remote build contexts ({}) are not supported: clone or download it first",
            args.context
        );
    }
    if args.context == "-" {
        if args.file.as_deref() == Some("-") {
            bail!(
                "the context and the Dockerfile cannot both come from stdin (-f - and CONTEXT -)"
            );
        }
        if std::io::stdin().is_terminal() {
            bail!("CONTEXT is -, but stdin is a terminal: pipe a tar or a Dockerfile");
        }
        let mut head = Vec::new();
        let mut stdin = std::io::stdin().lock();
        (&mut stdin)
            .take(512)
            .read_to_end(&mut head)
            .context("read stdin")?;
        let is_tar = head.starts_with(&[0x1f, 0x8b])
            || head.starts_with(b"BZh")
            || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z'])
            || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || head.len() == 512 && &head[257..262] == b"ustar";
        let reader = std::io::Cursor::new(head).chain(stdin);
        if !is_tar {
            let mut df = Vec::new();
            std::io::BufReader::new(reader)
                .read_to_end(&mut df)
                .context("read the Dockerfile from stdin")?;
            return Ok(Inputs {
                dockerfile_name: "Dockerfile".into(),
                dockerfile_path: None,
                dockerfile: df,
                context: None,
                _extracted: None,
            });
        }
        let dir = store.temp_dir()?;
        let ctx = dir.path().join("context");
        std::fs::create_dir(&ctx)?;
        extract_context(reader, &ctx)?;
        let rel = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
        let path = ctx.join(rel.trim_start_matches('/'));
        let data = std::fs::read(&path)
            .with_context(|| format!("read {rel} from the context on stdin"))?;
        return Ok(Inputs {
            dockerfile_name: rel,
            dockerfile_path: Some(path),
            dockerfile: data,
            context: Some(ctx),
            _extracted: Some(dir),
        });
    }
    let ctx = PathBuf::from(&args.context);
    let md = std::fs::metadata(&ctx).with_context(|| {
        format!(
            "unable to prepare context: path {:?} not found",
            args.context
        )
    })?;
    if !md.is_dir() {
        bail!(
            "unable to prepare context: {:?} is not a directory",
            args.context
        );
    }
    let ctx = std::fs::canonicalize(&ctx).with_context(|| format!("resolve {}", ctx.display()))?;
    let (name, path, data) = match args.file.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("read the Dockerfile from stdin")?;
            ("Dockerfile".to_string(), None, buf)
        }
        Some(f) => {
            let p = PathBuf::from(f);
            let data = std::fs::read(&p).with_context(|| format!("read Dockerfile {f}"))?;
            (f.to_string(), Some(p), data)
        }
        None => {
            let p = ctx.join("Dockerfile");
            let data = std::fs::read(&p).with_context(|| {
                format!(
                    "failed to read dockerfile: open {}: no such file (use -f to name another)",
                    Path::new(&args.context).join("Dockerfile").display()
                )
            })?;
            (
                Path::new(&args.context)
                    .join("Dockerfile")
                    .display()
                    .to_string(),
                Some(p),
                data,
            )
        }
    };
    Ok(Inputs {
        dockerfile_name: name,
        dockerfile_path: path,
        dockerfile: data,
        context: Some(ctx),
        _extracted: None,
    })
}

/// Extracts a (possibly compressed) tar context, refusing entries that
/// would land outside `dest`.
fn extract_context(r: impl Read, dest: &Path) -> anyhow::Result<()> {
    let mut buf = std::io::BufReader::new(r);
    let head = std::io::BufRead::fill_buf(&mut buf)?.to_vec();
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(buf))
    } else {
        Box::new(buf)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for e in ar.entries().context("read the context tar")? {
        let mut e = e.context("read the context tar")?;
        // unpack_in refuses `..` and absolute paths.
        e.unpack_in(dest)
            .with_context(|| format!("extract {:?} from the context tar", e.path().ok()))?;
    }
    Ok(())
}

/// The default `--jobs`: the number of CPUs, at least 4.
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(4)
}

fn parse_labels(labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            bail!("invalid --label {l:?}: empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        args.progress
    };
    // Validate everything before starting any work.
    let tags: Vec<ImageRef> = args
        .tags
        .iter()
        .map(|t| ImageRef::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    let outputs: Vec<Output> = args
        .output
        .iter()
        .map(|o| parse_output(o))
        .collect::<anyhow::Result<_>>()?;
    if outputs.len() > 1 {
        bail!("only one --output is supported");
    }
    let network = match args.network.as_str() {
        "default" | "host" => Network::Host,
        "none" => Network::None,
        n => bail!("invalid --network {n:?}: expected default, none or host"),
    };
    let limits = Limits {
        memory: args
            .memory
            .as_deref()
            .map(executor::container::parse_memory)
            .transpose()?,
        cpus: args
            .cpus
            .as_deref()
            .map(executor::container::parse_cpus)
            .transpose()?,
        pids: None,
    };
    let mut secrets = Secrets::new();
    for s in &args.secrets {
        let (id, src) = Secrets::parse_flag(s)?;
        secrets.insert(id, src);
    }
    if args.jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let build_args = parse_build_args(&args.build_args)?;
    // SOURCE_DATE_EPOCH: a build argument, else the environment (BuildKit).
    let epoch = match build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty())
    {
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).with_context(|| {
            format!("invalid SOURCE_DATE_EPOCH {v:?}: expected seconds since 1970")
        })?),
        None => None,
    };
    let labels = parse_labels(&args.labels)?;
    let cache_to = remote::parse_cache_to(&args.cache_to)?;
    if args.push && tags.is_empty() {
        bail!("--push needs at least one -t NAME[:TAG] to push to");
    }
    let target_platform = args
        .platform
        .as_deref()
        .map(|p| solver::llb::Platform::parse(p).map_err(anyhow::Error::msg))
        .transpose()
        .context("invalid --platform")?;

    let store = Arc::new(open_store(g)?);
    let inputs = read_inputs(&args, &store)?;
    let excludes = match &inputs.context {
        Some(ctx) => {
            solver::context::load_ignore_file(ctx, inputs.dockerfile_path.as_deref())
                .with_context(|| format!("read .dockerignore in {}", ctx.display()))?
                .patterns
        }
        None => Vec::new(),
    };
    let cache_from = remote::parse_cache_from(&args.cache_from, &store)?;
    let renderer = progress::renderer(mode);
    // Transfers report only retries (the steps say what is pulled/pushed).
    let client = Arc::new(transfer::client(
        &args.registry,
        transfer::Renderer::new(true, true),
    )?);
    let pulls = Arc::new(LazyStep::new(
        renderer.clone(),
        "[internal] load metadata for base images",
    ));
    let images: Arc<dyn BaseImages> = {
        let pulls = pulls.clone();
        Arc::new(
            RegistryImages::new(
                store.clone(),
                client.clone(),
                if args.pull {
                    PullPolicy::Always
                } else {
                    PullPolicy::Missing
                },
            )
            .with_notify(Arc::new(move |line: &str| pulls.note(line))),
        )
    };
    let opts = frontend::CompileOptions {
        target: args.target.clone(),
        cache_id_namespace: build_args
            .get("BUILDKIT_CACHE_MOUNT_NS")
            .cloned()
            .unwrap_or_default(),
        build_args,
        target_platform,
        context_excludes: excludes,
        labels,
        ..Default::default()
    };
    let src = &inputs.dockerfile;
    let name = &inputs.dockerfile_name;
    let ast = frontend::parse(src).map_err(|e| located(e, name, src))?;
    let compiled = match frontend::compile(&ast, &opts, &Resolver(images.clone())) {
        Ok(c) => c,
        Err(e) => {
            renderer.finish();
            return Err(located(e, name, src));
        }
    };
    pulls.end();
    let def = compiled.definition;
    let mut warnings: Vec<String> = Vec::new();
    let imported = remote::import_caches(&store, &client, &cache_from, &renderer, &mut warnings);

    let no_cache = if args.no_cache {
        NoCache::All
    } else if !args.no_cache_filter.is_empty() {
        NoCache::Stages(
            args.no_cache_filter
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
        )
    } else {
        NoCache::Nothing
    };
    let build_id = format!(
        "{}-{}",
        jiff::Timestamp::now().as_second(),
        std::process::id()
    );
    let dockerfile_id = match &inputs.dockerfile_path {
        Some(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
        None => format!(
            "stdin:{}",
            inputs.context.as_deref().unwrap_or(Path::new("")).display()
        ),
    };
    let solver = Solver::new(
        store.clone(),
        images.clone(),
        renderer.clone().as_progress(),
        SolveOptions {
            jobs: args.jobs.unwrap_or_else(default_jobs),
            no_cache,
            network,
            limits,
            secrets,
            context: inputs.context.clone(),
            build_id,
            dockerfile_id,
            target: args.target.clone().unwrap_or_default(),
            explain: args.explain_cache,
            epoch,
        },
    )?;
    let solver = match imported {
        Some(rc) => solver.with_remote_cache(rc),
        None => solver,
    };
    {
        let token = solver.cancel_token();
        Interrupts::install(move |_, n| {
            if n == 1 {
                eprintln!(
                    "\nkiln: cancelling the build (Ctrl-C again does nothing more; cleaning up)"
                );
            }
            token.cancel();
        })?;
    }
    let solution = match solver.solve(&def) {
        Ok(s) => s,
        Err(e) => {
            renderer.finish();
            if e.is_cancelled() {
                eprintln!("error: build cancelled");
                return Ok(ExitCode::from(130));
            }
            return Err(step_error(&e, name, src));
        }
    };

    let export_start = Instant::now();
    let step = renderer.begin("exporting to image");
    let img = image_config(&solver, &def, &solution, &ExportOptions::default())?;
    solver
        .ensure_layers(&img.layers, &|text: &str| renderer.note(step, text))
        .context("fetch the image's layers from the imported cache")?;
    let (stored, written) = commit_image(&store, &img, &tags)?;
    renderer.note(
        step,
        &format!(
            "writing image {} {}",
            stored.id,
            if written { "done" } else { "(unchanged) done" }
        ),
    );
    for t in &tags {
        renderer.note(step, &format!("naming to {t} done"));
    }
    renderer.end(step, export_start.elapsed());

    let pushed = if args.push {
        match remote::push_tags(&store, &client, &stored, &tags, &renderer) {
            Ok(p) => p,
            Err(e) => {
                renderer.finish();
                return Err(e);
            }
        }
    } else {
        Vec::new()
    };
    let exported = match remote::export_caches(
        &solver,
        &solution,
        &img,
        &cache_to,
        &client,
        &renderer,
        &mut warnings,
    ) {
        Ok(x) => x,
        Err(e) => {
            renderer.finish();
            return Err(e);
        }
    };
    renderer.finish();

    for w in &compiled.warnings {
        if mode.resolve() != Mode::Quiet {
            eprintln!("warning: {}", w.to_line(name));
        }
    }
    if mode.resolve() != Mode::Quiet {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    if let Some(o) = outputs.first() {
        write_output(&store, &stored, o, &tags)?;
    }
    if let Some(p) = &args.iidfile {
        std::fs::write(p, stored.id.as_str()).with_context(|| format!("write {}", p.display()))?;
    }
    if let Some(p) = &args.metadata_file {
        let meta = metadata(&stored, &tags, &pushed, &exported, &images.resolved());
        let mut bytes = serde_json::to_vec_pretty(&meta)?;
        bytes.push(b'\n');
        std::fs::write(p, bytes).with_context(|| format!("write {}", p.display()))?;
    }
    if args.quiet {
        println!("{}", stored.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--metadata-file`: buildx's keys where they apply, plus the base
/// images and the digests they were pinned to.
fn metadata(
    img: &cache::Image,
    tags: &[ImageRef],
    pushed: &[(ImageRef, cache::registry::Pushed)],
    exported: &[(String, solver::solve::remote::export::ExportReport)],
    bases: &[Arc<solver::solve::BaseImage>],
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.config.digest".into(),
        img.id.to_string().into(),
    );
    if let Some((_, p)) = pushed.first() {
        m.insert("containerimage.digest".into(), p.digest.to_string().into());
    }
    if !tags.is_empty() {
        let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        m.insert("image.name".into(), names.join(",").into());
    }
    if !pushed.is_empty() {
        let v: Vec<serde_json::Value> = pushed
            .iter()
            .map(
                |(t, p)| serde_json::json!({"name": t.to_string(), "digest": p.digest.to_string()}),
            )
            .collect();
        m.insert("kiln.pushed".into(), v.into());
    }
    let bases: Vec<serde_json::Value> = bases
        .iter()
        .map(|b| {
            serde_json::json!({
                "name": b.reference,
                "digest": b.digest.as_ref().map(|d| d.to_string()),
                "image": b.id.to_string(),
            })
        })
        .collect();
    m.insert("kiln.base-images".into(), bases.into());
    if !exported.is_empty() {
        let v: Vec<serde_json::Value> = exported
            .iter()
            .map(|(label, r)| {
                serde_json::json!({
                    "to": label,
                    "digest": r.digest.to_string(),
                    "records": r.records,
                    "layers": r.layers,
                })
            })
            .collect();
        m.insert("kiln.cache-export".into(), v.into());
    }
    serde_json::Value::Object(m)
}

/// Writes `--output`.
fn write_output(
    store: &Store,
    img: &cache::Image,
    o: &Output,
    tags: &[ImageRef],
) -> anyhow::Result<()> {
    let to = |dest: &Option<PathBuf>,
              what: &str,
              f: &dyn Fn(&mut dyn Write) -> anyhow::Result<()>| {
        match dest {
            None => {
                super::images::refuse_terminal(what)?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                f(&mut out)?;
                out.flush()?;
                Ok::<_, anyhow::Error>(())
            }
            Some(p) => super::save::write_file(p, |w| f(w)),
        }
    };
    match o {
        Output::Archive(dest) => to(dest, "an image archive", &|w| {
            cache::archive::save(
                store,
                &[cache::archive::SaveItem {
                    image: img.clone(),
                    tags: tags.to_vec(),
                }],
                w,
            )?;
            Ok(())
        }),
        Output::Tar(dest) => to(dest, "a filesystem tar", &|w| {
            cache::rootfs::export(store, img, w)?;
            Ok(())
        }),
        Output::Local(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            let (r, w) = std::io::pipe().context("pipe")?;
            let dir2 = dir.clone();
            let reader = std::thread::spawn(move || -> anyhow::Result<()> {
                let mut ar = tar::Archive::new(std::io::BufReader::new(r));
                ar.set_preserve_permissions(true);
                ar.set_preserve_ownerships(true);
                ar.set_unpack_xattrs(true);
                ar.set_overwrite(true);
                ar.unpack(&dir2)
                    .with_context(|| format!("write the filesystem into {}", dir2.display()))
            });
            let wrote = {
                let mut w = std::io::BufWriter::new(w);
                cache::rootfs::export(store, img, &mut w)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| w.flush().map_err(Into::into))
            };
            let read = reader
                .join()
                .map_err(|_| anyhow::anyhow!("extracting thread panicked"))?;
            read?;
            wrote
        }
    }
}

/// A solver error as a message: the step, its Dockerfile lines, the exit
/// code and the last lines of its output.
fn step_error(e: &solver::solve::Error, file: &str, src: &[u8]) -> anyhow::Error {
    let mut msg = String::new();
    let root = e.root_cause();
    match e.vertex() {
        Some(step) => {
            let (name, lines) = (step.name, step.lines);
            msg.push_str(&format!("failed to solve: {name}: {root}"));
            if let solver::solve::Error::RunFailed { tail, .. } = root
                && !tail.is_empty()
            {
                msg.push_str(&format!("\n------\n > {name}:\n"));
                for l in tail {
                    msg.push_str(&format!("{l}\n"));
                }
                msg.push_str("------");
            }
            if let Some((first, last)) = lines {
                let text = String::from_utf8_lossy(src);
                let all: Vec<&str> = text.lines().collect();
                msg.push_str(&format!("\n --> {file}:{first}"));
                let width = last.to_string().len();
                msg.push_str(&format!("\n{:width$} |", ""));
                for n in first..=last {
                    if let Some(l) = all.get(n as usize - 1) {
                        msg.push_str(&format!("\n{n:>width$} | {l}"));
                    }
                }
                msg.push_str(&format!("\n{:width$} |", ""));
            }
        }
        None => msg.push_str(&format!("failed to solve: {e}")),
    }
    anyhow::anyhow!(msg)
}
