//! Client settings: which registries speak plain HTTP, timeouts, retries,
//! upload chunking, parallelism, where credentials live.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{Error, Result};

/// Environment variable: comma-separated registries (`host[:port]`) that
/// may be reached over plain `http://`.
pub const ENV_INSECURE: &str = "KILN_INSECURE_REGISTRIES";
/// Environment variable: network inactivity timeout in seconds.
pub const ENV_TIMEOUT: &str = "KILN_REGISTRY_TIMEOUT";
/// Environment variable: how many times a failed request is retried.
pub const ENV_RETRIES: &str = "KILN_REGISTRY_RETRIES";
/// Environment variable: blobs larger than this many bytes are uploaded
/// in chunks of this size (0: always in one request).
pub const ENV_CHUNK_SIZE: &str = "KILN_REGISTRY_CHUNK_SIZE";

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP, besides
    /// the loopback ones (`localhost`, `127.0.0.0/8`, `::1`), which always are.
    pub insecure_registries: Vec<String>,
    /// A connection that makes no progress (connect, read or write) for
    /// this long fails (and is retried).
    pub timeout: Duration,
    /// Retries after a connection failure, a timeout, a 5xx or a 429.
    pub retries: u32,
    /// First backoff between retries; doubled each time, at most 10 s.
    pub backoff: Duration,
    /// Blobs larger than this are uploaded in chunks of this size
    /// (`PATCH` with `Content-Range`), smaller ones in one `PUT`; 0 means
    /// always one `PUT`. Default 128 MiB.
    pub chunk_size: u64,
    /// Blobs transferred at the same time.
    pub parallel: usize,
    /// Directory holding docker's `config.json` (default `$DOCKER_CONFIG`,
    /// else `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_millis(250),
            chunk_size: 128 << 20,
            parallel: 3,
            docker_config_dir: None,
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ClientOptions {
    /// The defaults, adjusted by `KILN_INSECURE_REGISTRIES`,
    /// `KILN_REGISTRY_TIMEOUT`, `KILN_REGISTRY_RETRIES` and
    /// `KILN_REGISTRY_CHUNK_SIZE`; a malformed value is an error naming it.
    pub fn from_env() -> Result<ClientOptions> {
        let mut o = ClientOptions::default();
        if let Ok(v) = std::env::var(ENV_INSECURE) {
            o.insecure_registries.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        if let Ok(v) = std::env::var(ENV_TIMEOUT) {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{ENV_TIMEOUT}={v:?}: expected a positive number of seconds"
                    ))
                })?;
            o.timeout = Duration::from_secs_f64(secs);
        }
        if let Ok(v) = std::env::var(ENV_RETRIES) {
            o.retries = v.trim().parse().map_err(|_| {
                Error::InvalidArgument(format!("{ENV_RETRIES}={v:?}: expected a whole number"))
            })?;
        }
        if let Ok(v) = std::env::var(ENV_CHUNK_SIZE) {
            o.chunk_size = parse_size(&v).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{ENV_CHUNK_SIZE}={v:?}: expected a size in bytes (suffixes k, m, g allowed)"
                ))
            })?;
        }
        Ok(o)
    }

    /// Whether `registry` (`host[:port]` as in a reference) is reached
    /// over plain HTTP.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        let host = host_part(registry);
        if host == "localhost" || host == "::1" || host.starts_with("127.") {
            return true;
        }
        self.insecure_registries
            .iter()
            .any(|i| i == registry || i == host)
    }
}

/// `host` of `host:port`, `[::1]:5000` → `::1`.
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// `1048576`, `64k`, `16m`, `1g` (binary units).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_for_loopback_and_listed() {
        let mut o = ClientOptions::default();
        for h in ["localhost:5000", "127.0.0.1:9", "localhost", "[::1]:5000"] {
            assert!(o.is_plain_http(h), "{h}");
        }
        assert!(!o.is_plain_http("registry.example:5000"));
        o.insecure_registries = vec!["registry.example".into(), "other:5000".into()];
        assert!(o.is_plain_http("registry.example:5000"));
        assert!(o.is_plain_http("other:5000"));
        assert!(!o.is_plain_http("other:5001"));
        assert!(!o.is_plain_http("docker.io"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
