//! `kiln inspect`: an image as JSON, shaped like `docker image inspect`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use cache::{Image, ImageConfig, Store};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Globals;
use super::images::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Images (reference, ID or ID prefix).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Print only this field: a path like `{{.Config.Cmd}}`, or
    /// `{{json .Config}}` for JSON.
    #[arg(short, long)]
    format: Option<String>,
}

pub(crate) fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let template = args.format.as_deref().map(Template::parse).transpose()?;
    let mut docs = Vec::new();
    let mut failed = false;
    for name in &args.images {
        match store.image(name) {
            Ok(img) => docs.push(document(&store, &img)?),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match template {
        Some(t) => {
            for d in &docs {
                writeln!(out, "{}", t.render(d)?)?;
            }
        }
        None => {
            let mut ser = serde_json::Serializer::with_formatter(
                &mut out,
                serde_json::ser::PrettyFormatter::with_indent(b"    "),
            );
            Value::Array(docs).serialize(&mut ser)?;
            writeln!(out)?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The inspect document of one image.
pub(crate) fn document(store: &Store, img: &Image) -> anyhow::Result<Value> {
    let cfg = ImageConfig::parse(&store.image_config(img)?, &img.id)?;
    let j = cfg.json();
    let s = |k: &str| j.get(k).cloned().unwrap_or(json!(""));
    let mut doc = Map::new();
    doc.insert("Id".into(), json!(img.id));
    doc.insert(
        "RepoTags".into(),
        json!(img.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>()),
    );
    doc.insert("RepoDigests".into(), json!(img.repo_digests));
    doc.insert("Parent".into(), json!(""));
    doc.insert(
        "Comment".into(),
        json!(
            cfg.history()
                .last()
                .map(|h| h.comment.clone())
                .unwrap_or_default()
        ),
    );
    doc.insert("Created".into(), s("created"));
    doc.insert("DockerVersion".into(), s("docker_version"));
    doc.insert("Author".into(), s("author"));
    doc.insert("Config".into(), Value::Object(cfg.container_config()));
    doc.insert("Architecture".into(), s("architecture"));
    if let Some(v) = j.get("variant") {
        doc.insert("Variant".into(), v.clone());
    }
    doc.insert("Os".into(), s("os"));
    doc.insert("Size".into(), json!(img.size));
    doc.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": img.layers}),
    );
    let last_tag = jiff::Timestamp::from_second(img.added)
        .map(|t| t.to_string())
        .unwrap_or_default();
    doc.insert("Metadata".into(), json!({"LastTagTime": last_tag}));
    doc.insert(
        "Descriptor".into(),
        json!({"mediaType": img.manifest.media_type, "digest": img.manifest.digest, "size": img.manifest.size}),
    );
    Ok(Value::Object(doc))
}

/// The small subset of Go templates people use with `inspect -f`:
/// `{{.A.B}}` and `{{json .A.B}}`, with literal text around them.
struct Template {
    parts: Vec<Part>,
}

enum Part {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

impl Template {
    fn parse(s: &str) -> anyhow::Result<Template> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            parts.push(Part::Text(rest[..start].to_string()));
            let Some(end) = rest[start..].find("}}") else {
                bail!("bad --format {s:?}: unclosed {{{{");
            };
            let inner = rest[start + 2..start + end].trim();
            let (json, expr) = match inner.strip_prefix("json ") {
                Some(e) => (true, e.trim()),
                None => (false, inner),
            };
            let Some(path) = expr.strip_prefix('.') else {
                bail!(
                    "bad --format {s:?}: kiln understands {{{{.Field.Sub}}}} and {{{{json .Field}}}} only"
                );
            };
            let path = if path.is_empty() {
                Vec::new()
            } else {
                path.split('.').map(str::to_string).collect()
            };
            parts.push(Part::Field { path, json });
            rest = &rest[start + end + 2..];
        }
        parts.push(Part::Text(rest.to_string()));
        Ok(Template { parts })
    }

    fn render(&self, doc: &Value) -> anyhow::Result<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, json } => {
                    let mut v = doc;
                    for k in path {
                        v = v.get(k).unwrap_or(&Value::Null);
                    }
                    if *json {
                        out.push_str(&serde_json::to_string(v)?);
                    } else {
                        out.push_str(&go_text(v));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// How Go's text/template prints a value.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let doc = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"], "Env": null}});
        let r = |t: &str| Template::parse(t).unwrap().render(&doc).unwrap();
        assert_eq!(r("{{.Id}}"), "sha256:x");
        assert_eq!(r("id={{ .Id }}!"), "id=sha256:x!");
        assert_eq!(r("{{.Config.Cmd}}"), "[sh -c]");
        assert_eq!(r("{{json .Config.Cmd}}"), r#"["sh","-c"]"#);
        assert_eq!(r("{{.Config.Nope}}"), "<no value>");
        assert!(Template::parse("{{index .X 0}}").is_err());
    }
}
