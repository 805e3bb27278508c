//! Driving the real `kiln` binary from integration tests.
//!
//! A [`Kiln`] is a private temporary directory holding a state directory
//! (`--root`) and a docker config directory; every command it runs uses
//! them and none of the caller's settings that would change what kiln
//! does (its state directory, registry retries and timeouts, proxies,
//! `SOURCE_DATE_EPOCH`, …). The binary's path comes from the test, as
//! `env!("CARGO_BIN_EXE_kiln")` only exists there. The free functions
//! run any other program and insist on how it ends.

mod run;
mod state;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use run::{require, run_fails, run_ok, run_ok_with_stdin, run_stdout, run_with_stdin};

/// Variables of the caller's environment that change what kiln does;
/// every run removes them, so tests see kiln's defaults unless they set
/// one themselves.
const HOST_VARS: &[&str] = &[
    "KILN_ROOT",
    "BUILDKIT_PROGRESS",
    "SOURCE_DATE_EPOCH",
    "KILN_INSECURE_REGISTRIES",
    "KILN_REGISTRY_TIMEOUT",
    "KILN_REGISTRY_RETRIES",
    "KILN_REGISTRY_CHUNK_SIZE",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
];

/// The `kiln` binary run on a private state directory.
pub struct Kiln {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The state directory (`--root`); kiln creates it on first use.
    pub root: PathBuf,
    /// The `DOCKER_CONFIG` directory every run uses (where `kiln login`
    /// saves credentials).
    pub docker_config: PathBuf,
    cwd: Option<PathBuf>,
    vars: Vec<(String, String)>,
}

impl Kiln {
    /// A fresh temporary directory (removed on drop) with an empty state
    /// directory `root/` and docker config `docker-config/` inside, for
    /// the `kiln` binary at `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Kiln {
        let dir = tempfile::Builder::new()
            .prefix("kiln-test-")
            .tempdir_in(test_tmp())
            .expect("tempdir");
        Kiln {
            bin: bin.into(),
            root: dir.path().join("root"),
            docker_config: dir.path().join("docker-config"),
            dir,
            cwd: None,
            vars: Vec::new(),
        }
    }

    /// Sets `key=value` for every run.
    pub fn var(mut self, key: &str, value: &str) -> Kiln {
        self.vars.push((key.into(), value.into()));
        self
    }

    /// Runs every command in `dir`.
    pub fn in_dir(mut self, dir: &Path) -> Kiln {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Another state directory, `name` inside this one's temporary
    /// directory, with the same docker config, variables and working
    /// directory; its own [`Kiln::path`]s are in a new temporary
    /// directory. It must not outlive `self`.
    pub fn sibling(&self, name: &str) -> Kiln {
        let mut k = Kiln::new(&self.bin);
        k.root = self.dir.path().join(name);
        k.docker_config = self.docker_config.clone();
        k.cwd = self.cwd.clone();
        k.vars = self.vars.clone();
        k
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kiln --root ROOT ARGS…`, not yet run; stdin is empty unless the
    /// caller sets it.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        for var in HOST_VARS {
            c.env_remove(var);
        }
        c.env("DOCKER_CONFIG", &self.docker_config);
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs and returns the output, whatever happened.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run kiln")
    }

    /// Runs and expects success; returns stdout, which must be UTF-8.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.expect(args, true);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and expects success; returns stdout and stderr (decoded
    /// lossily: stdout may be a tar).
    #[track_caller]
    pub fn ok_with_stderr(&self, args: &[&str]) -> (String, String) {
        let out = self.expect(args, true);
        (lossy(&out.stdout), lossy(&out.stderr))
    }

    /// Runs and expects failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        lossy(&self.expect(args, false).stderr)
    }

    /// Runs and expects failure; returns the exit code (-1 when killed
    /// by a signal) and stderr.
    #[track_caller]
    pub fn fails_with_code(&self, args: &[&str]) -> (i32, String) {
        let out = self.expect(args, false);
        (out.status.code().unwrap_or(-1), lossy(&out.stderr))
    }

    #[track_caller]
    fn expect(&self, args: &[&str], success: bool) -> Output {
        let out = self.output(args);
        run::expect(&format!("kiln {args:?}"), &out, success);
        out
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Where test directories go: `$KILN_TEST_TMP` when set (a real disk with
/// overlayfs support), else the system temp dir.
fn test_tmp() -> PathBuf {
    let base = std::env::var_os("KILN_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    base
}
