//! `USER` → uid, gid, supplementary groups and home directory, read from
//! the image's own `/etc/passwd` and `/etc/group`, with BuildKit's rules:
//!
//! - empty means root (uid 0; gid and groups from the files when they
//!   have a root entry, else 0);
//! - `uid:gid` with both numeric (or `root`) is taken as is, no lookup;
//! - a user name must exist in passwd; a numeric uid need not (gid 0);
//! - a group name must exist in group; a numeric gid need not;
//! - supplementary groups (the groups listing the user) only when no group
//!   was given explicitly;
//! - the primary gid is always first in the group list (containerd's
//!   `ensureAdditionalGids`);
//! - `HOME` (when the environment has none) is the passwd home of the
//!   resulting uid, or `/`.
//!
//! Pure functions over file contents: the sandbox reads the files after
//! `pivot_root`, inside the image, and passes them here.

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// All groups, primary first.
    pub(crate) groups: Vec<u32>,
    pub(crate) home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

const MAX_ID: u64 = i32::MAX as u64;

fn lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    lines(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    lines(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Parses a numeric id; `Ok(None)` when it is not numeric (a name).
fn numeric(s: &str) -> Result<Option<u32>, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_ID => Ok(Some(n as u32)),
        _ => Err(format!("user or group id {s} is out of range")),
    }
}

fn fast_id(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    numeric(s).ok().flatten()
}

/// Resolves `spec` against the image's passwd and group contents (`None`
/// when the file does not exist).
pub(crate) fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, String> {
    let is_default = spec.is_empty();
    let spec = if is_default { "0" } else { spec };
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let home_of = |uid: u32| {
        users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.home.to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string())
    };
    if let Some((u, g)) = spec.split_once(':')
        && let (Some(uid), Some(gid)) = (fast_id(u), fast_id(g))
    {
        return Ok(ExecUser {
            uid,
            gid,
            groups: vec![gid],
            home: home_of(uid),
        });
    }
    match lookup(spec, &users, group) {
        Ok((uid, gid, sgids)) => {
            let mut groups = vec![gid];
            groups.extend(sgids.into_iter().filter(|g| *g != gid));
            Ok(ExecUser {
                uid,
                gid,
                groups,
                home: home_of(uid),
            })
        }
        Err(_) if is_default => Ok(ExecUser {
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: home_of(0),
        }),
        Err(e) => Err(e),
    }
}

/// moby/sys/user's `GetExecUser`, without defaults: (uid, gid, sgids).
fn lookup(
    spec: &str,
    users: &[PasswdEntry<'_>],
    group: Option<&str>,
) -> Result<(u32, u32, Vec<u32>), String> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let uid_arg = numeric(user_arg)?;
    let gid_arg = numeric(group_arg)?;
    let (mut uid, mut gid) = (0u32, 0u32);
    let mut matched: Option<&str> = None;
    let found = users.iter().find(|u| match uid_arg {
        Some(n) => u.uid == n,
        None if user_arg.is_empty() => u.uid == 0,
        None => u.name == user_arg,
    });
    match found {
        Some(u) => {
            matched = Some(u.name);
            uid = u.uid;
            gid = u.gid;
        }
        None if !user_arg.is_empty() => match uid_arg {
            Some(n) => uid = n,
            None => {
                return Err(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                ));
            }
        },
        None => {}
    }
    let mut sgids = Vec::new();
    if !group_arg.is_empty() || matched.is_some() {
        let groups = group.map(parse_group).unwrap_or_default();
        if !group_arg.is_empty() {
            let hit = groups.iter().find(|g| match gid_arg {
                Some(n) => g.gid == n,
                None => g.name == group_arg,
            });
            match (hit, gid_arg) {
                (Some(g), _) => gid = g.gid,
                (None, Some(n)) => gid = n,
                (None, None) => {
                    return Err(format!(
                        "unable to find group {group_arg}: no matching entries in group file"
                    ));
                }
            }
        } else if let Some(name) = matched {
            sgids = groups
                .iter()
                .filter(|g| g.members.contains(&name))
                .map(|g| g.gid)
                .collect();
        }
    }
    Ok((uid, gid, sgids))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nwheel:x:10:root,app\n";

    fn r(spec: &str) -> Result<ExecUser, String> {
        resolve(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_resolve_with_supplementary_groups() {
        let u = r("app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.groups, vec![1000, 50, 10]);
        assert_eq!(u.home, "/home/app");
    }

    #[test]
    fn root_by_default() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.groups, vec![0, 10]);
        let u = resolve("", None, None).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (0, 0, vec![0], "/")
        );
    }

    #[test]
    fn numeric_forms() {
        // uid:gid: taken as is.
        let u = r("1000:50").unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (1000, 50, vec![50]));
        // A uid alone is looked up (gid and groups from passwd/group).
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.groups, vec![1000, 50, 10]);
        // An unknown uid is fine, with gid 0 and HOME /.
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn explicit_groups_drop_supplementary_ones() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (1000, 50, vec![50]));
        let u = r("app:777").unwrap();
        assert_eq!((u.gid, u.groups.clone()), (777, vec![777]));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            r("ghost").unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            r("app:ghosts").unwrap_err(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert!(resolve("app", None, None).is_err());
        assert!(r("99999999999").unwrap_err().contains("out of range"));
    }
}
