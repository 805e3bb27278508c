//! `--chown`: parsing `user[:group]` and resolving names in the destination
//! root's `/etc/passwd` and `/etc/group`, as BuildKit does.
//!
//! A numeric user alone gives gid = uid; a user name alone gives that
//! user's primary group from `/etc/passwd`; `root` is 0 without a lookup.
//! BuildKit does not fail on a name it cannot find: it uses 0 (we do the same
//! and log a warning).

use std::io::Read;

use rustix::fs::OFlags;

use super::root::RootDir;
use super::{Error, Result};

/// One side of a `--chown` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A numeric id (or `root`).
    Num(u32),
    /// A name to look up.
    Name(String),
}

/// A parsed `--chown=user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChownSpec {
    /// The user.
    pub user: Id,
    /// The group, if given.
    pub group: Option<Id>,
}

/// Resolved numeric ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

fn parse_id(s: &str) -> Id {
    if s == "root" {
        return Id::Num(0);
    }
    match s.parse::<i32>() {
        Ok(n) => Id::Num(n as u32),
        Err(_) => Id::Name(s.to_string()),
    }
}

impl ChownSpec {
    /// Parses `user`, `user:group`, `uid`, `uid:gid`.
    pub fn parse(s: &str) -> ChownSpec {
        match s.split_once(':') {
            Some((u, g)) => ChownSpec {
                user: parse_id(u),
                group: Some(parse_id(g)),
            },
            None => ChownSpec {
                user: parse_id(s),
                group: None,
            },
        }
    }

    /// Resolves names in `root`'s `/etc/passwd` and `/etc/group`.
    pub fn resolve(&self, root: &RootDir) -> Result<Owner> {
        let mut o = Owner { uid: 0, gid: 0 };
        match &self.user {
            Id::Num(n) => {
                o.uid = *n;
                o.gid = *n;
            }
            Id::Name(name) => match lookup(root, "etc/passwd", name, 2, Some(3))? {
                Some((uid, gid)) => {
                    o.uid = uid;
                    o.gid = gid.unwrap_or(0);
                }
                None => tracing::warn!(
                    "--chown: user {name:?} not found in /etc/passwd, using 0 like BuildKit"
                ),
            },
        }
        match &self.group {
            None => {}
            Some(Id::Num(n)) => o.gid = *n,
            Some(Id::Name(name)) => match lookup(root, "etc/group", name, 2, None)? {
                Some((gid, _)) => o.gid = gid,
                None => tracing::warn!(
                    "--chown: group {name:?} not found in /etc/group, using 0 like BuildKit"
                ),
            },
        }
        Ok(o)
    }
}

const MAX_USER_FILE: u64 = 10 << 20;

/// Finds `name` in a colon-separated database; returns fields `a` and `b`.
fn lookup(
    root: &RootDir,
    file: &str,
    name: &str,
    a: usize,
    b: Option<usize>,
) -> Result<Option<(u32, Option<u32>)>> {
    let fd = match root.open_at(file, OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(Error::io(&root.display(file), e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(&root.display(file), e.into()))?;
    if st.st_mode & 0o170000 != 0o100000 {
        return Err(Error::Invalid(format!("/{file} is not a regular file")));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_USER_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(&root.display(file), e))?;
    if text.len() as u64 > MAX_USER_FILE {
        return Err(Error::Invalid(format!(
            "/{file} exceeds {MAX_USER_FILE} bytes"
        )));
    }
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.first() != Some(&name) {
            continue;
        }
        let num = |i: usize| f.get(i).and_then(|v| v.trim().parse::<u32>().ok());
        let Some(x) = num(a) else { continue };
        return Ok(Some((x, b.and_then(num))));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_users() -> (tempfile::TempDir, RootDir) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# c\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let r = RootDir::open(d.path()).unwrap();
        (d, r)
    }

    #[test]
    fn resolves_like_buildkit() {
        let (_d, r) = root_with_users();
        let o = |s: &str| ChownSpec::parse(s).resolve(&r).unwrap();
        assert_eq!(
            o("app"),
            Owner {
                uid: 1000,
                gid: 1001
            },
            "name alone: primary group"
        );
        assert_eq!(
            o("1234"),
            Owner {
                uid: 1234,
                gid: 1234
            },
            "number alone: gid = uid"
        );
        assert_eq!(o("app:staff"), Owner { uid: 1000, gid: 50 });
        assert_eq!(o("app:7"), Owner { uid: 1000, gid: 7 });
        assert_eq!(o("5:staff"), Owner { uid: 5, gid: 50 });
        assert_eq!(o("root"), Owner { uid: 0, gid: 0 });
        assert_eq!(
            o("nobody:nogroup"),
            Owner { uid: 0, gid: 0 },
            "unknown names give 0 as in BuildKit"
        );
    }

    #[test]
    fn passwd_is_read_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("passwd"), "inside:x:77:78::/:/bin/sh\n").unwrap();
        let r = RootDir::open(d.path()).unwrap();
        // /etc -> / inside the root is <root>/, so the host's root user is not seen.
        assert_eq!(
            ChownSpec::parse("inside").resolve(&r).unwrap(),
            Owner { uid: 77, gid: 78 }
        );
    }
}
