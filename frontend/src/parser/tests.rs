//! Parser cases the BuildKit corpus does not cover: heredocs, unknown
//! instructions, non-ASCII text, spans.

use super::*;

fn dump(src: &str) -> String {
    parse(src.as_bytes()).unwrap().dump()
}

#[test]
fn heredoc_bodies_are_consumed_and_kept() {
    let src =
        "FROM x\nRUN <<EOF\necho hi\nFROM nope\nEOF\nCOPY <<-A <<B /dst/\n\t\tone\n\tA\ntwo\nB\n";
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!(
        ast.dump(),
        "(from \"x\")\n(run \"<<EOF\")\n(copy \"<<-A\" \"<<B\" \"/dst/\")\n"
    );
    assert_eq!(ast.nodes[1].heredocs[0].content, "echo hi\nFROM nope\n");
    assert_eq!(ast.nodes[1].span.end.line, 5);
    let copy = &ast.nodes[2];
    assert_eq!(copy.heredocs.len(), 2);
    assert_eq!(copy.heredocs[0].name, "A");
    assert!(copy.heredocs[0].chomp);
    assert_eq!(copy.heredocs[0].body(), "one\n");
    assert_eq!(copy.heredocs[1].content, "two\n");
}

#[test]
fn heredoc_quoting_and_json_form() {
    let ast = parse(b"FROM x\nRUN cat <<'EOF' | sh\n$HOME\nEOF\nRUN [\"<<EOF\"]\n").unwrap();
    assert!(!ast.nodes[1].heredocs[0].expand);
    assert!(ast.nodes[2].heredocs.is_empty());
    let ast = parse(b"FROM x\nONBUILD RUN <<EOF\nbody\nEOF\n").unwrap();
    assert_eq!(ast.nodes[1].heredocs[0].content, "body\n");
}

#[test]
fn unterminated_heredoc_is_an_error_with_lines() {
    let err = parse(b"FROM x\nRUN <<EOF\necho\n").unwrap_err();
    assert_eq!(err.message, "unterminated heredoc");
    assert_eq!(err.span.unwrap().start.line, 2);
}

#[test]
fn unknown_instructions_dump_one_empty_argument() {
    assert_eq!(
        dump("FROM x\nFOO bar baz\nbogus\n"),
        "(from \"x\")\n(foo \"\")\n(bogus \"\")\n"
    );
}

#[test]
fn non_ascii_text_is_kept() {
    assert_eq!(
        dump("FROM x\nLABEL desc=\"héllo wörld ☃\"\nRUN echo ünïcode\u{a0}nbsp\n"),
        "(from \"x\")\n(label \"desc\" \"\\\"héllo wörld ☃\\\"\" \"=\")\n(run \"echo ünïcode\\u00a0nbsp\")\n"
    );
    // Invalid UTF-8 does not panic.
    assert!(parse(b"FROM \xff\xfe\nRUN \xc3\n").is_ok());
}

#[test]
fn spans_point_at_words_across_continuations() {
    let src = "FROM x\nCOPY --from=a \\\n   --chown=b  src \\\n  /dst\n";
    let ast = parse(src.as_bytes()).unwrap();
    let copy = &ast.nodes[1];
    assert_eq!(copy.keyword_span, Span::on_line(2, 1, 5));
    assert_eq!(copy.flags[0].span, Span::on_line(2, 6, 14));
    assert_eq!(copy.flags[1].span, Span::on_line(3, 4, 13));
    assert_eq!(copy.args[0].span, Span::on_line(3, 15, 18));
    assert_eq!(copy.args[1].span, Span::on_line(4, 3, 7));
    assert_eq!(copy.span.start.line, 2);
    assert_eq!(copy.span.end.line, 4);
}

#[test]
fn directives_and_escape() {
    let ast = parse(
        b"# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM x\nRUN a `\n  b\n",
    )
    .unwrap();
    assert_eq!(ast.escape, '`');
    assert_eq!(
        ast.directives.syntax.as_ref().unwrap().value,
        "docker/dockerfile:1"
    );
    assert_eq!(ast.directives.check.as_ref().unwrap().line, 3);
    assert_eq!(ast.dump(), "(from \"x\")\n(run \"a   b\")\n");
    let err = parse(b"# escape=`\n# escape=\\\nFROM x\n").unwrap_err();
    assert!(err.message.contains("only one escape"), "{}", err.message);
    assert_eq!(err.span.unwrap().start.line, 2);
}

#[test]
fn empty_continuation_lines_warn() {
    let ast = parse(b"FROM x\nRUN a \\\n\n  b\n").unwrap();
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(ast.dump(), "(from \"x\")\n(run \"a   b\")\n");
}

#[test]
fn crlf_and_bom() {
    assert_eq!(
        dump("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n"),
        "(from \"x\")\n(run \"a  b\")\n"
    );
}

#[test]
fn weird_inputs_do_not_panic() {
    for s in [
        "\\",
        "\\\n",
        "RUN \\",
        " \\\n\\\n",
        "COPY --\u{2141}x a b",
        "COPY --a\u{85}b c",
        "HEALTHCHECK \u{a0}",
        "ONBUILD ONBUILD ONBUILD",
        "ONBUILD",
        "RUN <<",
        "RUN <<\"",
        "ENV a",
        "CMD [\"a\", 1]",
        "X <<EOF",
        "RUN 0<<EOF\nEOF",
        "LABEL \"",
        "ARG \\",
    ] {
        let _ = parse(s.as_bytes());
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let line = format!("FROM x\n{}RUN true\n", "ONBUILD ".repeat(100_000));
    let err = parse(line.as_bytes()).unwrap_err();
    assert!(err.message.contains("nested more than"), "{}", err.message);
    assert!(parse(format!("FROM x\n{}RUN true\n", "ONBUILD ".repeat(10)).as_bytes()).is_ok());
    // A very long line is fine.
    let long = format!("FROM x\nRUN echo {}\n", "a ".repeat(500_000));
    assert_eq!(parse(long.as_bytes()).unwrap().nodes.len(), 2);
}
