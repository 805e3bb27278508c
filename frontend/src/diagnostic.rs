//! Rendering of located messages (errors and warnings) with a source
//! snippet and a caret, rustc-style.

use std::fmt::Write as _;

use crate::Span;

/// Renders `level: message`, then the location and the source line with
/// carets under the span. Without a span, only the first line is written.
pub fn render(level: &str, message: &str, file: &str, source: &str, span: Option<Span>) -> String {
    let mut out = format!("{level}: {message}\n");
    let Some(span) = span else { return out };
    let line_no = span.start.line.max(1);
    let text = source
        .split('\n')
        .nth(line_no as usize - 1)
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .unwrap_or("");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let col = span.start.column.max(1);
    let _ = writeln!(out, " --> {file}:{line_no}:{col}");
    let gutter = line_no.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad} |");
    // Tabs are shown as one space so the caret lines up.
    let shown: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "{line_no} | {shown}");
    let len = shown.chars().count() as u32;
    let end = if span.end.line == span.start.line && span.end.column > col {
        span.end.column
    } else {
        len + 1
    };
    let width = end.saturating_sub(col).max(1);
    let _ = writeln!(
        out,
        "{pad} | {}{}",
        " ".repeat(col as usize - 1),
        "^".repeat(width as usize)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span() {
        let src = "FROM x\nRUN a\nCOPY --bogus=1 a /b\n";
        let s = render(
            "error",
            "unknown flag: --bogus",
            "Dockerfile",
            src,
            Some(Span::on_line(3, 6, 15)),
        );
        assert_eq!(
            s,
            "error: unknown flag: --bogus\n --> Dockerfile:3:6\n  |\n3 | COPY --bogus=1 a /b\n  |      ^^^^^^^^^\n"
        );
    }

    #[test]
    fn whole_line_spans_underline_to_the_end() {
        let s = render("error", "m", "f", "abc", Some(Span::lines(1, 1)));
        assert!(s.ends_with("1 | abc\n  | ^^^\n"), "{s}");
    }
}
