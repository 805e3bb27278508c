//! `kiln run` semantics: docker's rules for turning an image's config and
//! the command line into one sandboxed process.
//!
//! - argv = ENTRYPOINT + CMD. `--entrypoint X` replaces the entrypoint with
//!   `[X]` (or none, for an empty string) *and* drops the image's CMD;
//!   arguments after the image replace CMD.
//! - Environment: the image's, then each `--env-file`, then each `-e`; a
//!   later `NAME=` replaces an earlier one; a bare `NAME` takes the host's
//!   value (and is left out when the host has none). `HOSTNAME` is set.
//! - `-w` and `-u` replace WORKDIR and USER; `-v HOST:CTR[:ro|rw]` binds a
//!   host path; `--memory`, `--cpus`, `--pids-limit`, `--hostname` and
//!   `--network` map to the sandbox's limits and settings.
//! - `--rm` throws the container's writable layer away afterwards.
//!
//! The network defaults to `host` (kiln has no bridge networking).

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::outcome::Outcome;
use crate::runtime::{RunIo, Runtime};
use crate::snapshot::{Snapshot, Snapshotter};
use crate::spec::{Limits, Mount, MountKind, Network, SandboxSpec};

/// The parts of an image's config that `kiln run` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`.
    pub user: Option<String>,
}

/// `kiln run`'s options, as given on the command line (unparsed strings
/// where docker parses them, so that errors read like docker's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `--rm`.
    pub rm: bool,
    /// `-e` values, in order.
    pub env: Vec<String>,
    /// `--env-file` paths, in order.
    pub env_files: Vec<PathBuf>,
    /// `-v` values.
    pub volumes: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--memory`.
    pub memory: Option<String>,
    /// `--cpus`.
    pub cpus: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// Arguments after the image name.
    pub args: Vec<String>,
}

/// Builds the sandbox spec for `kiln run`. `host_env` looks up the
/// caller's environment (for bare `-e NAME`).
pub fn container_spec(
    image: &ImageConfig,
    opts: &RunOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<SandboxSpec> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(e) => {
            let ep = if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            };
            (ep, opts.args.clone())
        }
        None => {
            let cmd = if opts.args.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                opts.args.clone()
            };
            (image.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has no ENTRYPOINT or CMD and none was given".into(),
        ));
    }
    let mut spec = SandboxSpec::new(args);
    spec.hostname = match &opts.hostname {
        Some(h) => h.clone(),
        None => random_hostname(),
    };
    spec.hostname_file = true;

    let mut env = Vec::new();
    let mut set = |entry: String| {
        let name = entry.split('=').next().unwrap_or("").to_string();
        env.retain(|e: &String| e.split('=').next() != Some(name.as_str()));
        env.push(entry);
    };
    for e in &image.env {
        set(e.clone());
    }
    for f in &opts.env_files {
        for e in parse_env_file(f, host_env)? {
            set(e);
        }
    }
    for e in &opts.env {
        if let Some(e) = env_entry(e, host_env)? {
            set(e);
        }
    }
    set(format!("HOSTNAME={}", spec.hostname));
    spec.env = env;

    spec.cwd = match (&opts.workdir, &image.working_dir) {
        (Some(w), _) => {
            if !w.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
            w.clone()
        }
        (None, Some(w)) if !w.is_empty() => w.clone(),
        _ => "/".into(),
    };
    spec.user = opts
        .user
        .clone()
        .or_else(|| image.user.clone())
        .unwrap_or_default();
    spec.network = match &opts.network {
        Some(n) => n.parse()?,
        None => Network::Host,
    };
    spec.mounts = opts
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<_>>()?;
    spec.limits = Limits {
        memory: opts.memory.as_deref().map(parse_memory).transpose()?,
        cpus: opts.cpus.as_deref().map(parse_cpus).transpose()?,
        pids: match opts.pids_limit {
            None | Some(0) => None,
            Some(n) if n < 0 => None, // docker: -1 means unlimited
            Some(n) => Some(n as u64),
        },
    };
    spec.validate()?;
    Ok(spec)
}

/// Prepares a snapshot of `lowers` in `scratch`, runs the container there
/// and, with `--rm`, discards the snapshot. Otherwise the snapshot (the
/// container's writable layer) is returned for the caller to keep or
/// discard. The scratch directory must be in the store.
pub fn run_container(
    runtime: &Runtime,
    snapshotter: &Snapshotter,
    lowers: &[PathBuf],
    scratch: &Path,
    spec: &SandboxSpec,
    rm: bool,
    io: RunIo<'_>,
) -> Result<(Outcome, Option<Snapshot>)> {
    let mut snapshot = snapshotter.prepare(lowers, scratch)?;
    let result = runtime.run(&mut snapshot, spec, io);
    match (result, rm) {
        (Ok(o), false) => Ok((o, Some(snapshot))),
        (Ok(o), true) => {
            snapshot.discard()?;
            Ok((o, None))
        }
        (Err(e), _) => {
            let _ = snapshot.discard();
            Err(e)
        }
    }
}

/// A docker-like 12-hex-digit name for a container without `--hostname`.
fn random_hostname() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// One `-e` value: `NAME=value` as is, bare `NAME` from the host (`None`
/// when unset there).
fn env_entry(e: &str, host_env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
    match e.split_once('=') {
        Some(("", _)) => Err(Error::Invalid(format!("invalid environment variable: {e}"))),
        Some(_) => Ok(Some(e.to_string())),
        None if e.is_empty() => Err(Error::Invalid(
            "invalid environment variable: empty name".into(),
        )),
        None => Ok(host_env(e).map(|v| format!("{e}={v}"))),
    }
}

/// Reads a docker `--env-file`: `NAME=value` lines, bare `NAME` lines
/// taken from the host, `#` comments and blank lines skipped, leading
/// whitespace ignored; a name with whitespace is an error.
pub fn parse_env_file(
    path: &Path,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let text = std::fs::read(path).ctx("read env file", path)?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::Invalid(format!("env file {} is not valid UTF-8", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split('=').next().unwrap_or("");
        if name.contains(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "{}:{}: poorly formatted environment: variable '{name}' contains whitespaces",
                path.display(),
                n + 1
            )));
        }
        if let Some(e) = env_entry(line, host_env)
            .map_err(|e| Error::Invalid(format!("{}:{}: {e}", path.display(), n + 1)))?
        {
            out.push(e);
        }
    }
    Ok(out)
}

/// Parses `-v HOST:CTR[:ro|rw]` (host paths only: kiln has no named
/// volumes).
pub fn parse_volume(v: &str) -> Result<Mount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid volume specification: '{v}'"
            )));
        }
    };
    if !host.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid volume specification: '{v}': the host path must be absolute (named volumes are not supported)"
        )));
    }
    if !ctr.starts_with('/') || ctr == "/" {
        return Err(Error::Invalid(format!(
            "invalid volume specification: '{v}': the container path must be absolute and not /"
        )));
    }
    let readonly = match mode {
        "ro" => true,
        "rw" => false,
        other => {
            return Err(Error::Invalid(format!(
                "invalid volume specification: '{v}': unsupported mode '{other}' (expected ro or rw)"
            )));
        }
    };
    Ok(Mount {
        target: ctr.to_string(),
        kind: MountKind::Bind {
            source: PathBuf::from(host),
            readonly,
        },
    })
}

/// Parses a docker memory size: a number with an optional binary unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`),
/// e.g. `512m`, `1.5g`, `64MiB`, `1048576`.
pub fn parse_memory(s: &str) -> Result<u64> {
    let bad = || Error::Invalid(format!("invalid size: '{s}'"));
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok((value * mult as f64) as u64)
}

/// Parses `--cpus`: a positive decimal, at most the number of CPUs.
pub fn parse_cpus(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid value for --cpus: '{s}'")))?;
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if v.is_nan() || v <= 0.0 || v > n as f64 {
        return Err(Error::Invalid(format!(
            "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/entry".into(), "--flag".into()]),
            cmd: Some(vec!["default".into()]),
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: Some("/app".into()),
            user: Some("app".into()),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn entrypoint_and_cmd_combine_like_docker() {
        let o = RunOptions::default();
        assert_eq!(
            container_spec(&image(), &o, &no_env).unwrap().args,
            ["/entry", "--flag", "default"]
        );
        let o = RunOptions {
            args: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(
            container_spec(&image(), &o, &no_env).unwrap().args,
            ["/entry", "--flag", "x"]
        );
        // --entrypoint drops the image's CMD.
        let o = RunOptions {
            entrypoint: Some("/bin/sh".into()),
            ..Default::default()
        };
        assert_eq!(
            container_spec(&image(), &o, &no_env).unwrap().args,
            ["/bin/sh"]
        );
        let o = RunOptions {
            entrypoint: Some(String::new()),
            args: vec!["echo".into(), "hi".into()],
            ..Default::default()
        };
        assert_eq!(
            container_spec(&image(), &o, &no_env).unwrap().args,
            ["echo", "hi"]
        );
        let o = RunOptions {
            entrypoint: Some(String::new()),
            ..Default::default()
        };
        assert!(
            container_spec(&image(), &o, &no_env)
                .unwrap_err()
                .to_string()
                .contains("no command")
        );
    }

    #[test]
    fn environment_layers_in_docker_order() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("env");
        std::fs::write(&f, "# comment\n\n  A=file\nB=file\nFROMHOST\nMISSING\n").unwrap();
        let host = |k: &str| (k == "FROMHOST").then(|| "h".to_string());
        let o = RunOptions {
            env_files: vec![f],
            env: vec!["B=flag".into(), "C".into()],
            hostname: Some("box".into()),
            ..Default::default()
        };
        let spec = container_spec(&image(), &o, &host).unwrap();
        assert_eq!(
            spec.env,
            [
                "PATH=/bin",
                "A=file",
                "FROMHOST=h",
                "B=flag",
                "HOSTNAME=box"
            ]
        );
        assert_eq!(spec.cwd, "/app");
        assert_eq!(spec.user, "app");
        assert!(spec.hostname_file);
    }

    #[test]
    fn env_file_errors_name_the_line() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("env");
        std::fs::write(&f, "OK=1\nBAD NAME=2\n").unwrap();
        let err = parse_env_file(&f, &no_env).unwrap_err().to_string();
        assert!(
            err.ends_with(
                ":2: poorly formatted environment: variable 'BAD NAME' contains whitespaces"
            ),
            "{err}"
        );
    }

    #[test]
    fn volumes_parse() {
        assert_eq!(
            parse_volume("/src:/dst:ro").unwrap(),
            Mount {
                target: "/dst".into(),
                kind: MountKind::Bind {
                    source: "/src".into(),
                    readonly: true
                }
            }
        );
        assert!(
            parse_volume("named:/dst")
                .unwrap_err()
                .to_string()
                .contains("named volumes")
        );
        assert!(parse_volume("/a:/b:z").is_err());
        assert!(parse_volume("/a").is_err());
    }

    #[test]
    fn memory_sizes_parse_like_docker() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_memory("100kb").unwrap(), 100 << 10);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("12x").is_err());
    }

    #[test]
    fn cpus_and_workdir_are_checked() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert!(parse_cpus("0").is_err());
        assert!(
            parse_cpus("1000")
                .unwrap_err()
                .to_string()
                .contains("CPUs available")
        );
        let o = RunOptions {
            workdir: Some("rel".into()),
            ..Default::default()
        };
        assert!(
            container_spec(&image(), &o, &no_env)
                .unwrap_err()
                .to_string()
                .contains("absolute path")
        );
    }
}
