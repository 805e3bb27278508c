//! The per-entry header BuildKit hashes before a file's content.
//!
//! It is the tarsum-v1 selection of tar header fields without `mtime`:
//! `name` (always empty: names are added by the directory hash), `mode`
//! (permission bits plus setuid/setgid/sticky), `uid`, `gid`, `size`,
//! `typeflag`, `linkname`, `uname`/`gname` (empty), `devmajor`, `devminor`,
//! then the xattrs sorted by name, leaving out `system.*` and `security.*`
//! except `security.capability`. Each field is written as key then value,
//! with no separator — exactly as BuildKit's `WriteV1TarsumHeaders`.

use super::tree::Meta;

/// Whether BuildKit's checksum keeps this xattr.
pub fn xattr_counts(name: &[u8]) -> bool {
    name == b"security.capability"
        || !(name.starts_with(b"security.") || name.starts_with(b"system."))
}

/// The tar typeflag of a file type.
fn typeflag(mode: u32) -> u8 {
    match mode & libc_s::S_IFMT {
        libc_s::S_IFDIR => b'5',
        libc_s::S_IFLNK => b'2',
        libc_s::S_IFCHR => b'3',
        libc_s::S_IFBLK => b'4',
        libc_s::S_IFIFO => b'6',
        // Regular files, and sockets (BuildKit clears the socket bit first).
        _ => b'0',
    }
}

/// Mode constants (values are fixed by POSIX/Linux).
pub(crate) mod libc_s {
    pub(crate) const S_IFMT: u32 = 0o170000;
    pub(crate) const S_IFDIR: u32 = 0o040000;
    pub(crate) const S_IFLNK: u32 = 0o120000;
    pub(crate) const S_IFCHR: u32 = 0o020000;
    pub(crate) const S_IFBLK: u32 = 0o060000;
    pub(crate) const S_IFIFO: u32 = 0o010000;
    pub(crate) const S_IFREG: u32 = 0o100000;
    pub(crate) const S_IFSOCK: u32 = 0o140000;
}

/// Builds the header bytes of one entry. `uid`/`gid` are passed separately
/// because context files count as 0:0 whatever their owner on disk.
pub fn header_bytes(
    meta: &Meta,
    uid: u32,
    gid: u32,
    link: Option<&[u8]>,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Vec<u8> {
    let ft = meta.mode & libc_s::S_IFMT;
    let mut perm = meta.mode & 0o7777;
    if ft == libc_s::S_IFLNK {
        perm |= 0o777;
    }
    let size = if ft == libc_s::S_IFREG || ft == libc_s::S_IFSOCK {
        meta.size
    } else {
        0
    };
    let (major, minor) = if ft == libc_s::S_IFCHR || ft == libc_s::S_IFBLK {
        (rustix::fs::major(meta.rdev), rustix::fs::minor(meta.rdev))
    } else {
        (0, 0)
    };
    let mut h = Vec::with_capacity(128);
    h.extend_from_slice(b"name");
    h.extend_from_slice(format!("mode{perm}uid{uid}gid{gid}size{size}").as_bytes());
    h.extend_from_slice(b"typeflag");
    h.push(typeflag(meta.mode));
    h.extend_from_slice(b"linkname");
    if ft == libc_s::S_IFLNK
        && let Some(l) = link
    {
        h.extend_from_slice(l);
    }
    h.extend_from_slice(format!("unamegnamedevmajor{major}devminor{minor}").as_bytes());
    let mut kept: Vec<&(Vec<u8>, Vec<u8>)> =
        xattrs.iter().filter(|(k, _)| xattr_counts(k)).collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in kept {
        h.extend_from_slice(k);
        h.extend_from_slice(v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, size: u64) -> Meta {
        Meta {
            mode,
            size,
            ..Meta::default()
        }
    }

    #[test]
    fn regular_file_header_is_tarsum_v1_without_mtime() {
        let h = header_bytes(&meta(0o100644, 5), 0, 0, None, &[]);
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "namemode420uid0gid0size5typeflag0linknameunamegnamedevmajor0devminor0"
        );
    }

    #[test]
    fn special_bits_symlinks_and_xattrs() {
        let h = header_bytes(&meta(0o104755, 1), 1000, 50, None, &[]);
        assert!(
            String::from_utf8(h)
                .unwrap()
                .starts_with("namemode2541uid1000gid50size1typeflag0")
        );
        let h = header_bytes(&meta(0o120777, 6), 0, 0, Some(b"target"), &[]);
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "namemode511uid0gid0size0typeflag2linknametargetunamegnamedevmajor0devminor0"
        );
        let x = vec![
            (b"user.b".to_vec(), b"2".to_vec()),
            (b"security.selinux".to_vec(), b"ctx".to_vec()),
            (b"user.a".to_vec(), b"1".to_vec()),
            (b"security.capability".to_vec(), b"cap".to_vec()),
            (b"system.posix_acl_access".to_vec(), b"acl".to_vec()),
        ];
        let h = String::from_utf8(header_bytes(&meta(0o100600, 0), 0, 0, None, &x)).unwrap();
        assert!(
            h.ends_with("devminor0security.capabilitycapuser.a1user.b2"),
            "{h}"
        );
    }

    #[test]
    fn devices_carry_numbers_dirs_have_no_size() {
        let m = Meta {
            mode: 0o020666,
            rdev: rustix::fs::makedev(1, 3),
            size: 0,
            ..Meta::default()
        };
        let h = String::from_utf8(header_bytes(&m, 0, 0, None, &[])).unwrap();
        assert!(
            h.contains("typeflag3") && h.ends_with("devmajor1devminor3"),
            "{h}"
        );
        let h = String::from_utf8(header_bytes(&meta(0o040755, 4096), 0, 0, None, &[])).unwrap();
        assert!(h.contains("size0typeflag5"), "{h}");
    }
}
