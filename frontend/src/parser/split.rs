//! Splitting a joined instruction line into keyword, `--flags` and the
//! argument string, and the word splitters the per-instruction argument
//! parsers use. Byte ranges are kept so every piece gets a span.

/// `[\t\v\f\r ]`: the separator BuildKit's `reWhitespace` matches.
pub(crate) fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Go's `unicode.IsSpace` applied to a single byte as if it were a rune
/// (BuildKit's flag scanner works byte by byte).
fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xA0)
}

/// A piece of text with its byte range in the string it came from.
pub(crate) type Piece = (String, usize, usize);

/// Splits on runs of [`is_ws`]; `limit` 2 splits once.
pub(crate) fn split_ws(s: &str, limit: Option<usize>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if limit.is_some_and(|l| out.len() + 1 >= l) {
            break;
        }
        if is_ws(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = it.peek() {
                if is_ws(d) {
                    end = j + d.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            out.push((s[start..i].to_string(), start, i));
            start = end;
        }
    }
    out.push((s[start..].to_string(), start, s.len()));
    out
}

/// The parts of an instruction line.
#[derive(Debug)]
pub(crate) struct Split {
    pub(crate) keyword: Piece,
    pub(crate) flags: Vec<Piece>,
    /// The argument string, trimmed, and its offset in the line.
    pub(crate) args: String,
    pub(crate) args_offset: usize,
}

/// BuildKit's `splitCommand`.
pub(crate) fn split_command(line: &str, escape: char) -> Split {
    let lead = line.len() - line.trim_start().len();
    let t = line.trim();
    let parts = split_ws(t, Some(2));
    let (kw, ks, ke) = parts[0].clone();
    let keyword = (kw, ks + lead, ke + lead);
    let mut flags = Vec::new();
    let mut args = String::new();
    let mut args_offset = lead + t.len();
    if let Some((rest, rs, _)) = parts.get(1) {
        let (a, a_off, f) = extract_flags(rest, escape);
        flags = f
            .into_iter()
            .map(|(w, s, e)| (w, s + rs + lead, e + rs + lead))
            .collect();
        let a_lead = a.len() - a.trim_start().len();
        args = a.trim().to_string();
        args_offset = lead + rs + a_off + a_lead;
    }
    Split {
        keyword,
        flags,
        args,
        args_offset,
    }
}

/// BuildKit's `extractBuilderFlags`: leading `--words` become flags (quotes
/// and escapes removed), the rest is the argument string. Works on bytes,
/// like upstream (non-ASCII bytes in flags come out as Latin-1).
fn extract_flags(line: &str, escape: char) -> (String, usize, Vec<Piece>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let esc = if escape.is_ascii() {
        Some(escape as u8)
    } else {
        None
    };
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut word_start = 0;
    let rest_from =
        |pos: usize| -> (String, usize) { (String::from_utf8_lossy(&b[pos..]).into_owned(), pos) };
    let mut pos = 0;
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                let (r, o) = rest_from(pos);
                return (r, o, words);
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if pos == b.len() {
            if buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push((std::mem::take(&mut buf), word_start, pos));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if buf == "--" {
                    let (r, o) = rest_from(pos);
                    return (r, o, words);
                }
                if blank_ok || !buf.is_empty() {
                    words.push((std::mem::take(&mut buf), word_start, pos));
                }
                buf.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if Some(ch) == esc {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            buf.push(char::from(c));
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if Some(ch) == esc {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        buf.push(char::from(c));
        pos += 1;
    }
    (String::new(), b.len(), words)
}

/// BuildKit's `parseWords` (ARG, ENV, LABEL): words separated by
/// whitespace outside quotes; quotes and escapes are kept in the words.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<Piece> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut start = 0;
    let mut i = 0;
    loop {
        let at_end = i == chars.len();
        let (pos, ch) = if at_end { (rest.len(), '\0') } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
            start = pos;
        }
        if at_end {
            if blank_ok || !buf.is_empty() {
                words.push((std::mem::take(&mut buf), start, pos));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push((std::mem::take(&mut buf), start, pos));
                }
                buf.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                buf.push(ch);
                i += 1;
                c = chars[i].1;
            }
            buf.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            buf.push(ch);
            c = chars[i].1;
        }
        buf.push(c);
        i += 1;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keyword_flags_args() {
        let s = split_command("  COPY --from=a --chown=\"x y\" src /dst ", '\\');
        assert_eq!(s.keyword.0, "COPY");
        assert_eq!(s.keyword.1, 2);
        let f: Vec<&str> = s.flags.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(f, vec!["--from=a", "--chown=x y"]);
        assert_eq!(s.flags[0].1, 7);
        assert_eq!(s.args, "src /dst");
        assert_eq!(
            &"  COPY --from=a --chown=\"x y\" src /dst "[s.args_offset..s.args_offset + 3],
            "src"
        );
        let s = split_command("COPY --a -- --b x", '\\');
        assert_eq!(s.flags.len(), 1);
        assert_eq!(s.args, "--b x");
        let s = split_command("CMD --doit -- [ ]", '\\');
        assert_eq!(s.args, "[ ]");
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let w: Vec<String> = parse_words("a=\"b c\" d=e\\ f 'g\\'", '\\')
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(w, vec!["a=\"b c\"", "d=e\\ f", "'g\\'"]);
        let w: Vec<String> = parse_words("x\\", '\\').into_iter().map(|p| p.0).collect();
        assert_eq!(w, vec!["x"]);
    }

    #[test]
    fn ws_split() {
        let p: Vec<String> = split_ws("a \t b  c", None)
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(p, vec!["a", "b", "c"]);
        let p: Vec<String> = split_ws("a b  c", Some(2))
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(p, vec!["a", "b  c"]);
    }
}
