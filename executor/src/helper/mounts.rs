//! The sandbox's filesystem view, built by PID 1.
//!
//! 1. [`prepare`], still in the host's view: every host path to be mounted
//!    (bind sources, cache directories) is opened as a detached copy of its
//!    mount tree (`open_tree(OPEN_TREE_CLONE)`); secret contents are read.
//!    Generated files (hosts, resolv.conf, hostname) and secrets are served
//!    from one small private tmpfs, so they never touch a disk.
//! 2. [`enter_rootfs`]: the root filesystem is attached on the scratch
//!    mount point (inside the private mount namespace) and becomes `/` with
//!    `pivot_root(".", ".")`; the old root is detached. From here on no host
//!    path is reachable.
//! 3. [`setup`]: /proc, a minimal /dev, /sys, masked and read-only /proc
//!    paths, then the prepared mounts. Mount targets are resolved *inside*
//!    the new root — symlinks and `..` in the image cannot point a mount
//!    outside it — and missing targets are created as stubs that the caller
//!    removes after the run, so they never reach the layer.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, OpenTreeFlags,
    UnmountFlags,
};

use super::failure;
use crate::proto::{Failure, Request, Stub};
use crate::spec::{MountKind, SandboxSpec, Security};

/// Docker's masked paths: hidden behind /dev/null or an empty read-only
/// tmpfs.
const MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only /proc paths.
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device nodes of the minimal /dev: (name, major, minor).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A mount to make once inside the new root.
pub(super) struct Item {
    target: String,
    dir: bool,
    action: Action,
}

enum Action {
    /// A detached copy of a host mount tree.
    Tree {
        fd: OwnedFd,
        readonly: bool,
    },
    Tmpfs {
        size: Option<u64>,
    },
    /// A file from the private tmpfs (generated files, secrets).
    File {
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

fn clone_tree(path: &Path) -> Result<OwnedFd, Failure> {
    rustix::mount::open_tree(
        CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| failure("opening mount sources", format!("{}: {e}", path.display())))
}

/// Opens every host-side mount source (see the module doc).
pub(super) fn prepare(request: &Request) -> Result<Vec<Item>, Failure> {
    let mut items = Vec::new();
    for (target, content) in &request.files {
        items.push(Item {
            target: target.clone(),
            dir: false,
            action: Action::File {
                content: content.clone().into_bytes(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        });
    }
    let mut user: Vec<&crate::spec::Mount> = request.spec.mounts.iter().collect();
    // Parents before children.
    user.sort_by_key(|m| Path::new(&m.target).components().count());
    for m in user {
        let action = match &m.kind {
            MountKind::Bind { source, readonly } => Action::Tree {
                fd: clone_tree(source)?,
                readonly: *readonly,
            },
            MountKind::Cache { source } => Action::Tree {
                fd: clone_tree(source)?,
                readonly: false,
            },
            MountKind::Tmpfs { size } => Action::Tmpfs { size: *size },
            MountKind::Secret {
                source,
                mode,
                uid,
                gid,
            } => Action::File {
                content: std::fs::read(source).map_err(|e| {
                    failure("reading a secret", format!("{}: {e}", source.display()))
                })?,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            },
        };
        items.push(Item {
            target: m.target.clone(),
            dir: m.wants_dir(),
            action,
        });
    }
    Ok(items)
}

/// Attaches the root filesystem and makes it `/`.
pub(super) fn enter_rootfs(request: &Request, rootfs: Option<OwnedFd>) -> Result<(), Failure> {
    let mp = &request.mount_point;
    let stage = "mounting the root filesystem";
    // See `setup`: no device nodes from the image can be opened.
    let nodev = if request.spec.security == Security::Sandbox {
        MountFlags::NODEV
    } else {
        MountFlags::empty()
    };
    match (&request.legacy, rootfs) {
        (Some(legacy), _) => {
            rustix::process::chdir(&legacy.cwd)
                .map_err(|e| failure(stage, format!("chdir {}: {e}", legacy.cwd.display())))?;
            let data =
                std::ffi::CString::new(legacy.data.clone()).map_err(|e| failure(stage, e))?;
            rustix::mount::mount("overlay", mp, "overlay", nodev, data.as_c_str())
                .map_err(|e| failure(stage, format!("mount overlay on {}: {e}", mp.display())))?;
        }
        (None, Some(fd)) => {
            rustix::mount::move_mount(&fd, "", CWD, mp, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                .map_err(|e| failure(stage, format!("attach on {}: {e}", mp.display())))?;
            if !nodev.is_empty() {
                rustix::mount::mount_remount(mp, MountFlags::BIND | nodev, "")
                    .map_err(|e| failure(stage, format!("remount {} nodev: {e}", mp.display())))?;
            }
        }
        (None, None) => return Err(failure(stage, "no root filesystem was passed")),
    }
    let stage = "entering the root filesystem";
    rustix::process::chdir(mp).map_err(|e| failure(stage, e))?;
    // The new root stacks the old one on top of itself; detaching the top
    // leaves the new root alone, without a directory for the old one
    // (which would end up in the layer).
    rustix::process::pivot_root(".", ".")
        .map_err(|e| failure(stage, format!("pivot_root: {e}")))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(|e| failure(stage, format!("detaching the old root: {e}")))?;
    rustix::process::chdir("/").map_err(|e| failure(stage, e))?;
    Ok(())
}

/// Mounts everything inside the new root; returns the stubs created.
pub(super) fn setup(spec: &SandboxSpec, items: Vec<Item>) -> Result<Vec<Stub>, Failure> {
    let mut stubs = Stubs::new()?;
    let secure = spec.security == Security::Sandbox;

    let proc_dir = stubs.ensure("/proc", true)?;
    mount_fs(
        "proc",
        &proc_dir,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )?;

    // Every writable filesystem of a sandbox is `nodev`, so a root step
    // that mknods a block device (CAP_MKNOD is in docker's default set)
    // cannot open it: docker relies on the devices cgroup for that, which
    // cgroup v2 only offers through BPF. The few real device nodes are
    // bind mounts of their own, without `nodev`.
    let nodev = if secure {
        MountFlags::NODEV
    } else {
        MountFlags::empty()
    };
    let dev = stubs.ensure("/dev", true)?;
    mount_fs(
        "tmpfs",
        &dev,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::STRICTATIME | nodev,
        Some("mode=755,size=65536k"),
    )?;
    populate_dev(&dev, secure)?;

    let sys = stubs.ensure("/sys", true)?;
    let mut sys_flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if secure {
        sys_flags |= MountFlags::RDONLY;
    }
    mount_fs("sysfs", &sys, "sysfs", sys_flags, None)?;

    if secure {
        for p in MASKED {
            mask(Path::new(p))?;
        }
        for p in READONLY {
            let p = Path::new(p);
            if p.exists() {
                rustix::mount::mount_bind_recursive(p, p).map_err(|e| mount_err(p, e))?;
                remount_readonly(
                    p,
                    MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                )?;
            }
        }
    }

    let mut files = FileStore {
        mnt: None,
        count: 0,
    };
    for item in items {
        let target = stubs.ensure(&item.target, item.dir)?;
        match item.action {
            Action::Tree { fd, readonly } => {
                rustix::mount::move_mount(
                    &fd,
                    "",
                    CWD,
                    &target,
                    MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                )
                .map_err(|e| {
                    type_mismatch(&target, item.dir).unwrap_or_else(|| mount_err(&target, e))
                })?;
                let mut flags = nodev;
                if readonly {
                    flags |= MountFlags::RDONLY;
                }
                if !flags.is_empty() {
                    rustix::mount::mount_remount(&target, MountFlags::BIND | flags, "").map_err(
                        |e| failure("mounting", format!("remount {}: {e}", target.display())),
                    )?;
                }
            }
            Action::Tmpfs { size } => {
                let mut opts = "mode=1777".to_string();
                if let Some(s) = size {
                    opts.push_str(&format!(",size={s}"));
                }
                mount_fs(
                    "tmpfs",
                    &target,
                    "tmpfs",
                    MountFlags::NOSUID | MountFlags::NODEV,
                    Some(&opts),
                )?;
            }
            Action::File {
                content,
                mode,
                uid,
                gid,
            } => files.mount_file(&target, &content, mode, uid, gid)?,
        }
    }
    Ok(stubs.done)
}

/// A clearer error when a file is mounted on a directory or the reverse.
fn type_mismatch(target: &Path, source_is_dir: bool) -> Option<Failure> {
    let target_is_dir = std::fs::metadata(target).ok()?.is_dir();
    (target_is_dir != source_is_dir).then(|| {
        let (s, t) = if source_is_dir {
            ("a directory", "a file")
        } else {
            ("a file", "a directory")
        };
        failure(
            "mounting",
            format!(
                "cannot mount {s} on {}: it is {t} in the image",
                target.display()
            ),
        )
    })
}

fn mount_err(target: &Path, e: rustix::io::Errno) -> Failure {
    failure("mounting", format!("{}: {e}", target.display()))
}

fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: Option<&str>,
) -> Result<(), Failure> {
    let data = data.map(|d| std::ffi::CString::new(d).expect("static options have no NUL"));
    rustix::mount::mount(source, target, fstype, flags, data.as_deref())
        .map_err(|e| failure("mounting", format!("{fstype} on {}: {e}", target.display())))
}

fn remount_readonly(target: &Path, extra: MountFlags) -> Result<(), Failure> {
    rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY | extra, "").map_err(
        |e| {
            failure(
                "mounting",
                format!("remount {} read-only: {e}", target.display()),
            )
        },
    )
}

/// The minimal /dev: the usual character devices, the standard symlinks,
/// a private devpts instance and a /dev/shm tmpfs.
fn populate_dev(dev: &Path, nodev: bool) -> Result<(), Failure> {
    let err = |what: &str, e: std::io::Error| failure("populating /dev", format!("{what}: {e}"));
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        rustix::fs::mknodat(
            CWD,
            &p,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(major, minor),
        )
        .map_err(|e| err(name, e.into()))?;
        if nodev {
            // A bind mount of the node onto itself, minus `nodev`.
            rustix::mount::mount_bind(&p, &p).map_err(|e| err(name, e.into()))?;
            rustix::mount::mount_remount(&p, MountFlags::BIND | MountFlags::NOSUID, "")
                .map_err(|e| err(name, e.into()))?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name)).map_err(|e| err(name, e))?;
    }
    for d in ["pts", "shm"] {
        std::fs::create_dir(dev.join(d)).map_err(|e| err(d, e))?;
        rustix::fs::chmod(dev.join(d), Mode::from_raw_mode(0o755)).map_err(|e| err(d, e.into()))?;
    }
    mount_fs(
        "devpts",
        &dev.join("pts"),
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mount_fs(
        "shm",
        &dev.join("shm"),
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some("mode=1777,size=65536k"),
    )
}

fn mask(p: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => mount_fs(
            "tmpfs",
            p,
            "tmpfs",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            None,
        ),
        Ok(_) => rustix::mount::mount_bind("/dev/null", p).map_err(|e| mount_err(p, e)),
    }
}

/// A small tmpfs of the sandbox's own (never on disk, never in the
/// image), created on first use, from which generated files and secrets
/// are bind-mounted read-only, each with its own owner and mode.
struct FileStore {
    mnt: Option<OwnedFd>,
    count: usize,
}

impl FileStore {
    fn mount_file(
        &mut self,
        target: &Path,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Failure> {
        let stage =
            |e: rustix::io::Errno| failure("mounting a file", format!("{}: {e}", target.display()));
        if self.mnt.is_none() {
            let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(stage)?;
            rustix::mount::fsconfig_set_string(&fs, "mode", "0700").map_err(stage)?;
            rustix::mount::fsconfig_create(&fs).map_err(stage)?;
            let mnt = rustix::mount::fsmount(
                &fs,
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::MOUNT_ATTR_NOSUID
                    | MountAttrFlags::MOUNT_ATTR_NODEV
                    | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            )
            .map_err(stage)?;
            self.mnt = Some(mnt);
        }
        let mnt = self.mnt.as_ref().expect("created above");
        let name = format!("f{}", self.count);
        self.count += 1;
        let file = rustix::fs::openat(
            mnt,
            name.as_str(),
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o7777),
        )
        .map_err(stage)?;
        let mut rest = content;
        while !rest.is_empty() {
            let n = rustix::io::write(&file, rest).map_err(stage)?;
            rest = &rest[n..];
        }
        rustix::fs::fchown(
            &file,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(stage)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & 0o7777)).map_err(stage)?;
        drop(file);
        let tree = rustix::mount::open_tree(
            mnt,
            name.as_str(),
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(stage)?;
        rustix::mount::move_mount(
            &tree,
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| type_mismatch(target, false).unwrap_or_else(|| stage(e)))?;
        remount_readonly(
            target,
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        )
    }
}

/// Creates mount targets and remembers which ones did not exist.
struct Stubs {
    /// The root filesystem's device: only stubs on it can reach the layer.
    root_dev: u64,
    done: Vec<Stub>,
}

/// Most symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

impl Stubs {
    fn new() -> Result<Self, Failure> {
        let m = std::fs::metadata("/").map_err(|e| failure("mounting", format!("stat /: {e}")))?;
        Ok(Stubs {
            root_dev: m.dev(),
            done: Vec::new(),
        })
    }

    /// Resolves `target` inside the root (we are already pivoted, so
    /// nothing can point outside it; this only finds the real path so the
    /// stubs are recorded correctly) and creates what is missing: parent
    /// directories, then a directory or an empty file.
    fn ensure(&mut self, target: &str, dir: bool) -> Result<PathBuf, Failure> {
        let (mut path, missing) = resolve(target)?;
        let n = missing.len();
        for (i, name) in missing.into_iter().enumerate() {
            let parent = path.clone();
            path.push(&name);
            let parent_meta = std::fs::metadata(&parent).ok();
            let want_dir = dir || i + 1 < n;
            let created = if want_dir {
                std::fs::create_dir(&path).and_then(|()| {
                    rustix::fs::chmod(&path, Mode::from_raw_mode(0o755)).map_err(Into::into)
                })
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map(drop)
            };
            created.map_err(|e| {
                failure("creating a mount point", format!("{}: {e}", path.display()))
            })?;
            if let Some(pm) = parent_meta.filter(|m| m.dev() == self.root_dev) {
                let after = std::fs::metadata(&parent)
                    .map(|m| (m.mtime(), m.mtime_nsec()))
                    .unwrap_or((pm.mtime(), pm.mtime_nsec()));
                self.done.push(Stub {
                    path: path
                        .strip_prefix("/")
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .into_owned(),
                    dir: want_dir,
                    parent_mtime: ((pm.mtime(), pm.mtime_nsec()), after),
                });
            }
        }
        Ok(path)
    }
}

/// Resolves `path` from `/`, following symlinks (at most
/// [`MAX_SYMLINKS`]) as the kernel would inside this root. Returns the
/// deepest existing directory reached and the names still missing under it.
fn resolve(path: &str) -> Result<(PathBuf, Vec<OsString>), Failure> {
    let mut queue: VecDeque<OsString> = components(Path::new(path));
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(failure(
                        "creating a mount point",
                        format!("{path}: too many levels of symbolic links"),
                    ));
                }
                let link = std::fs::read_link(&next).map_err(|e| {
                    failure("creating a mount point", format!("{}: {e}", next.display()))
                })?;
                if link.is_absolute() {
                    cur = PathBuf::from("/");
                }
                for c in components(&link).into_iter().rev() {
                    queue.push_front(c);
                }
            }
            Ok(_) => cur = next,
            Err(_) => {
                // The rest does not exist: normalise it lexically.
                let mut missing: Vec<OsString> = Vec::new();
                for n in std::iter::once(name).chain(queue) {
                    if n == ".." {
                        if missing.pop().is_none() {
                            cur.pop();
                        }
                    } else {
                        missing.push(n);
                    }
                }
                return Ok((cur, missing));
            }
        }
    }
    Ok((cur, Vec::new()))
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsStr::from_bytes(b"..").to_os_string()),
            _ => None,
        })
        .collect()
}
