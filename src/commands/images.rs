//! `kiln images`: list images as `docker images` does.
//!
//! Also home of the small presentation helpers the other store commands
//! share (`open_store`, docker's human sizes and durations, the table
//! writer).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cache::{Image, ImageConfig, Store};
use serde_json::json;

use super::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only images of this repository (optionally with :TAG).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
    /// Accepted for docker compatibility (kiln keeps no intermediate images).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter: dangling=true|false, label=KEY or label=KEY=VALUE, reference=REPO[:TAG].
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Output format: table (default) or json (one object per line).
    #[arg(long)]
    format: Option<String>,
}

/// Opens the state directory with a message naming it, able to write the
/// blobs of lazy layers (a delta COPY's image layer) when they are read.
pub(crate) fn open_store(g: &Globals) -> anyhow::Result<Store> {
    let store = Store::open(&g.root)
        .with_context(|| format!("cannot open the state directory {}", g.root.display()))?;
    store.set_materializer(std::sync::Arc::new(solver::solve::LayerMaterializer));
    Ok(store)
}

enum Filter {
    Dangling(bool),
    Label(String, Option<String>),
    Reference(String),
}

fn parse_filter(f: &str) -> anyhow::Result<Filter> {
    let Some((k, v)) = f.split_once('=') else {
        bail!("bad filter {f:?}: expected KEY=VALUE");
    };
    Ok(match k {
        "dangling" => match v {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => bail!("bad filter {f:?}: dangling takes true or false"),
        },
        "label" => match v.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(v.to_string(), None),
        },
        "reference" => Filter::Reference(v.to_string()),
        _ => bail!("bad filter {f:?}: kiln supports dangling, label and reference"),
    })
}

/// One row: an image under one of its tags (or none).
struct Row<'a> {
    image: &'a Image,
    repo: String,
    tag: String,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let filters: Vec<Filter> = args
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<anyhow::Result<_>>()?;
    let json_out = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") | Some("{{json .}}") => true,
        Some(f) => bail!("unsupported --format {f:?}: use table or json"),
    };
    let store = open_store(g)?;
    let images = store.images()?;
    let mut wanted_refs: Vec<String> = filters
        .iter()
        .filter_map(|f| match f {
            Filter::Reference(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    wanted_refs.extend(args.reference.clone());
    let mut rows = Vec::new();
    for img in &images {
        if !keep_image(&store, img, &filters)? {
            continue;
        }
        if img.tags.is_empty() {
            if wanted_refs.is_empty() {
                rows.push(Row {
                    image: img,
                    repo: "<none>".into(),
                    tag: "<none>".into(),
                });
            }
            continue;
        }
        for t in &img.tags {
            let repo = t.familiar_name();
            let tag = t.tag().unwrap_or_default().to_string();
            if wanted_refs.iter().all(|w| matches_ref(w, &repo, &tag)) {
                rows.push(Row {
                    image: img,
                    repo,
                    tag,
                });
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let id = |img: &Image| {
        if args.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        }
    };
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", id(r.image))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json_out {
        for r in &rows {
            let created = r.image.created.as_deref();
            let v = json!({
                "Containers": "N/A",
                "CreatedAt": created.map(created_at).unwrap_or_default(),
                "CreatedSince": created.map(human_since).unwrap_or_else(|| "N/A".into()),
                "Digest": digest_of(r.image, &r.repo),
                "ID": id(r.image),
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": human_size(r.image.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.image.size),
            });
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut t = Table::new(&header);
    for r in &rows {
        let mut cells = vec![r.repo.clone(), r.tag.clone()];
        if args.digests {
            cells.push(digest_of(r.image, &r.repo));
        }
        cells.push(id(r.image));
        cells.push(
            r.image
                .created
                .as_deref()
                .map(human_since)
                .unwrap_or_else(|| "N/A".into()),
        );
        cells.push(human_size(r.image.size));
        t.row(cells);
    }
    t.print(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

fn keep_image(store: &Store, img: &Image, filters: &[Filter]) -> anyhow::Result<bool> {
    let mut labels: Option<BTreeMap<String, String>> = None;
    for f in filters {
        match f {
            Filter::Dangling(d) => {
                if img.tags.is_empty() != *d {
                    return Ok(false);
                }
            }
            Filter::Label(k, v) => {
                if labels.is_none() {
                    let cfg = ImageConfig::parse(&store.image_config(img)?, &img.id)?;
                    labels = Some(cfg.labels().into_iter().collect());
                }
                let l = labels.as_ref().expect("just set");
                let ok = match v {
                    Some(v) => l.get(k) == Some(v),
                    None => l.contains_key(k),
                };
                if !ok {
                    return Ok(false);
                }
            }
            Filter::Reference(_) => {}
        }
    }
    Ok(true)
}

/// Whether `repo:tag` matches `want` (`REPO`, `REPO:TAG`, `*` globs).
fn matches_ref(want: &str, repo: &str, tag: &str) -> bool {
    let (wr, wt) = match want.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (want, None),
    };
    let wr = wr
        .strip_prefix("docker.io/library/")
        .or(wr.strip_prefix("docker.io/"))
        .unwrap_or(wr);
    glob(wr, repo) && wt.is_none_or(|t| glob(t, tag))
}

/// `*` matches any run of characters except `/`.
fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(s) = s.strip_prefix(head) else {
                return false;
            };
            (0..=s.len())
                .take_while(|&i| !s[..i].contains('/'))
                .filter(|&i| s.is_char_boundary(i))
                .any(|i| glob(rest, &s[i..]))
        }
    }
}

fn digest_of(img: &Image, repo: &str) -> String {
    img.repo_digests
        .iter()
        .find_map(|d| {
            let (name, digest) = d.split_once('@')?;
            let familiar = name
                .strip_prefix("docker.io/library/")
                .or(name.strip_prefix("docker.io/"))
                .unwrap_or(name);
            (familiar == repo).then(|| digest.to_string())
        })
        .unwrap_or_else(|| "<none>".into())
}

/// docker's `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(size), UNITS[i])
}

/// `%.3g`: three significant digits, trailing zeros dropped.
fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (3 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's "2 years ago" for an RFC 3339 time.
pub(crate) fn human_since(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => {
            let secs = jiff::Timestamp::now().as_second() - t.as_second();
            format!("{} ago", human_duration(secs.max(0)))
        }
        Err(_) => "N/A".into(),
    }
}

/// docker's go-units `HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0).round() as i64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// `2023-11-14 22:13:20 +0000 UTC`, as docker's CreatedAt.
pub(crate) fn created_at(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// docker's tabwriter settings: columns at least 10 wide, 3 spaces apart.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                let w = self
                    .rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0);
                (w + 3).max(10)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Refuses to write binary data to a terminal, as docker does.
pub(crate) fn refuse_terminal(what: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        bail!("cowardly refusing to write {what} to a terminal: use -o FILE or redirect stdout");
    }
    Ok(())
}

/// A path for a temporary file beside `dest`, renamed over it at the end.
pub(crate) fn temp_beside(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.kiln-{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_human_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(4_261_376), "4.26MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_073_741_824), "1.07GB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(3 * 365 * 86400), "3 years");
    }

    #[test]
    fn reference_matching() {
        assert!(matches_ref("busybox", "busybox", "latest"));
        assert!(matches_ref("busybox:latest", "busybox", "latest"));
        assert!(!matches_ref("busybox:1", "busybox", "latest"));
        assert!(matches_ref("user/*", "user/app", "1"));
        assert!(!matches_ref("*", "user/app", "1"));
        assert!(matches_ref("localhost:5000/app", "localhost:5000/app", "1"));
    }

    #[test]
    fn table_layout() {
        let mut t = Table::new(&["REPOSITORY", "TAG", "SIZE"]);
        t.row(vec!["busybox".into(), "latest".into(), "4.26MB".into()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }
}
