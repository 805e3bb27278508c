//! Human-readable views of a definition: an indented text listing and
//! Graphviz DOT (`kiln debug graph`).

use std::fmt::Write as _;

use super::{Definition, FileAction, MountKind, Op, Output, Vertex};

fn input_ref(v: &Vertex, pos: Option<usize>) -> String {
    match pos.and_then(|p| v.inputs.get(p)) {
        Some(o) => out_ref(*o),
        None => "scratch".into(),
    }
}

fn out_ref(o: Output) -> String {
    if o.index == 0 {
        format!("v{}", o.vertex)
    } else {
        format!("v{}:{}", o.vertex, o.index)
    }
}

/// One-line summary of what a vertex does.
fn summary(v: &Vertex) -> String {
    match &v.op {
        Op::Image(s) => format!("image {} ({})", s.reference, s.platform),
        Op::Local(l) => format!(
            "local {} include={:?} exclude={:?}",
            l.name, l.include_patterns, l.exclude_patterns
        ),
        Op::Http(h) => {
            let mut s = format!("http {} -> {}", h.url, h.filename);
            if let Some(c) = &h.checksum {
                let _ = write!(s, " checksum={c}");
            }
            s
        }
        Op::Git(g) => format!(
            "git {} ref={:?} subdir={:?}",
            g.remote, g.reference, g.subdir
        ),
        Op::Exec(e) => {
            let mut s = format!("exec {:?} on {}", e.args, input_ref(v, e.rootfs));
            let _ = write!(s, " cwd={} ", e.cwd);
            if !e.user.is_empty() {
                let _ = write!(s, "user={} ", e.user);
            }
            let _ = write!(s, "network={:?} security={:?}", e.network, e.security);
            s
        }
        Op::File(f) => format!(
            "file on {} ({} actions)",
            input_ref(v, f.base),
            f.actions.len()
        ),
        Op::Merge(m) => {
            let parts: Vec<String> = m.inputs.iter().map(|i| input_ref(v, *i)).collect();
            format!("merge [{}]", parts.join(", "))
        }
    }
}

fn details(v: &Vertex) -> Vec<String> {
    let mut out = Vec::new();
    match &v.op {
        Op::Exec(e) => {
            for env in &e.env {
                out.push(format!("env {env}"));
            }
            for m in &e.mounts {
                out.push(match &m.kind {
                    MountKind::Bind {
                        input,
                        source,
                        readonly,
                    } => format!(
                        "mount bind {}:{} -> {} {}",
                        input_ref(v, *input),
                        source,
                        m.target,
                        if *readonly { "ro" } else { "rw" }
                    ),
                    MountKind::Cache {
                        id, sharing, from, ..
                    } => format!(
                        "mount cache id={id} sharing={sharing:?} from={} -> {}",
                        input_ref(v, *from),
                        m.target
                    ),
                    MountKind::Tmpfs { size } => format!("mount tmpfs size={size} -> {}", m.target),
                    MountKind::Secret {
                        id, env, required, ..
                    } => {
                        format!(
                            "mount secret id={id} env={env:?} required={required} -> {}",
                            m.target
                        )
                    }
                    MountKind::Ssh { id, required, .. } => {
                        format!("mount ssh id={id} required={required} -> {}", m.target)
                    }
                });
            }
        }
        Op::File(f) => {
            for a in &f.actions {
                out.push(match a {
                    FileAction::Copy(c) => format!(
                        "copy {}:{} -> {}{}{}",
                        input_ref(v, c.src),
                        c.src_path,
                        c.dest,
                        c.chown
                            .as_ref()
                            .map(|o| format!(
                                " chown={}:{}",
                                o.user,
                                o.group.as_deref().unwrap_or("")
                            ))
                            .unwrap_or_default(),
                        c.chmod
                            .as_ref()
                            .map(|m| format!(" chmod={m:?}"))
                            .unwrap_or_default(),
                    ),
                    FileAction::Mkdir(m) => format!(
                        "mkdir {} mode={:o} parents={}",
                        m.path, m.mode, m.make_parents
                    ),
                    FileAction::Mkfile(m) => format!(
                        "mkfile {} mode={:o} ({} bytes)",
                        m.path,
                        m.mode,
                        m.data.len()
                    ),
                    FileAction::Rm(r) => format!("rm {}", r.path),
                });
            }
        }
        _ => {}
    }
    out
}

/// A text listing: one line per vertex (`vN <digest> <summary>`), its
/// details indented below, then the stages and the target.
pub fn render_text(def: &Definition) -> String {
    let mut s = String::new();
    for (i, v) in def.vertices.iter().enumerate() {
        let _ = writeln!(s, "v{i} {} {}", v.digest.short(), summary(v));
        if !v.name.is_empty() {
            let _ = writeln!(s, "    name: {}", v.name);
        }
        for d in details(v) {
            let _ = writeln!(s, "    {d}");
        }
    }
    for st in &def.stages {
        let marker = if st.index == def.target_stage().index {
            " (target)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "stage {} {}-> {}{}",
            st.index,
            st.name
                .as_ref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            st.output.map(out_ref).unwrap_or_else(|| "scratch".into()),
            marker
        );
    }
    s
}

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Graphviz DOT: one node per vertex, edges from inputs to readers, the
/// target output marked.
pub fn render_dot(def: &Definition) -> String {
    let mut s =
        String::from("digraph llb {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (i, v) in def.vertices.iter().enumerate() {
        let label = if v.name.is_empty() {
            format!("{}\n{}", v.op.kind(), v.digest.short())
        } else {
            format!("{}\n{}\n{}", v.op.kind(), v.name, v.digest.short())
        };
        let _ = writeln!(s, "  v{i} [label=\"{}\"];", dot_escape(&label));
    }
    for (i, v) in def.vertices.iter().enumerate() {
        for o in &v.inputs {
            let _ = writeln!(s, "  v{} -> v{i};", o.vertex);
        }
    }
    if let Some(o) = def.output() {
        let _ = writeln!(
            s,
            "  target [shape=doublecircle, label=\"target\"];\n  v{} -> target;",
            o.vertex
        );
    }
    s.push_str("}\n");
    s
}
