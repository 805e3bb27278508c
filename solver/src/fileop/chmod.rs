//! `--chmod`: an octal mode up to 07777, or a symbolic mode (`u+x,go-w`,
//! `a=rX`, `g=u`), applied as BuildKit does (symbolic modes with umask 0).

use super::{Error, Result};

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// A numeric mode (permission bits plus setuid/setgid/sticky).
    Octal(u32),
    /// Symbolic clauses.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    ops: Vec<(u8, Perm)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    Bits { bits: u32, cond_x: bool },
    Copy(u8),
}

const WHO_U: u32 = 0o4700;
const WHO_G: u32 = 0o2070;
const WHO_O: u32 = 0o1007;

impl Chmod {
    /// Parses a `--chmod` value.
    pub fn parse(s: &str) -> Result<Chmod> {
        let bad = || {
            Error::Invalid(format!(
                "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
            ))
        };
        if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
            let v = u32::from_str_radix(s, 8).map_err(|_| bad())?;
            if v > 0o7777 {
                return Err(bad());
            }
            return Ok(Chmod::Octal(v));
        }
        let sym_err = || {
            Error::Invalid(format!(
                "invalid chmod parameter: '{s}': not an octal or symbolic mode"
            ))
        };
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let b = part.as_bytes();
            let mut i = 0;
            let mut who = 0;
            while i < b.len() && matches!(b[i], b'u' | b'g' | b'o' | b'a') {
                who |= match b[i] {
                    b'u' => WHO_U,
                    b'g' => WHO_G,
                    b'o' => WHO_O,
                    _ => WHO_U | WHO_G | WHO_O,
                };
                i += 1;
            }
            let mut ops = Vec::new();
            while i < b.len() {
                let op = b[i];
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(sym_err());
                }
                i += 1;
                if i < b.len() && matches!(b[i], b'u' | b'g' | b'o') {
                    ops.push((op, Perm::Copy(b[i])));
                    i += 1;
                    continue;
                }
                let mut bits = 0;
                let mut cond_x = false;
                while i < b.len() && matches!(b[i], b'r' | b'w' | b'x' | b'X' | b's' | b't') {
                    match b[i] {
                        b'r' => bits |= 0o444,
                        b'w' => bits |= 0o222,
                        b'x' => bits |= 0o111,
                        b'X' => cond_x = true,
                        b's' => bits |= 0o6000,
                        _ => bits |= 0o1000,
                    }
                    i += 1;
                }
                ops.push((op, Perm::Bits { bits, cond_x }));
            }
            if ops.is_empty() {
                return Err(sym_err());
            }
            clauses.push(Clause { who, ops });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode (permission and special bits) an entry gets, from its
    /// source mode (full `st_mode`).
    pub fn apply(&self, src_mode: u32) -> u32 {
        match self {
            Chmod::Octal(m) => m & 0o7777,
            Chmod::Symbolic(clauses) => {
                let is_dir = src_mode & 0o170000 == 0o040000;
                let mut m = src_mode & 0o7777;
                for c in clauses {
                    // No `who` means all, masked by the umask (0 here), but
                    // never touching the sticky bit via `s`.
                    let who = if c.who == 0 {
                        WHO_U | WHO_G | WHO_O
                    } else {
                        c.who
                    };
                    for (op, perm) in &c.ops {
                        let bits = match perm {
                            Perm::Bits { bits, cond_x } => {
                                let mut b = *bits;
                                if *cond_x && (is_dir || m & 0o111 != 0) {
                                    b |= 0o111;
                                }
                                b
                            }
                            Perm::Copy(from) => {
                                let v = match from {
                                    b'u' => (m >> 6) & 7,
                                    b'g' => (m >> 3) & 7,
                                    _ => m & 7,
                                };
                                v * 0o111
                            }
                        };
                        let mask = bits & who;
                        match op {
                            b'+' => m |= mask,
                            b'-' => m &= !mask,
                            _ => m = (m & !(who & 0o7777)) | mask,
                        }
                    }
                }
                m
            }
        }
    }

    /// The mode of directories created as missing parents: a numeric
    /// `--chmod`'s permission bits, else 0755 (as BuildKit).
    pub fn parent_dir_mode(chmod: Option<&Chmod>) -> u32 {
        match chmod {
            Some(Chmod::Octal(m)) => m & 0o777,
            _ => 0o755,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_errors() {
        assert_eq!(Chmod::parse("755").unwrap().apply(0o100600), 0o755);
        assert_eq!(Chmod::parse("4755").unwrap().apply(0o100600), 0o4755);
        assert!(Chmod::parse("17777").is_err());
        assert!(Chmod::parse("8").is_err());
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("").is_err());
    }

    #[test]
    fn symbolic_like_chmod() {
        let a = |s: &str, m: u32| Chmod::parse(s).unwrap().apply(m);
        assert_eq!(a("u+x", 0o100644), 0o744);
        assert_eq!(a("go-w", 0o100666), 0o644);
        assert_eq!(a("a=rX", 0o100644), 0o444);
        assert_eq!(a("a=rX", 0o100744), 0o555);
        assert_eq!(a("a=rX", 0o040700), 0o555);
        assert_eq!(a("+x", 0o100644), 0o755);
        assert_eq!(a("g=u", 0o100640), 0o660);
        assert_eq!(a("u=rwx,g=rx,o=", 0o100000), 0o750);
        assert_eq!(a("u+s", 0o100755), 0o4755);
        assert_eq!(a("+t", 0o040777), 0o1777);
    }
}
