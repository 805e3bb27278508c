//! Resource limits through a cgroup per sandbox, on cgroup v1 and v2.
//!
//! - **v1** (one hierarchy per controller): the sandbox's cgroup is created
//!   under the caller's own cgroup in the `memory`, `cpu` and `pids`
//!   hierarchies that a limit needs, so limits placed on kiln itself
//!   still apply. Memory: `memory.limit_in_bytes`, and the same value in
//!   `memory.memsw.limit_in_bytes` when swap accounting exists (no swap
//!   beyond the limit). CPU: `cpu.cfs_quota_us` over a 100 ms
//!   `cpu.cfs_period_us`. Pids: `pids.max`. OOM kills are read from
//!   `memory.oom_control` (`oom_kill N`, Linux ≥ 4.13; `memory.failcnt`
//!   before that).
//! - **v2** (unified): v2 forbids processes in a cgroup whose controllers
//!   are delegated to children, and the caller's own cgroup always holds the
//!   caller, so sandboxes go under a `kiln` cgroup at the root of the
//!   hierarchy (like docker's cgroupfs driver), with `memory.max`,
//!   `memory.swap.max = 0`, `cpu.max` and `pids.max`; OOM kills from
//!   `memory.events`.
//!
//! A cgroup is only created when a limit is set. It is removed after the
//! run, once the sandbox's processes are gone.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::spec::Limits;

const CFS_PERIOD_US: u64 = 100_000;

/// Where cgroups live on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// cgroup v1: the caller's cgroup directory in each controller's
    /// hierarchy (when mounted).
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    /// cgroup v2: the mount point of the unified hierarchy.
    V2 { root: PathBuf },
}

impl Hierarchy {
    /// Finds the hierarchies from `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`.
    pub(crate) fn detect() -> Result<Hierarchy> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e));
        Ok(Self::from_proc(
            &read("/proc/self/mountinfo")?,
            &read("/proc/self/cgroup")?,
        ))
    }

    /// [`Hierarchy::detect`] over given file contents.
    pub(crate) fn from_proc(mountinfo: &str, cgroup: &str) -> Hierarchy {
        let mut v1: Vec<(Vec<String>, String, String)> = Vec::new(); // (controllers, root, mountpoint)
        let mut v2: Option<String> = None;
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape(pre[3]), unescape(pre[4]));
            match post[0] {
                "cgroup" => {
                    let ctrls = post[2].split(',').map(String::from).collect();
                    v1.push((ctrls, root, mountpoint));
                }
                "cgroup2" if v2.is_none() => v2 = Some(mountpoint),
                _ => {}
            }
        }
        let own = |ctrl: &str| -> Option<PathBuf> {
            let (_, root, mp) = v1.iter().find(|(c, _, _)| c.iter().any(|x| x == ctrl))?;
            let path = cgroup.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                ctrls
                    .split(',')
                    .any(|c| c == ctrl)
                    .then(|| path.to_string())
            })?;
            let rel = path.strip_prefix(root.as_str()).unwrap_or(&path);
            Some(Path::new(mp).join(rel.trim_start_matches('/')))
        };
        let (memory, cpu, pids) = (own("memory"), own("cpu"), own("pids"));
        if memory.is_some() || cpu.is_some() || pids.is_some() || v2.is_none() {
            return Hierarchy::V1 { memory, cpu, pids };
        }
        Hierarchy::V2 {
            root: PathBuf::from(v2.unwrap_or_default()),
        }
    }
}

/// Mountinfo escapes spaces and the like as `\040`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One sandbox's cgroup (a directory per v1 controller, or one on v2).
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    oom: OomSource,
}

#[derive(Debug)]
enum OomSource {
    None,
    V1(PathBuf),
    V2(PathBuf),
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name unique in this process and among concurrent kiln processes.
pub(crate) fn unique_name() -> String {
    format!(
        "kiln-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::Cgroup {
        path: path.to_path_buf(),
        message: format!("writing {value:?}: {e}"),
    })
}

fn mkdir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Cgroup {
            path: path.to_path_buf(),
            message: format!("cannot create: {e}"),
        }),
    }
}

impl Cgroup {
    /// Creates cgroup `name` with `limits` in `hierarchy`.
    pub(crate) fn create(hierarchy: &Hierarchy, name: &str, limits: &Limits) -> Result<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            oom: OomSource::None,
        };
        // On error, remove what was created so far.
        match cg.setup(hierarchy, name, limits) {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    fn setup(&mut self, hierarchy: &Hierarchy, name: &str, limits: &Limits) -> Result<()> {
        let missing = |ctrl: &str| Error::Cgroup {
            path: PathBuf::from("/sys/fs/cgroup"),
            message: format!(
                "the {ctrl} controller is not available, so the {ctrl} limit cannot be enforced"
            ),
        };
        match hierarchy {
            Hierarchy::V1 { memory, cpu, pids } => {
                if let Some(m) = limits.memory {
                    let dir = memory.as_ref().ok_or_else(|| missing("memory"))?.join(name);
                    mkdir(&dir)?;
                    self.dirs.push(dir.clone());
                    write(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &m.to_string())?;
                    }
                    self.oom = OomSource::V1(dir);
                }
                if let Some(c) = limits.cpus {
                    let dir = cpu.as_ref().ok_or_else(|| missing("cpu"))?.join(name);
                    mkdir(&dir)?;
                    self.dirs.push(dir.clone());
                    write(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota(c).to_string())?;
                }
                if let Some(p) = limits.pids {
                    let dir = pids.as_ref().ok_or_else(|| missing("pids"))?.join(name);
                    mkdir(&dir)?;
                    self.dirs.push(dir.clone());
                    write(&dir.join("pids.max"), &p.to_string())?;
                }
            }
            Hierarchy::V2 { root } => {
                let mut wanted = Vec::new();
                if limits.memory.is_some() {
                    wanted.push("memory");
                }
                if limits.cpus.is_some() {
                    wanted.push("cpu");
                }
                if limits.pids.is_some() {
                    wanted.push("pids");
                }
                let available =
                    std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                for c in &wanted {
                    if !available.split_whitespace().any(|a| a == *c) {
                        return Err(missing(c));
                    }
                }
                let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
                let parent = root.join("kiln");
                write(&root.join("cgroup.subtree_control"), enable.trim_end())?;
                mkdir(&parent)?;
                write(&parent.join("cgroup.subtree_control"), enable.trim_end())?;
                let dir = parent.join(name);
                mkdir(&dir)?;
                self.dirs.push(dir.clone());
                if let Some(m) = limits.memory {
                    write(&dir.join("memory.max"), &m.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write(&swap, "0")?;
                    }
                    self.oom = OomSource::V2(dir.clone());
                }
                if let Some(c) = limits.cpus {
                    write(
                        &dir.join("cpu.max"),
                        &format!("{} {CFS_PERIOD_US}", quota(c)),
                    )?;
                }
                if let Some(p) = limits.pids {
                    write(&dir.join("pids.max"), &p.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (and its future children) into the cgroup.
    pub(crate) fn add(&self, pid: u32) -> Result<()> {
        for d in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Did the kernel's OOM killer kill a process of this cgroup?
    pub(crate) fn oom_killed(&self) -> bool {
        let count = |file: PathBuf, key: &str| -> Option<u64> {
            let text = std::fs::read_to_string(file).ok()?;
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        };
        match &self.oom {
            OomSource::None => false,
            OomSource::V1(dir) => match count(dir.join("memory.oom_control"), "oom_kill") {
                Some(n) => n > 0,
                None => std::fs::read_to_string(dir.join("memory.failcnt"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0),
            },
            OomSource::V2(dir) => {
                count(dir.join("memory.events"), "oom_kill").is_some_and(|n| n > 0)
            }
        }
    }

    /// Removes the cgroup directories (the processes must be gone). A
    /// directory whose last process is still being torn down is retried
    /// for a moment.
    pub(crate) fn remove(&mut self) {
        for d in self.dirs.drain(..) {
            for attempt in 0..50 {
                match std::fs::remove_dir(&d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

fn quota(cpus: f64) -> u64 {
    ((cpus * CFS_PERIOD_US as f64).round() as u64).max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
25 1 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
27 25 0:25 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
28 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const CGROUP_V1: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/ci/job1\n1:cpu:/\n0::/\n";

    #[test]
    fn v1_hierarchies_are_found_under_our_own_cgroup() {
        let h = Hierarchy::from_proc(MOUNTINFO_V1, CGROUP_V1);
        assert_eq!(
            h,
            Hierarchy::V1 {
                memory: Some("/sys/fs/cgroup/memory/ci/job1".into()),
                cpu: Some("/sys/fs/cgroup/cpu".into()),
                pids: Some("/sys/fs/cgroup/pids".into()),
            }
        );
    }

    #[test]
    fn pure_v2_is_recognised() {
        let h = Hierarchy::from_proc(
            "30 1 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice/session-1.scope\n",
        );
        assert_eq!(
            h,
            Hierarchy::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn v1_limits_are_written_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let base = |c: &str| {
            let p = t.path().join(c);
            std::fs::create_dir_all(&p).unwrap();
            Some(p)
        };
        let h = Hierarchy::V1 {
            memory: base("memory"),
            cpu: base("cpu"),
            pids: base("pids"),
        };
        let limits = Limits {
            memory: Some(64 << 20),
            cpus: Some(1.5),
            pids: Some(32),
        };
        let mut cg = Cgroup::create(&h, "kiln-test", &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(read("memory/kiln-test/memory.limit_in_bytes"), "67108864");
        assert_eq!(read("cpu/kiln-test/cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu/kiln-test/cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids/kiln-test/pids.max"), "32");
        std::fs::write(
            t.path().join("memory/kiln-test/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert!(cg.oom_killed());
        // A fake cgroupfs directory is not empty, so only check that
        // removal is attempted without panicking.
        cg.remove();
    }

    #[test]
    fn v2_limits_go_under_a_kiln_cgroup_with_controllers_enabled() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let h = Hierarchy::V2 {
            root: t.path().to_path_buf(),
        };
        let limits = Limits {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            pids: None,
        };
        let cg = Cgroup::create(&h, "s1", &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+memory +cpu");
        assert_eq!(read("kiln/cgroup.subtree_control"), "+memory +cpu");
        assert_eq!(read("kiln/s1/memory.max"), "67108864");
        assert_eq!(read("kiln/s1/cpu.max"), "50000 100000");
        std::fs::write(
            t.path().join("kiln/s1/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(cg.oom_killed());
        std::mem::forget(cg);
    }

    #[test]
    fn v2_without_the_controller_says_so() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu\n").unwrap();
        let h = Hierarchy::V2 {
            root: t.path().to_path_buf(),
        };
        let err = Cgroup::create(
            &h,
            "s1",
            &Limits {
                pids: Some(5),
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("pids controller is not available"),
            "{err}"
        );
    }
}
