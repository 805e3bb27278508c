//! BuildKit's `Node.Dump` format (the `result` files of its parser tests).

use super::{Node, go_quote};

fn dump_node(n: &Node) -> String {
    let mut s = n.keyword.to_lowercase();
    if !n.flags.is_empty() {
        let f: Vec<String> = n.flags.iter().map(|w| go_quote(&w.value)).collect();
        s.push_str(" [");
        s.push_str(&f.join(" "));
        s.push(']');
    }
    if let Some(child) = &n.nested {
        s.push_str(" (");
        s.push_str(&dump_node(child));
        s.push(')');
    }
    for a in &n.args {
        s.push(' ');
        s.push_str(&go_quote(&a.value));
    }
    s.trim().to_string()
}

/// Dumps every instruction as `(line form)\n`.
pub(super) fn dump(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        out.push('(');
        out.push_str(&dump_node(n));
        out.push_str(")\n");
    }
    let t = out.trim();
    let mut s = String::with_capacity(t.len() + 1);
    s.push_str(t);
    s.push('\n');
    s
}
