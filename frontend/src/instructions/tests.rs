//! Flag validation and argument rules of the typed instructions.

use super::*;
use crate::lint::CheckConfig;

fn parse_df(src: &str) -> Result<(Dockerfile, Vec<crate::lint::Warning>)> {
    let ast = crate::parse(src.as_bytes())?;
    let mut lint = Linter::new(CheckConfig::default());
    let df = parse_dockerfile(&ast, &mut lint)?;
    Ok((df, lint.into_warnings()))
}

fn error(src: &str) -> Error {
    parse_df(src).unwrap_err()
}

#[test]
fn copy_flags_and_heredocs() {
    let (df, _) = parse_df("FROM x\nCOPY --from=b --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x a b /d/\nCOPY <<-EOF /f\n\thi\nEOF\n").unwrap();
    let Instruction::Copy(c) = &df.stages[0].commands[0].instruction else {
        panic!()
    };
    assert_eq!(c.from.as_ref().unwrap().value, "b");
    assert_eq!(c.chown.as_ref().unwrap().value, "1:2");
    assert!(c.link);
    assert_eq!(c.excludes, vec!["*.md", "x"]);
    assert_eq!(c.sources.len(), 2);
    assert_eq!(c.dest.value, "/d/");
    let Instruction::Copy(c) = &df.stages[0].commands[1].instruction else {
        panic!()
    };
    assert_eq!(c.contents[0].data, "hi\n");
    assert_eq!(c.contents[0].path, "EOF");
}

#[test]
fn flag_errors_point_at_the_flag() {
    let e = error("FROM x\nCOPY --bogus=1 a /b\n");
    assert_eq!(e.message, "unknown flag: --bogus");
    assert_eq!(e.span, Some(Span::on_line(2, 6, 15)));
    assert_eq!(
        error("FROM x\nADD --from=a b c\n").message,
        "unknown flag: --from"
    );
    assert_eq!(
        error("FROM x\nADD --parents b c\n").message,
        "unknown flag: --parents"
    );
    assert_eq!(
        error("FROM x\nCOPY --link=maybe a b\n").message,
        "expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(
        error("FROM x\nRUN --network=bridge true\n").message,
        "invalid network mode \"bridge\""
    );
    assert_eq!(
        error("FROM x\nRUN --security=x true\n").message,
        "security \"x\" is not valid"
    );
    assert_eq!(
        error("FROM x\nRUN --device=x true\n").message,
        "unknown flag: --device"
    );
    assert!(
        error("FROM x\nRUN --mount=type=nope true\n")
            .message
            .contains("unsupported mount type")
    );
    assert!(
        error("FROM x\nRUN --mount=from=$X,target=/a true\n")
            .message
            .contains("doesn't support variable expansion")
    );
    assert_eq!(
        error("FROM --plattform=x y\n").message,
        "unknown flag: --plattform (did you mean platform?)"
    );
    assert_eq!(
        error("FROM x\nHEALTHCHECK --interval=1 CMD true\n").message,
        "time: missing unit in duration \"1\""
    );
    assert_eq!(
        error("FROM x\nHEALTHCHECK --interval=10us CMD true\n").message,
        "Interval \"interval\" cannot be less than 1ms"
    );
    assert_eq!(
        error("FROM x\nHEALTHCHECK --retries=-1 CMD true\n").message,
        "--retries cannot be negative (-1)"
    );
    assert_eq!(
        error("FROM x\nHEALTHCHECK FOO\n").message,
        "Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        error("FROM x\nENV --a=b c=d\n").message,
        "unknown flag: --a"
    );
}

#[test]
fn argument_counts() {
    assert_eq!(
        error("FROM x\nCOPY a\n").message,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        error("FROM a b\n").message,
        "FROM requires either one or three arguments"
    );
    assert!(
        error("FROM a AS 1x\n")
            .message
            .starts_with("invalid name for build stage: \"1x\"")
    );
    assert_eq!(
        error("FROM x\nWORKDIR\n").message,
        "WORKDIR requires exactly one argument"
    );
    assert_eq!(
        error("FROM x\nEXPOSE\n").message,
        "EXPOSE requires at least one argument"
    );
    assert_eq!(
        error("FROM x\nSHELL /bin/sh\n").message,
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        error("FROM x\nONBUILD ONBUILD RUN x\n").message,
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        error("FROM x\nONBUILD FROM y\n").message,
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        error("RUN x\n").message,
        "no build stage in current context"
    );
    assert_eq!(
        error("ARG a\n").message,
        "dockerfile contains no stages to build"
    );
    assert_eq!(
        error("FROM x\nCOPY a <<EOF\nEOF\n").message,
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn unknown_instruction_points_at_keyword() {
    let e = error("FROM x\n  RUNN echo\n");
    assert_eq!(e.message, "unknown instruction: RUNN (did you mean run?)");
    assert_eq!(e.span, Some(Span::on_line(2, 3, 7)));
}

#[test]
fn healthcheck_and_commands() {
    let (df, _) = parse_df("FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f x\nHEALTHCHECK NONE\nCMD [\"a\",\"b\"]\nENTRYPOINT exec x\nONBUILD RUN echo $X\n").unwrap();
    let c = &df.stages[0].commands;
    let Instruction::Healthcheck(h) = &c[0].instruction else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f x"]);
    assert_eq!(h.interval, 5_000_000_000);
    assert_eq!(h.retries, 3);
    let Instruction::Healthcheck(h) = &c[1].instruction else {
        panic!()
    };
    assert_eq!(h.test, vec!["NONE"]);
    let Instruction::Cmd(cl) = &c[2].instruction else {
        panic!()
    };
    assert_eq!(
        (cl.args.clone(), cl.prepend_shell),
        (vec!["a".to_string(), "b".to_string()], false)
    );
    let Instruction::Entrypoint(cl) = &c[3].instruction else {
        panic!()
    };
    assert_eq!(
        (cl.args.clone(), cl.prepend_shell),
        (vec!["exec x".to_string()], true)
    );
    let Instruction::Onbuild(t) = &c[4].instruction else {
        panic!()
    };
    assert_eq!(t, "RUN echo $X");
}

#[test]
fn parse_time_lints() {
    let (_, w) = parse_df("FROM x AS Build\nMAINTAINER me\nfrom y as b2\nrun true\n").unwrap();
    let names: Vec<&str> = w.iter().map(|w| w.rule.name()).collect();
    assert!(names.contains(&"StageNameCasing"), "{names:?}");
    assert!(names.contains(&"MaintainerDeprecated"));
    assert!(names.contains(&"ConsistentInstructionCasing"));
    let (_, w) = parse_df("FROM x as b\n").unwrap();
    assert_eq!(w[0].rule, Rule::FromAsCasing);
    assert_eq!(
        w[0].message,
        "'as' and 'FROM' keywords' casing do not match"
    );
    let (_, w) = parse_df("FROM x AS a\nFROM y AS a\nFROM z AS scratch\n").unwrap();
    let names: Vec<&str> = w.iter().map(|w| w.rule.name()).collect();
    assert_eq!(names, vec!["DuplicateStageName", "ReservedStageName"]);
}
