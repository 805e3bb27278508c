//! Go's `strconv.Quote`, which BuildKit's parse-tree dump uses. Rust's
//! `{:?}` differs (`\0`, `\u{8}`, escaped combining marks), so this is a
//! port of the Go rules: printable characters (Unicode L, M, N, P, S and
//! the ASCII space) pass through; the rest are escaped.

use std::fmt::Write as _;

/// Quotes `s` exactly as Go's `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: graphic characters plus U+0020, without other
/// spaces. Approximated without the Unicode category tables: controls,
/// whitespace other than U+0020, format characters (Cf) and private-use
/// characters are not printable; everything else is. (Unassigned code
/// points are the only known difference.)
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let noncharacter = (u & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&u);
    !(format || private || noncharacter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\0\x08\x0c\n\r\t\x0b\x07\x1b\x7f"),
            r#""\x00\b\f\n\r\t\v\a\x1b\x7f""#
        );
        assert_eq!(go_quote("♥ ☃ 'x'"), "\"♥ ☃ 'x'\"");
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{2028}"),
            r#""\u00a0\u200b\u2028""#
        );
        assert_eq!(go_quote("e\u{301}"), "\"e\u{301}\"");
        assert_eq!(go_quote("\u{10ffff}"), r#""\U0010ffff""#);
        assert_eq!(go_quote("\u{fffd}"), "\"\u{fffd}\"");
    }
}
