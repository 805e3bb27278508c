//! The JSON (exec) form: `["a", "b"]`. The argument string is JSON if,
//! after leading whitespace, it starts with `[` and the whole of it is one
//! valid JSON value (Go `encoding/json` rules). A valid array with an
//! element that is not a string is an error; anything that is not valid
//! JSON is simply not the JSON form.

use nom::IResult;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::pair;

/// Why a string is not a JSON string array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON at all (or not an array): use the shell form.
    NotJson,
    /// Valid JSON array with a non-string element: a hard error.
    NotStringArray,
}

const MAX_DEPTH: usize = 1000;

/// Parses a JSON array of strings; returns each element with its byte range
/// (including the quotes) in `s`.
pub(crate) fn parse_string_array(s: &str) -> Result<Vec<(String, usize, usize)>, JsonError> {
    let lead = s.len() - s.trim_start().len();
    let b = &s.as_bytes()[lead..];
    if b.first() != Some(&b'[') {
        return Err(JsonError::NotJson);
    }
    let mut p = Parser2 {
        b,
        pos: 0,
        depth: 0,
        elems: Vec::new(),
        all_strings: true,
    };
    p.array(true).map_err(|_| JsonError::NotJson)?;
    p.ws();
    if p.pos != b.len() {
        return Err(JsonError::NotJson);
    }
    if !p.all_strings {
        return Err(JsonError::NotStringArray);
    }
    Ok(p.elems
        .into_iter()
        .map(|(v, a, e)| (v, a + lead, e + lead))
        .collect())
}

struct Parser2<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
    elems: Vec<(String, usize, usize)>,
    all_strings: bool,
}

type R<T> = Result<T, ()>;

fn number(i: &str) -> IResult<&str, &str> {
    recognize((
        opt(char('-')),
        alt((
            tag("0"),
            recognize(pair(
                one_of("123456789"),
                take_while(|c: char| c.is_ascii_digit()),
            )),
        )),
        opt(pair(char('.'), take_while1(|c: char| c.is_ascii_digit()))),
        opt((
            one_of("eE"),
            opt(one_of("+-")),
            take_while1(|c: char| c.is_ascii_digit()),
        )),
    ))
    .parse(i)
}

impl Parser2<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, top: bool) -> R<()> {
        self.ws();
        match self.b.get(self.pos) {
            Some(b'"') => {
                let start = self.pos;
                let s = self.string()?;
                if top {
                    self.elems.push((s, start, self.pos));
                }
                Ok(())
            }
            Some(b'[') => {
                if top {
                    self.all_strings = false;
                }
                self.array(false)
            }
            Some(b'{') => {
                if top {
                    self.all_strings = false;
                }
                self.object()
            }
            Some(_) => {
                if top {
                    self.all_strings = false;
                }
                let rest = std::str::from_utf8(&self.b[self.pos..]).map_err(|_| ())?;
                for lit in ["true", "false", "null"] {
                    if rest.starts_with(lit) {
                        self.pos += lit.len();
                        return Ok(());
                    }
                }
                let (after, _) = number(rest).map_err(|_| ())?;
                self.pos += rest.len() - after.len();
                Ok(())
            }
            None => Err(()),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(())
        } else {
            Ok(())
        }
    }

    fn array(&mut self, top: bool) -> R<()> {
        self.enter()?;
        self.pos += 1; // '['
        self.ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.value(top)?;
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    fn object(&mut self) -> R<()> {
        self.enter()?;
        self.pos += 1; // '{'
        self.ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.b.get(self.pos) != Some(&b'"') {
                return Err(());
            }
            self.string()?;
            self.ws();
            if self.b.get(self.pos) != Some(&b':') {
                return Err(());
            }
            self.pos += 1;
            self.value(false)?;
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    fn hex4(&mut self) -> R<u32> {
        let h = self.b.get(self.pos..self.pos + 4).ok_or(())?;
        let h = std::str::from_utf8(h).map_err(|_| ())?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(());
        }
        self.pos += 4;
        u32::from_str_radix(h, 16).map_err(|_| ())
    }

    fn string(&mut self) -> R<String> {
        self.pos += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.b.get(self.pos).ok_or(())?;
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    let e = *self.b.get(self.pos + 1).ok_or(())?;
                    self.pos += 2;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\x08',
                        b'f' => '\x0c',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u)
                                && self.b.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{fffd}')
                                } else {
                                    self.pos = save;
                                    '\u{fffd}'
                                }
                            } else {
                                char::from_u32(u).unwrap_or('\u{fffd}')
                            }
                        }
                        _ => return Err(()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(()),
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Result<Vec<String>, JsonError> {
        parse_string_array(s).map(|v| v.into_iter().map(|e| e.0).collect())
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(vals("[]").unwrap(), Vec::<String>::new());
        assert_eq!(vals(" [ \"a\", \"b\" ] ").unwrap(), vec!["a", "b"]);
        assert_eq!(
            vals(r#"["\" \\ \/ \b \f \n \r \t \u0000 \u2665"]"#).unwrap(),
            vec!["\" \\ / \x08 \x0c \n \r \t \0 ♥"]
        );
        assert_eq!(vals(r#"["\ud83d\ude00"]"#).unwrap(), vec!["😀"]);
    }

    #[test]
    fn not_json_or_not_strings() {
        assert_eq!(vals("['a']"), Err(JsonError::NotJson));
        assert_eq!(vals("[\"a\""), Err(JsonError::NotJson));
        assert_eq!(vals("[\"a\"] x"), Err(JsonError::NotJson));
        assert_eq!(vals("echo"), Err(JsonError::NotJson));
        assert_eq!(vals("[\"a\", [\"b\"]]"), Err(JsonError::NotStringArray));
        assert_eq!(vals("[1]"), Err(JsonError::NotStringArray));
        assert_eq!(
            vals("[1.5e3, true, null, {\"a\": [1]}]"),
            Err(JsonError::NotStringArray)
        );
        assert_eq!(vals("[01]"), Err(JsonError::NotJson));
        assert_eq!(vals(&"[".repeat(5000)), Err(JsonError::NotJson));
    }
}
