//! `kiln history`: the history of an image, as `docker history` shows it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use cache::ImageConfig;
use serde_json::json;

use super::Globals;
use super::images::{Table, created_at, human_since, human_size, open_store};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image (reference, ID or ID prefix).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Print sizes and dates in human-readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table (default) or json (one object per line).
    #[arg(long)]
    format: Option<String>,
}

/// One history line with its layer size.
struct Line {
    id: String,
    created: Option<String>,
    created_by: String,
    size: u64,
    comment: String,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let json_out = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") | Some("{{json .}}") => true,
        Some(f) => bail!("unsupported --format {f:?}: use table or json"),
    };
    let store = open_store(g)?;
    let img = store.image(&args.image)?;
    let cfg = ImageConfig::parse(&store.image_config(&img)?, &img.id)?;
    let mut sizes = Vec::new();
    for d in &img.layers {
        sizes.push(store.layer(d)?.map(|l| l.size).unwrap_or(0));
    }
    let mut layer_sizes = sizes.into_iter();
    let mut history = cfg.history();
    if history.is_empty() {
        // Images without history (some imports): one line per layer.
        history = img
            .layers
            .iter()
            .map(|_| cache::HistoryEntry {
                created: cfg.created().map(str::to_string),
                ..Default::default()
            })
            .collect();
    }
    let mut lines: Vec<Line> = history
        .into_iter()
        .map(|h| Line {
            id: "<missing>".into(),
            size: if h.empty_layer {
                0
            } else {
                layer_sizes.next().unwrap_or(0)
            },
            created: h.created,
            created_by: h.created_by,
            comment: h.comment,
        })
        .collect();
    lines.reverse();
    if let Some(top) = lines.first_mut() {
        top.id = if args.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for l in &lines {
            writeln!(out, "{}", l.id)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let created = |l: &Line| match (&l.created, args.human) {
        (Some(c), true) => human_since(c),
        (Some(c), false) => c.clone(),
        (None, _) => "N/A".into(),
    };
    let size = |l: &Line| {
        if args.human {
            human_size(l.size)
        } else {
            l.size.to_string()
        }
    };
    if json_out {
        for l in &lines {
            let v = json!({
                "Comment": l.comment,
                "CreatedAt": l.created.as_deref().map(created_at).unwrap_or_default(),
                "CreatedBy": l.created_by,
                "CreatedSince": created(l),
                "ID": l.id,
                "Size": size(l),
            });
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for l in &lines {
        let by = if args.no_trunc {
            l.created_by.clone()
        } else {
            ellipsis(&l.created_by, 45)
        };
        t.row(vec![
            l.id.clone(),
            created(l),
            by,
            size(l),
            l.comment.clone(),
        ]);
    }
    t.print(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Shortens to `max` characters with a trailing `…`, as docker does.
fn ellipsis(s: &str, max: usize) -> String {
    let s = s.replace(['\t', '\n'], " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis() {
        assert_eq!(super::ellipsis("short", 45), "short");
        let long = "RUN /bin/sh -c apt-get update && apt-get install -y x";
        let e = super::ellipsis(long, 45);
        assert_eq!(e.chars().count(), 45);
        assert!(e.ends_with('…'));
    }
}
