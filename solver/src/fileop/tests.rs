//! Tests of the file-operation engine on real directories (run as root for
//! the ownership checks).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::contenthash::{MemoryStatCache, Selection, SourceOptions, SourceTree};
use crate::context::ContextFilter;

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn ctx(root: &Path) -> SourceTree {
    SourceTree::open(
        root,
        SourceOptions::context(ContextFilter::none(), Arc::new(MemoryStatCache::default())),
    )
    .unwrap()
}

fn opts(dest: &str) -> CopyOptions {
    CopyOptions {
        dest: dest.into(),
        dir_contents_only: true,
        ..CopyOptions::default()
    }
}

fn do_copy(src: &Path, dst: &Path, path: &str, o: &CopyOptions) -> Result<Manifest> {
    copy(
        &ctx(src),
        &Selection::dockerfile(path, false, &[]),
        o,
        &RootDir::open(dst).unwrap(),
    )
}

fn sample() -> (tempfile::TempDir, tempfile::TempDir) {
    let s = tempfile::tempdir().unwrap();
    write(s.path(), "dir/a.txt", "a");
    write(s.path(), "dir/sub/b.txt", "bb");
    write(s.path(), "file.txt", "f");
    write(s.path(), "x.log", "log");
    std::fs::set_permissions(
        s.path().join("file.txt"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    (s, tempfile::tempdir().unwrap())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn directory_source_copies_its_contents() {
    let (s, d) = sample();
    do_copy(s.path(), d.path(), "dir", &opts("/app")).unwrap();
    assert_eq!(read(&d.path().join("app/a.txt")), "a");
    assert_eq!(read(&d.path().join("app/sub/b.txt")), "bb");
    assert!(!d.path().join("app/dir").exists());
    // Into an existing directory: contents again, never dir/dir.
    do_copy(s.path(), d.path(), "dir/", &opts("/app/")).unwrap();
    assert!(!d.path().join("app/dir").exists());
}

#[test]
fn file_destination_rules() {
    let (s, d) = sample();
    // No trailing slash, missing dest: the file is named dest.
    do_copy(s.path(), d.path(), "file.txt", &opts("/opt/renamed")).unwrap();
    assert_eq!(read(&d.path().join("opt/renamed")), "f");
    // Trailing slash: into the directory, created with parents.
    do_copy(s.path(), d.path(), "file.txt", &opts("/srv/new/")).unwrap();
    assert_eq!(read(&d.path().join("srv/new/file.txt")), "f");
    // Existing directory without slash: inside it.
    do_copy(s.path(), d.path(), "x.log", &opts("/srv/new")).unwrap();
    assert_eq!(read(&d.path().join("srv/new/x.log")), "log");
    // Existing file: replaced.
    write(s.path(), "file.txt", "g");
    do_copy(s.path(), d.path(), "file.txt", &opts("/opt/renamed")).unwrap();
    assert_eq!(read(&d.path().join("opt/renamed")), "g");
    // Mode is kept, context files arrive 0:0, mtime preserved.
    let md = std::fs::metadata(d.path().join("srv/new/file.txt")).unwrap();
    let smd = std::fs::metadata(s.path().join("file.txt")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o751);
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(md.mtime(), smd.mtime());
    // Created parents are 0755.
    assert_eq!(
        std::fs::metadata(d.path().join("srv")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn a_file_never_replaces_a_directory_and_vice_versa() {
    let (s, d) = sample();
    std::fs::create_dir_all(d.path().join("t/sub")).unwrap();
    write(d.path(), "plain", "x");
    let err = do_copy(
        s.path(),
        d.path(),
        "dir",
        &CopyOptions {
            dir_contents_only: true,
            ..opts("/plain")
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CannotCopyToNonDir { .. } | Error::NotADirectory { .. }
        ),
        "{err}"
    );
    // dir/sub (a dir) onto t/sub (a dir) merges; a file named like an existing dir errors.
    std::fs::create_dir_all(d.path().join("u/a.txt")).unwrap();
    let err = do_copy(s.path(), d.path(), "dir", &opts("/u")).unwrap_err();
    assert!(matches!(err, Error::CannotReplaceDir { .. }), "{err}");
}

#[test]
fn wildcards_and_missing_sources() {
    let (s, d) = sample();
    let m = do_copy(s.path(), d.path(), "*.txt", &opts("/w/")).unwrap();
    assert_eq!(read(&d.path().join("w/file.txt")), "f");
    assert!(!d.path().join("w/x.log").exists());
    assert!(m.entries.iter().any(|e| e.path == "w/file.txt"));
    // A wildcard matching nothing copies nothing (but still makes the dest dir).
    do_copy(s.path(), d.path(), "*.none", &opts("/empty/")).unwrap();
    assert!(d.path().join("empty").is_dir());
    let err = do_copy(s.path(), d.path(), "missing.txt", &opts("/x")).unwrap_err();
    assert_eq!(err.to_string(), "\"/missing.txt\": not found");
}

#[test]
fn chown_chmod_exclude_parents() {
    let (s, d) = sample();
    let o = CopyOptions {
        owner: Some(Owner {
            uid: 1000,
            gid: 1001,
        }),
        chmod: Some(Chmod::parse("640").unwrap()),
        ..opts("/c/")
    };
    do_copy(s.path(), d.path(), "dir", &o).unwrap();
    let md = std::fs::metadata(d.path().join("c/sub/b.txt")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1000, 1001, 0o640)
    );
    // BuildKit applies --chmod to directories too, and numeric chmod to created parents.
    assert_eq!(
        std::fs::metadata(d.path().join("c/sub")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(std::fs::metadata(d.path().join("c")).unwrap().uid(), 1000);

    let sel = Selection::dockerfile(".", false, &["*.log".into(), "dir/sub".into()]);
    copy(
        &ctx(s.path()),
        &sel,
        &opts("/e/"),
        &RootDir::open(d.path()).unwrap(),
    )
    .unwrap();
    assert!(d.path().join("e/dir/a.txt").exists());
    assert!(!d.path().join("e/x.log").exists());
    assert!(!d.path().join("e/dir/sub").exists());

    let sel = Selection::dockerfile("dir/./sub/b.txt", true, &[]);
    copy(
        &ctx(s.path()),
        &sel,
        &opts("/p/"),
        &RootDir::open(d.path()).unwrap(),
    )
    .unwrap();
    assert_eq!(read(&d.path().join("p/sub/b.txt")), "bb");
    assert!(!d.path().join("p/a.txt").exists());
}

#[test]
fn hostile_destination_symlinks_stay_inside() {
    let (s, d) = sample();
    let host = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink("/", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
    std::os::unix::fs::symlink(host.path(), root.join("abs")).unwrap();
    do_copy(s.path(), &root, "file.txt", &opts("/etc/passwd")).unwrap();
    assert_eq!(
        read(&root.join("passwd")),
        "f",
        "/etc -> / resolves to the root itself"
    );
    do_copy(s.path(), &root, "dir", &opts("/up/x/")).unwrap();
    assert_eq!(read(&root.join("x/a.txt")), "a");
    // A symlink to a host path that does not exist inside the root dangles:
    // the copy fails (BuildKit would create the lexical target inside the root).
    assert!(do_copy(s.path(), &root, "file.txt", &opts("/abs/f")).is_err());
    assert!(
        std::fs::read_dir(host.path()).unwrap().next().is_none(),
        "nothing written on the host"
    );
    assert!(!d.path().join("x").exists());
    // A symlink where a copied directory must go is an error, not a redirect.
    std::fs::remove_dir_all(root.join("x/sub")).unwrap();
    std::os::unix::fs::symlink("/", root.join("x/sub")).unwrap();
    assert!(do_copy(s.path(), &root, "dir", &opts("/x/")).is_err());
}

#[test]
fn hard_links_symlinks_and_xattrs_are_kept() {
    let (s, d) = sample();
    std::fs::hard_link(s.path().join("dir/a.txt"), s.path().join("dir/a2.txt")).unwrap();
    std::os::unix::fs::symlink("a.txt", s.path().join("dir/lnk")).unwrap();
    let xattr_ok = rustix::fs::lsetxattr(
        s.path().join("dir/a.txt"),
        "user.k",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    do_copy(s.path(), d.path(), "dir", &opts("/h")).unwrap();
    let a = std::fs::metadata(d.path().join("h/a.txt")).unwrap();
    let a2 = std::fs::metadata(d.path().join("h/a2.txt")).unwrap();
    assert_eq!(a.ino(), a2.ino(), "hard links stay linked");
    assert_eq!(
        std::fs::read_link(d.path().join("h/lnk")).unwrap(),
        Path::new("a.txt")
    );
    if xattr_ok {
        let mut buf = [0u8; 8];
        let n = rustix::fs::lgetxattr(d.path().join("h/a.txt"), "user.k", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"v");
    } else {
        eprintln!("SKIPPED xattr check: filesystem refuses user xattrs");
    }
}

#[test]
fn source_symlink_is_followed() {
    let (s, d) = sample();
    std::os::unix::fs::symlink("dir", s.path().join("ldir")).unwrap();
    do_copy(s.path(), d.path(), "ldir", &opts("/l")).unwrap();
    assert_eq!(read(&d.path().join("l/a.txt")), "a");
}

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o640);
    h.set_uid(12);
    h.set_gid(34);
    h.set_mtime(1_000_000);
    h.set_cksum();
    b.append_data(&mut h, "top/inner.txt", &b"hello"[..])
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn add_extracts_archives_by_content() {
    use std::io::Write;
    let (s, d) = sample();
    let plain = tar_bytes();
    std::fs::write(s.path().join("a.tar"), &plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    std::fs::write(s.path().join("weird.name"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        s.path().join("a.zst"),
        zstd::encode_all(&plain[..], 1).unwrap(),
    )
    .unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&plain).unwrap();
    std::fs::write(s.path().join("a.xz"), xz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&plain).unwrap();
    std::fs::write(s.path().join("a.bz2"), bz.finish().unwrap()).unwrap();
    for name in ["a.tar", "weird.name", "a.zst", "a.xz", "a.bz2"] {
        assert!(is_archive(&s.path().join(name)), "{name}");
        let dest = format!("/x-{name}/");
        do_copy(
            s.path(),
            d.path(),
            name,
            &CopyOptions {
                unpack: true,
                ..opts(&dest)
            },
        )
        .unwrap();
        let p = d.path().join(format!("x-{name}/top/inner.txt"));
        assert_eq!(read(&p), "hello", "{name}");
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777, md.mtime()),
            (12, 34, 0o640, 1_000_000)
        );
    }
    assert!(!is_archive(&s.path().join("file.txt")));
    // Without unpack (COPY, or ADD --unpack=false) the archive is copied as is.
    do_copy(s.path(), d.path(), "a.tar", &opts("/raw/")).unwrap();
    assert_eq!(std::fs::read(d.path().join("raw/a.tar")).unwrap(), plain);
}

#[test]
fn hostile_archive_entries_are_rejected() {
    let (s, d) = sample();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    // tar-rs refuses to write `..` through set_path, so write the raw name.
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../escaped");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    std::fs::write(s.path().join("evil.tar"), b.into_inner().unwrap()).unwrap();
    let err = do_copy(
        s.path(),
        d.path(),
        "evil.tar",
        &CopyOptions {
            unpack: true,
            ..opts("/e/")
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    assert!(!d.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn mkdir_mkfile_rm() {
    let d = tempfile::tempdir().unwrap();
    let r = RootDir::open(d.path()).unwrap();
    mkdir(
        &r,
        "/a/b/c",
        0o750,
        true,
        Some(Owner { uid: 5, gid: 6 }),
        Some((100, 0)),
    )
    .unwrap();
    let md = std::fs::metadata(d.path().join("a/b/c")).unwrap();
    assert_eq!(
        (md.mode() & 0o777, md.uid(), md.gid(), md.mtime()),
        (0o750, 5, 6, 100)
    );
    assert!(
        mkdir(&r, "/x/y", 0o755, false, None, None).is_err(),
        "no parents"
    );
    mkfile(&r, "/a/heredoc", b"body\n", 0o644, None, None).unwrap();
    assert_eq!(read(&d.path().join("a/heredoc")), "body\n");
    rm(&r, "/a", false).unwrap();
    assert!(!d.path().join("a").exists());
    assert!(matches!(rm(&r, "/a", false), Err(Error::NotFound { .. })));
    rm(&r, "/a", true).unwrap();
}

#[test]
fn delta_copy_writes_only_changes_and_whiteouts() {
    let (s, _) = sample();
    for i in 0..50 {
        write(s.path(), &format!("many/f{i}"), &format!("{i}"));
    }
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("usr/local")).unwrap();
    // First build: a full copy onto the base (here: a copy of it, as an overlay merged view would be).
    let merged = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(merged.path().join("usr/local")).unwrap();
    let o = opts("/usr/local/app/");
    let sel = Selection::dockerfile(".", false, &[]);
    let first = copy(
        &ctx(s.path()),
        &sel,
        &o,
        &RootDir::open(merged.path()).unwrap(),
    )
    .unwrap();

    // One file changes, one disappears, one appears.
    write(s.path(), "many/f7", "changed");
    std::fs::remove_file(s.path().join("many/f8")).unwrap();
    std::fs::remove_dir_all(s.path().join("dir/sub")).unwrap();
    write(s.path(), "new.txt", "new");
    let upper = tempfile::tempdir().unwrap();
    let res = delta_copy(
        &ctx(s.path()),
        &sel,
        &o,
        &RootDir::open(base.path()).unwrap(),
        &first,
        &RootDir::open(upper.path()).unwrap(),
    )
    .unwrap();

    let written: Vec<String> = walk(upper.path());
    assert!(written.contains(&"usr/local/app/many/f7".to_string()));
    assert!(written.contains(&"usr/local/app/new.txt".to_string()));
    assert!(
        !written.contains(&"usr/local/app/many/f1".to_string()),
        "unchanged files are not rewritten"
    );
    let wo = |p: &str| {
        let md = std::fs::symlink_metadata(upper.path().join(p)).unwrap();
        use std::os::unix::fs::FileTypeExt;
        md.file_type().is_char_device() && md.rdev() == 0
    };
    assert!(wo("usr/local/app/many/f8"));
    assert!(wo("usr/local/app/dir/sub"));
    assert!(
        !upper.path().join("usr/local/app/dir/sub/b.txt").exists(),
        "one whiteout for a removed tree"
    );
    assert_eq!(res.deleted, 2);
    // usr/local/app/many changed (f7, f8) — but not its unchanged siblings.
    let files_written = written
        .iter()
        .filter(|p| {
            !std::fs::symlink_metadata(upper.path().join(p))
                .unwrap()
                .is_dir()
        })
        .count();
    assert_eq!(files_written, 4, "{written:?}");
    // The new manifest is what a full copy would return.
    let full = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(full.path().join("usr/local")).unwrap();
    let again = copy(
        &ctx(s.path()),
        &sel,
        &o,
        &RootDir::open(full.path()).unwrap(),
    )
    .unwrap();
    let paths = |m: &Manifest| m.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&res.manifest), paths(&again));
    assert_eq!(
        Manifest::from_json(&res.manifest.to_json()).unwrap(),
        res.manifest
    );
}

#[test]
fn deferred_file_digests_fill_in_to_the_hashed_manifest() {
    let (s, _) = sample();
    std::fs::hard_link(s.path().join("file.txt"), s.path().join("link.txt")).unwrap();
    let sel = Selection::dockerfile(".", false, &[]);
    let hashed = copy(
        &ctx(s.path()),
        &sel,
        &opts("/app/"),
        &RootDir::open(tempfile::tempdir().unwrap().path()).unwrap(),
    )
    .unwrap();
    let deferring = CopyOptions {
        defer_file_digests: true,
        ..opts("/app/")
    };
    let tree = ctx(s.path());
    let base = tempfile::tempdir().unwrap();
    let upper = tempfile::tempdir().unwrap();
    let mut res = delta_copy(
        &tree,
        &sel,
        &deferring,
        &RootDir::open(base.path()).unwrap(),
        &Manifest::default(),
        &RootDir::open(upper.path()).unwrap(),
    )
    .unwrap();
    let unhashed = |m: &Manifest| {
        m.entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File | Kind::Hardlink) && e.source.is_none())
            .count()
    };
    // file.txt, link.txt, x.log, dir/a.txt, dir/sub/b.txt.
    assert_eq!(unhashed(&res.manifest), 5, "{:?}", res.manifest);
    assert_eq!(read(&upper.path().join("app/dir/sub/b.txt")), "bb");
    res.deferred.fill(&tree, &mut res.manifest).unwrap();
    assert_eq!(res.manifest, hashed);

    // Compared with a previous copy, digests are needed at once.
    let upper = tempfile::tempdir().unwrap();
    let again = delta_copy(
        &ctx(s.path()),
        &sel,
        &deferring,
        &RootDir::open(base.path()).unwrap(),
        &hashed,
        &RootDir::open(upper.path()).unwrap(),
    )
    .unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(again.manifest, hashed);
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn rec(root: &Path, rel: &str, out: &mut Vec<String>) {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let r = if rel.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", e.file_name().to_string_lossy())
            };
            out.push(r.clone());
            if e.file_type().unwrap().is_dir() {
                rec(root, &r, out);
            }
        }
    }
    rec(root, "", &mut out);
    out
}
