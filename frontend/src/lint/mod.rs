//! BuildKit's Dockerfile lint rules (`docker build --check`): the rule
//! table, the `# check=skip=...;error=true` configuration, and the
//! collector the instruction parser and the compiler report to.

use std::fmt;

use crate::Span;

/// A lint rule (names and messages as BuildKit's `linter/ruleset.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JSONArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    RedundantTargetPlatform,
    SecretsUsedInArgOrEnv,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    ExposeProtoCasing,
}

impl Rule {
    /// The rule's name, e.g. `JSONArgsRecommended`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JSONArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::RedundantTargetPlatform => "RedundantTargetPlatform",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
        }
    }

    /// The documentation URL BuildKit links to.
    pub fn url(self) -> String {
        let mut slug = String::new();
        for (i, c) in self.name().chars().enumerate() {
            let prev_upper = i > 0 && self.name().as_bytes()[i - 1].is_ascii_uppercase();
            if c.is_ascii_uppercase() && i > 0 && !prev_upper {
                slug.push('-');
            }
            slug.push(c.to_ascii_lowercase());
        }
        let slug = slug.replace("jsonargs", "json-args");
        format!("https://docs.docker.com/go/dockerfile/rule/{slug}/")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Which rule.
    pub rule: Rule,
    /// The message (BuildKit's wording).
    pub message: String,
    /// Where.
    pub span: Span,
}

impl Warning {
    /// `file:line: Rule: message`.
    pub fn to_line(&self, file: &str) -> String {
        format!(
            "{file}:{}: {}: {}",
            self.span.start.line, self.rule, self.message
        )
    }
}

/// The `# check=` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=Rule1,Rule2`.
    pub skip: Vec<String>,
    /// `error=true`: warnings fail the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses `skip=<rules|all>;error=<bool>` (BuildKit's
    /// `ParseLintOptions`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let mut c = CheckConfig::default();
        if s.is_empty() {
            return Ok(c);
        }
        for p in s.splitn(3, ';') {
            let Some((k, v)) = p.split_once('=') else {
                return Err(format!(
                    "invalid check option {}",
                    crate::parser::go_quote(p)
                ));
            };
            match k.trim() {
                "skip" => {
                    let v = v.trim();
                    if v == "all" {
                        c.skip_all = true;
                    } else {
                        c.skip = v.split(',').map(|r| r.trim().to_string()).collect();
                    }
                }
                "experimental" => {}
                "error" => {
                    c.error = parse_go_bool(v.trim()).ok_or_else(|| {
                        format!(
                            "failed to parse check option {}",
                            crate::parser::go_quote(p)
                        )
                    })?;
                }
                k => {
                    return Err(format!(
                        "invalid check option {}",
                        crate::parser::go_quote(k)
                    ));
                }
            }
        }
        Ok(c)
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Collects warnings, honouring the check configuration.
#[derive(Debug, Clone, Default)]
pub struct Linter {
    config: CheckConfig,
    warnings: Vec<Warning>,
}

impl Linter {
    /// A collector with `config`.
    pub fn new(config: CheckConfig) -> Self {
        Linter {
            config,
            warnings: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CheckConfig {
        &self.config
    }

    /// Records a finding unless the rule is skipped.
    pub fn report(&mut self, rule: Rule, span: Span, message: impl Into<String>) {
        if self.config.skip_all || self.config.skip.iter().any(|s| s == rule.name()) {
            return;
        }
        let w = Warning {
            rule,
            message: message.into(),
            span,
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The findings, sorted by line.
    pub fn into_warnings(mut self) -> Vec<Warning> {
        self.warnings.sort_by_key(|w| w.span.start);
        self.warnings
    }

    /// The findings so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// The closest candidate to `name` (edit distance at most 2, or a
/// case-insensitive match), for "did you mean" hints.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.eq_ignore_ascii_case(name) && c != name {
            return Some(c);
        }
        let d = levenshtein(name, c);
        let len = name.chars().count();
        let limit = if len < 3 {
            0
        } else if len <= 4 {
            1
        } else {
            2
        };
        if d > 0 && d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal-string-alignment distance (Levenshtein plus transpositions).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert_eq!(c.skip, vec!["JSONArgsRecommended", "StageNameCasing"]);
        assert!(c.error);
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert!(CheckConfig::parse("bogus=1").is_err());
        assert!(CheckConfig::parse("error=maybe").is_err());
    }

    #[test]
    fn urls_and_suggestions() {
        assert_eq!(
            Rule::JSONArgsRecommended.url(),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            Rule::UndefinedVar.url(),
            "https://docs.docker.com/go/dockerfile/rule/undefined-var/"
        );
        assert_eq!(suggest("form", ["from", "chown"]), Some("from"));
        assert_eq!(suggest("xyzzy", ["from", "chown"]), None);
    }
}
