//! Tests of content hashing on real temporary directories.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::context::ContextFilter;

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn ctx_tree(root: &Path, ignore: &[&str]) -> SourceTree {
    SourceTree::open(
        root,
        SourceOptions::context(
            ContextFilter::new(ignore).unwrap(),
            Arc::new(MemoryStatCache::default()),
        ),
    )
    .unwrap()
}

fn sel(path: &str) -> Selection {
    Selection::dockerfile(path, false, &[])
}

fn digest(root: &Path, ignore: &[&str], s: &Selection) -> Digest {
    ctx_tree(root, ignore).selection_digest(s).unwrap()
}

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn sample() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "app/main.go", "package main");
    write(d.path(), "app/util/u.go", "package util");
    write(d.path(), "docs/readme.md", "hello");
    write(d.path(), "notes.txt", "n");
    write(d.path(), "b.txt", "b");
    d
}

#[test]
fn mtime_does_not_matter_content_and_mode_do() {
    let d = sample();
    let all = sel(".");
    let base = digest(d.path(), &[], &all);
    set_mtime(&d.path().join("app/main.go"), 12345);
    set_mtime(&d.path().join("app"), 12345);
    assert_eq!(
        digest(d.path(), &[], &all),
        base,
        "mtimes are not part of the key"
    );

    write(d.path(), "app/main.go", "package main2");
    let changed = digest(d.path(), &[], &all);
    assert_ne!(changed, base);

    std::fs::set_permissions(
        d.path().join("app/main.go"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_ne!(
        digest(d.path(), &[], &all),
        changed,
        "mode is part of the key"
    );
}

#[test]
fn names_and_xattrs_matter() {
    let d = sample();
    let base = digest(d.path(), &[], &sel("app"));
    std::fs::rename(d.path().join("app/main.go"), d.path().join("app/main2.go")).unwrap();
    let renamed = digest(d.path(), &[], &sel("app"));
    assert_ne!(renamed, base);
    match rustix::fs::lsetxattr(
        d.path().join("app/main2.go"),
        "user.kiln",
        b"1",
        rustix::fs::XattrFlags::empty(),
    ) {
        Ok(()) => assert_ne!(
            digest(d.path(), &[], &sel("app")),
            renamed,
            "user xattrs count"
        ),
        Err(e) => eprintln!("SKIPPED xattr part: filesystem refuses user xattrs ({e})"),
    }
}

#[test]
fn unrelated_and_ignored_files_do_not_matter() {
    let d = sample();
    let s = sel("app");
    let base = digest(d.path(), &["docs"], &s);
    write(d.path(), "notes.txt", "changed");
    write(d.path(), "docs/readme.md", "changed");
    assert_eq!(digest(d.path(), &["docs"], &s), base);

    let whole = digest(d.path(), &["docs", "*.txt"], &sel("."));
    write(d.path(), "docs/new.md", "x");
    write(d.path(), "notes.txt", "again");
    assert_eq!(
        digest(d.path(), &["docs", "*.txt"], &sel(".")),
        whole,
        "ignored files are invisible"
    );
    write(d.path(), "app/new.go", "x");
    assert_ne!(digest(d.path(), &["docs", "*.txt"], &sel(".")), whole);
}

#[test]
fn ignored_path_is_not_found() {
    let d = sample();
    let err = ctx_tree(d.path(), &["docs"])
        .selection_digest(&sel("docs/readme.md"))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "\"/docs/readme.md\": not found");
    let err = ctx_tree(d.path(), &[])
        .selection_digest(&sel("missing"))
        .unwrap_err();
    assert_eq!(err.to_string(), "\"/missing\": not found");
}

#[test]
fn context_owner_is_zero_but_rootfs_owner_counts() {
    let d = sample();
    let p = d.path().join("b.txt");
    let ctx = digest(d.path(), &[], &sel("b.txt"));
    let fs = SourceTree::open(d.path(), SourceOptions::rootfs())
        .unwrap()
        .selection_digest(&sel("b.txt"))
        .unwrap();
    rustix::fs::chown(
        &p,
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(99)),
    )
    .unwrap();
    assert_eq!(
        digest(d.path(), &[], &sel("b.txt")),
        ctx,
        "context files count as 0:0"
    );
    let fs2 = SourceTree::open(d.path(), SourceOptions::rootfs())
        .unwrap()
        .selection_digest(&sel("b.txt"))
        .unwrap();
    assert_ne!(fs2, fs, "stage files keep their owner");
}

#[test]
fn wildcards_select_only_matches() {
    let d = sample();
    let s = sel("*.txt");
    let base = digest(d.path(), &[], &s);
    write(d.path(), "app/main.go", "other");
    assert_eq!(digest(d.path(), &[], &s), base);
    write(d.path(), "b.txt", "bb");
    let changed = digest(d.path(), &[], &s);
    assert_ne!(changed, base);
    write(d.path(), "c.txt", "c");
    assert_ne!(
        digest(d.path(), &[], &s),
        changed,
        "a new match changes the key"
    );
    assert_eq!(digest(d.path(), &[], &sel("*.nothing")), Digest::empty());
    // One match with the same base name is that match's own digest.
    let single = digest(d.path(), &[], &sel("app/*/u.go"));
    assert_eq!(single, digest(d.path(), &[], &sel("app/util/u.go")));
    let m = ctx_tree(d.path(), &[]).matches(&sel("app/*/*.go")).unwrap();
    assert_eq!(
        m.iter().map(|m| m.named.as_str()).collect::<Vec<_>>(),
        vec!["app/util/u.go"]
    );
}

#[test]
fn exclude_patterns_cut_the_key() {
    let d = sample();
    let s = Selection::dockerfile(".", false, &["*.txt".to_string(), "docs".to_string()]);
    let base = digest(d.path(), &[], &s);
    write(d.path(), "notes.txt", "changed");
    write(d.path(), "docs/readme.md", "changed");
    assert_eq!(digest(d.path(), &[], &s), base);
    write(d.path(), "app/main.go", "changed");
    assert_ne!(digest(d.path(), &[], &s), base);
}

#[test]
fn parents_selection_and_required_paths() {
    let d = sample();
    let s = Selection::dockerfile("app/./util/u.go", true, &[]);
    assert_eq!(s.path, "app");
    assert_eq!(s.include, vec!["util/u.go"]);
    let t = ctx_tree(d.path(), &[]);
    let base = t.selection_digest(&s).unwrap();
    write(d.path(), "app/main.go", "unrelated");
    assert_eq!(digest(d.path(), &[], &s), base);
    write(d.path(), "app/util/u.go", "related");
    assert_ne!(digest(d.path(), &[], &s), base);
    let missing = Selection::dockerfile("app/./nope.go", true, &[]);
    assert!(matches!(
        t.selection_digest(&missing),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn symlinks_followed_inside_the_root() {
    let d = sample();
    std::os::unix::fs::symlink("app/util", d.path().join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../b.txt", d.path().join("app/up")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("abs")).unwrap();
    let t = ctx_tree(d.path(), &[]);
    assert_eq!(
        t.selection_digest(&sel("link")).unwrap(),
        t.selection_digest(&sel("app/util")).unwrap()
    );
    // `..` stops at the root, so this is the context's own b.txt.
    assert_eq!(
        t.selection_digest(&sel("app/up")).unwrap(),
        t.selection_digest(&sel("b.txt")).unwrap()
    );
    // An absolute target is looked up inside the root, never on the host.
    assert!(matches!(
        t.selection_digest(&sel("abs")),
        Err(Error::NotFound { .. })
    ));
    let no_follow = Selection {
        follow_links: false,
        ..sel("link")
    };
    assert_ne!(
        t.selection_digest(&no_follow).unwrap(),
        t.selection_digest(&sel("app/util")).unwrap()
    );
}

/// Counts what reaches the backing store.
#[derive(Default)]
struct CountingCache {
    inner: MemoryStatCache,
    hits: AtomicUsize,
    stored: AtomicUsize,
}

impl StatCache for CountingCache {
    fn get_many(&self, keys: &[StatKey]) -> Vec<Option<Digest>> {
        let r = self.inner.get_many(keys);
        self.hits
            .fetch_add(r.iter().filter(|x| x.is_some()).count(), Ordering::SeqCst);
        r
    }
    fn put_many(&self, entries: &[(StatKey, Digest)]) {
        self.stored.fetch_add(entries.len(), Ordering::SeqCst);
        self.inner.put_many(entries)
    }
}

#[test]
fn stat_cache_avoids_rereading_and_notices_changes() {
    let d = sample();
    let cache = Arc::new(CountingCache::default());
    let open = || {
        SourceTree::open(
            d.path(),
            SourceOptions::context(ContextFilter::none(), cache.clone()),
        )
        .unwrap()
    };
    let first = open().selection_digest(&sel(".")).unwrap();
    assert_eq!(cache.stored.load(Ordering::SeqCst), 5);
    let second = open().selection_digest(&sel(".")).unwrap();
    assert_eq!(second, first);
    assert_eq!(cache.stored.load(Ordering::SeqCst), 5, "nothing re-hashed");
    assert_eq!(cache.hits.load(Ordering::SeqCst), 5);

    // Same size, same mtime, different content: ctime still moves.
    let p = d.path().join("b.txt");
    let old = std::fs::symlink_metadata(&p).unwrap();
    std::fs::write(&p, "c").unwrap();
    set_mtime(&p, std::os::unix::fs::MetadataExt::mtime(&old));
    let third = open().selection_digest(&sel(".")).unwrap();
    assert_ne!(third, first);
    assert_eq!(
        cache.stored.load(Ordering::SeqCst),
        6,
        "only the changed file was re-read"
    );
}

#[test]
fn empty_root_header_for_the_context() {
    let d = sample();
    let t = ctx_tree(d.path(), &[]);
    assert_eq!(t.header_digest(t.root()).unwrap(), Digest::empty());
    let r = SourceTree::open(d.path(), SourceOptions::rootfs()).unwrap();
    assert_ne!(r.header_digest(r.root()).unwrap(), Digest::empty());
}

#[test]
fn file_digest_is_header_then_content() {
    let d = sample();
    let t = ctx_tree(d.path(), &[]);
    let n = t.resolve(b"b.txt", false).unwrap().unwrap();
    let mut expect = header_bytes(
        n.meta(),
        0,
        0,
        None,
        &read_xattrs(&d.path().join("b.txt")).unwrap(),
    );
    expect.extend_from_slice(b"b");
    assert_eq!(t.digest(&n).unwrap(), Digest::of_file(&expect));
}

#[test]
fn a_files_xattrs_are_part_of_its_digest() {
    let d = sample();
    let plain = ctx_tree(d.path(), &[]);
    let n = plain.resolve(b"b.txt", false).unwrap().unwrap();
    let before = plain.digest(&n).unwrap();
    let p = d.path().join("b.txt");
    rustix::fs::lsetxattr(&p, "user.kiln", b"v", rustix::fs::XattrFlags::empty())
        .expect("user xattrs on the test filesystem");
    let t = ctx_tree(d.path(), &[]);
    let n = t.resolve(b"b.txt", false).unwrap().unwrap();
    let mut expect = header_bytes(
        n.meta(),
        0,
        0,
        None,
        &[(b"user.kiln".to_vec(), b"v".to_vec())],
    );
    expect.extend_from_slice(b"b");
    assert_eq!(t.digest(&n).unwrap(), Digest::of_file(&expect));
    assert_ne!(t.digest(&n).unwrap(), before);
}
