//! The command's last steps before `execve`: default signal handling, a
//! session of its own, umask 022, the working directory, the user's
//! groups and ids, capabilities bounded to docker's default set,
//! no-new-privileges, the environment, and the program looked up in the
//! sandbox's own `PATH`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};

use crate::caps;
use crate::proto::Failure;
use crate::spec::{DEFAULT_PATH, SandboxSpec, Security};
use crate::user::ExecUser;

/// Execs the command; on failure, reports why on `report` and exits 127.
pub(super) fn run(spec: &SandboxSpec, user: &ExecUser, report: OwnedFd) -> ! {
    let f = exec(spec, user);
    if let Ok(json) = serde_json::to_vec(&f) {
        let mut rest = &json[..];
        while let Ok(n) = rustix::io::write(&report, rest) {
            if n == 0 || n == rest.len() {
                break;
            }
            rest = &rest[n..];
        }
    }
    std::process::exit(127)
}

fn setup_err(stage: &str, e: impl std::fmt::Display) -> Failure {
    super::failure(stage, e)
}

/// Everything up to `execve`; returns only on failure.
fn exec(spec: &SandboxSpec, user: &ExecUser) -> Failure {
    match prepare(spec, user) {
        Ok((program, argv, env)) => {
            let errno = match nix::unistd::execve(&program, &argv, &env) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            exec_failure(&spec.args[0], &program.to_string_lossy(), errno as i32)
        }
        Err(f) => f,
    }
}

type Prepared = (CString, Vec<CString>, Vec<CString>);

fn prepare(spec: &SandboxSpec, user: &ExecUser) -> Result<Prepared, Failure> {
    crate::sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| setup_err("unblocking signals", e))?;
    let _ = nix::unistd::setsid();
    crate::sys::cloexec_from_3().map_err(|e| setup_err("closing descriptors", e))?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    std::env::set_current_dir(&spec.cwd).map_err(|e| {
        setup_err(
            "entering the working directory",
            format!("{}: {e}", spec.cwd),
        )
    })?;

    let secure = spec.security == Security::Sandbox;
    let stage = "switching to the user";
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| setup_err(stage, format!("setgroups: {e}")))?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| setup_err(stage, format!("setgid: {e}")))?;
    if secure {
        caps::restrict_bounding_set(caps::docker_default())
            .map_err(|e| setup_err("dropping capabilities", e))?;
    }
    if user.uid != 0 {
        // Without keep-caps, the kernel clears the permitted and effective
        // sets as the uid leaves 0.
        let uid = Uid::from_raw(user.uid);
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|e| setup_err(stage, format!("setuid: {e}")))?;
    } else if secure {
        caps::set_process_caps(caps::docker_default())
            .map_err(|e| setup_err("dropping capabilities", e))?;
    }
    if secure {
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| setup_err("setting no-new-privileges", e))?;
    }

    let env = environment(spec, user);
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let program = lookup(&spec.args[0], &path_var)?;
    let cstr = |s: &str| CString::new(s).map_err(|e| setup_err("preparing the command", e));
    let argv = spec
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>, _>>()?;
    Ok((cstr(&program)?, argv, envp))
}

/// The spec's environment (last definition of a name wins), plus `PATH`
/// and `HOME` when missing.
pub(crate) fn environment(spec: &SandboxSpec, user: &ExecUser) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &spec.env {
        let name = e.split('=').next().unwrap_or(e);
        out.retain(|o| o.split('=').next() != Some(name));
        out.push(e.clone());
    }
    let has = |out: &[String], k: &str| out.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&out, "PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&out, "HOME") {
        out.push(format!("HOME={}", user.home));
    }
    out
}

/// Finds `name` like `execvp` does, in the sandbox's `PATH`.
fn lookup(name: &str, path: &str) -> Result<String, Failure> {
    if name.contains('/') {
        return Ok(name.to_string());
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if let Ok(m) = std::fs::metadata(&candidate)
            && m.is_file()
            && rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
        {
            return Ok(candidate.to_string_lossy().into_owned());
        }
    }
    Err(Failure {
        stage: "starting the command".into(),
        message: format!("exec: {name:?}: executable file not found in $PATH"),
        exec: Some((name.to_string(), Some(libc::ENOENT))),
    })
}

fn exec_failure(name: &str, program: &str, errno: i32) -> Failure {
    let reason = std::io::Error::from_raw_os_error(errno);
    let reason = reason.to_string();
    let reason = reason
        .split(" (os error")
        .next()
        .unwrap_or(&reason)
        .to_lowercase();
    Failure {
        stage: "starting the command".into(),
        message: if name == program {
            format!("exec: {name:?}: {reason}")
        } else {
            format!("exec: {name:?} ({program}): {reason}")
        },
        exec: Some((name.to_string(), Some(errno))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_gets_path_and_home_and_last_wins() {
        let mut spec = SandboxSpec::new(["true"]);
        spec.env = vec!["A=1".into(), "B=2".into(), "A=3".into()];
        let user = ExecUser {
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            home: "/home/app".into(),
        };
        assert_eq!(
            environment(&spec, &user),
            vec![
                "B=2".to_string(),
                "A=3".into(),
                format!("PATH={DEFAULT_PATH}"),
                "HOME=/home/app".into()
            ]
        );
    }
}
