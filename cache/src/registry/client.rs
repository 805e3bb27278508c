//! The HTTP side of the client: one connection pool (`ureq`, blocking,
//! rustls), the scheme of each registry, authentication following
//! `WWW-Authenticate` (Basic, or Bearer tokens from the challenge's realm
//! for the scopes a request needs), and retries with exponential backoff
//! on connection failures, timeouts, 5xx and 429.
//!
//! Request bodies are bytes or ranges of files, read with `pread`, so
//! that a request can be sent again after a retry or an auth challenge
//! without buffering anything.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ureq::http::{self, Response};
use ureq::{Body, SendBody};

use super::challenge::{self, Challenge};
use super::credentials::{Credential, Credentials};
use super::error::{Error, Result};
use super::options::ClientOptions;
use super::progress::{Event, NoProgress, Progress};
use crate::reference::DEFAULT_REGISTRY;

/// The host Docker Hub's API lives on.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Largest error, token or small JSON body read into memory.
const SMALL_BODY: u64 = 1 << 20;

/// A registry client: a connection pool, credentials, cached auth.
/// Cheap to share between threads (`&Client` is `Send + Sync`).
pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
    creds: Credentials,
    progress: Arc<dyn Progress>,
    auth: Mutex<HashMap<String, HostAuth>>,
    /// Credentials given explicitly (login), used instead of the stored ones.
    explicit: Mutex<HashMap<String, Credential>>,
}

/// What we learnt about authenticating to one registry.
#[derive(Default, Clone)]
struct HostAuth {
    /// The registry asked for Basic auth: send it with every request.
    basic: Option<String>,
    /// The registry's Bearer challenge (realm, service).
    bearer: Option<Challenge>,
    /// Tokens by scope string.
    tokens: HashMap<String, String>,
}

/// A request body that can be sent more than once.
#[derive(Clone, Copy)]
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`; `on_progress(bytes sent)`.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
        on_progress: &'a (dyn Fn(u64) + Sync),
    },
}

/// One request to a registry.
pub(crate) struct Req<'a> {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: ReqBody<'a>,
    /// The registry as in references (`localhost:5000`, `docker.io`).
    pub(crate) registry: &'a str,
    /// Token scopes the request needs (`repository:app:pull`).
    pub(crate) scopes: &'a [String],
    /// For messages: "pull localhost:5000/app".
    pub(crate) what: &'a str,
}

impl<'a> Req<'a> {
    pub(crate) fn new(
        method: &'static str,
        url: String,
        registry: &'a str,
        scopes: &'a [String],
        what: &'a str,
    ) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::Empty,
            registry,
            scopes,
            what,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: ReqBody<'a>) -> Self {
        self.body = body;
        self
    }
}

/// Reads `len` bytes of a file from `offset` with `pread`.
struct FileRange<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    sent: u64,
    on_progress: &'a (dyn Fn(u64) + Sync),
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        self.pos += n as u64;
        self.sent += n as u64;
        (self.on_progress)(self.sent);
        Ok(n)
    }
}

/// Whether an error from `ureq` is worth retrying.
fn retryable(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => io_retryable(io),
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether an I/O error while talking to a registry is worth retrying.
pub(crate) fn io_retryable(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
        return retryable(inner);
    }
    matches!(
        e.kind(),
        ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
            | TimedOut
            | WouldBlock
            | Interrupted
            | NotConnected
    )
}

fn status_retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

impl Client {
    /// A client with these options and docker's credentials.
    pub fn new(opts: ClientOptions) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.timeout))
            .timeout_per_read(Some(opts.timeout))
            .timeout_per_write(Some(opts.timeout))
            .user_agent(opts.user_agent.as_str())
            // Registries answer with manifests and blobs, never compressed
            // transfer encodings we would have to undo.
            .accept_encoding("identity")
            .max_idle_connections_per_host(opts.parallel.max(1) + 2)
            .build();
        Client {
            agent: config.new_agent(),
            creds: Credentials::new(opts.docker_config_dir.clone()),
            opts,
            progress: Arc::new(NoProgress),
            auth: Mutex::new(HashMap::new()),
            explicit: Mutex::new(HashMap::new()),
        }
    }

    /// Reports transfers and retries to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Client {
        self.progress = progress;
        self
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Where credentials are read and written.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    pub(crate) fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    pub(crate) fn progress_arc(&self) -> Arc<dyn Progress> {
        self.progress.clone()
    }

    /// `http://host` or `https://host` for a registry as written in
    /// references (Docker Hub's API host for `docker.io`).
    pub fn base_url(&self, registry: &str) -> String {
        let host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            registry
        };
        let scheme = if self.opts.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    /// The credential to use for `registry`: an explicit one, else docker's.
    fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = self.explicit.lock().expect("lock").get(registry) {
            return Ok(Some(c.clone()));
        }
        self.creds.get(registry)
    }

    /// Checks `cred` against `registry` (as `docker login` does: `GET
    /// /v2/`, answering its challenge) and, if it works, uses it for the
    /// rest of this client's life.
    pub fn login(&self, registry: &str, cred: &Credential) -> Result<()> {
        self.explicit
            .lock()
            .expect("lock")
            .insert(registry.to_string(), cred.clone());
        self.auth.lock().expect("lock").remove(registry);
        let url = format!("{}/v2/", self.base_url(registry));
        let what = format!("login to {registry}");
        let resp = self.send(Req::new("GET", url.clone(), registry, &[], &what))?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        Err(self.status_error("GET", &url, resp))
    }

    /// Sends `req`: authenticates when challenged, retries transient
    /// failures. Returns any response that is not a 401 (callers check
    /// the status); a 401 after authenticating is [`Error::Unauthorized`].
    pub(crate) fn send(&self, req: Req<'_>) -> Result<Response<Body>> {
        let mut challenged = false;
        let mut attempt = 0u32;
        loop {
            let auth = self.cached_auth(req.registry, req.scopes);
            match self.send_once(&req, auth.as_deref()) {
                Err(e) if retryable(&e) && attempt < self.opts.retries => {
                    attempt += 1;
                    self.backoff(&req, &self.describe(&e), attempt, None);
                }
                Err(e) => return Err(self.transport_error(&req, e, attempt)),
                Ok(resp) if resp.status().as_u16() == 401 && !challenged => {
                    challenged = true;
                    let header = resp
                        .headers()
                        .get_all(http::header::WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let message = error_message(resp);
                    self.authenticate(&req, &header, &message)?;
                }
                Ok(resp) if resp.status().as_u16() == 401 => {
                    let message = error_message(resp);
                    return Err(self.unauthorized(&req, &message, auth.is_some()));
                }
                Ok(resp)
                    if status_retryable(resp.status().as_u16()) && attempt < self.opts.retries =>
                {
                    attempt += 1;
                    let status = resp.status().as_u16();
                    let after = resp
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)));
                    let msg = format!("HTTP {status}: {}", error_message(resp));
                    self.backoff(&req, &msg, attempt, after);
                }
                Ok(resp) if status_retryable(resp.status().as_u16()) && attempt > 0 => {
                    let status = resp.status().as_u16();
                    return Err(Error::Status {
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        status,
                        message: format!(
                            "{} (after {} attempts)",
                            error_message(resp),
                            attempt + 1
                        ),
                    });
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    fn backoff(&self, req: &Req<'_>, error: &str, attempt: u32, at_least: Option<Duration>) {
        let what = format!("{} {}", req.method, req.url);
        self.progress.event(Event::Retry {
            what: &what,
            error,
            attempt,
        });
        tracing::debug!("retrying {what} after attempt {attempt}: {error}");
        std::thread::sleep(self.delay(attempt).max(at_least.unwrap_or_default()));
    }

    /// The wait before retry number `attempt` (1-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let d = self.opts.backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        d.min(Duration::from_secs(10))
    }

    fn send_once(&self, req: &Req<'_>, auth: Option<&str>) -> Result<Response<Body>, ureq::Error> {
        let mut b = http::Request::builder()
            .method(req.method)
            .uri(req.url.as_str());
        for (k, v) in &req.headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            b = b.header(http::header::AUTHORIZATION, a);
        }
        match req.body {
            ReqBody::Empty => {
                if matches!(req.method, "PUT" | "POST" | "PATCH") {
                    b = b.header(http::header::CONTENT_LENGTH, "0");
                }
                self.agent.run(b.body(())?)
            }
            ReqBody::Bytes(bytes) => self.agent.run(b.body(bytes)?),
            ReqBody::File {
                file,
                offset,
                len,
                on_progress,
            } => {
                let mut r = FileRange {
                    file,
                    pos: offset,
                    end: offset + len,
                    sent: 0,
                    on_progress,
                };
                b = b.header(http::header::CONTENT_LENGTH, len.to_string());
                self.agent.run(b.body(SendBody::from_reader(&mut r))?)
            }
        }
    }

    /// The Authorization header we already have for this registry/scope.
    fn cached_auth(&self, registry: &str, scopes: &[String]) -> Option<String> {
        let auth = self.auth.lock().expect("lock");
        let host = auth.get(registry)?;
        if let Some(b) = &host.basic {
            return Some(b.clone());
        }
        host.tokens
            .get(&scopes.join(" "))
            .map(|t| format!("Bearer {t}"))
    }

    /// Answers a challenge: remembers Basic credentials or fetches a token.
    fn authenticate(&self, req: &Req<'_>, header: &str, message: &str) -> Result<()> {
        let challenges = challenge::parse(header);
        let cred = self.credential(req.registry)?;
        if let Some(ch) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.fetch_token(req, ch, cred.as_ref())?;
            let mut auth = self.auth.lock().expect("lock");
            let host = auth.entry(req.registry.to_string()).or_default();
            host.bearer = Some(ch.clone());
            host.tokens.insert(req.scopes.join(" "), token);
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(cred) = cred else {
                return Err(self.unauthorized(req, message, false));
            };
            let Credential::Basic { username, password } = cred else {
                return Err(self.unauthorized(
                    req,
                    "the registry wants a user name and password, and only an identity token is stored",
                    true,
                ));
            };
            let value = format!("Basic {}", B64.encode(format!("{username}:{password}")));
            let mut auth = self.auth.lock().expect("lock");
            auth.entry(req.registry.to_string()).or_default().basic = Some(value);
            return Ok(());
        }
        Err(Error::Unauthorized {
            registry: req.registry.to_string(),
            what: req.what.to_string(),
            message: format!(
                "{message} (the registry sent no usable WWW-Authenticate challenge: {header:?})"
            ),
        })
    }

    /// Gets a Bearer token from the challenge's realm for `req`'s scopes.
    fn fetch_token(
        &self,
        req: &Req<'_>,
        ch: &Challenge,
        cred: Option<&Credential>,
    ) -> Result<String> {
        let realm = ch.param("realm").ok_or_else(|| Error::Unauthorized {
            registry: req.registry.to_string(),
            what: req.what.to_string(),
            message: "the Bearer challenge names no realm".into(),
        })?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = ch.param("service") {
            query.push(("service", s.to_string()));
        }
        let mut scopes: Vec<String> = req.scopes.to_vec();
        if let Some(s) = ch.param("scope")
            && !scopes.iter().any(|x| x == s)
        {
            scopes.push(s.to_string());
        }
        let token_what = format!("token from {realm}");
        let (method, body, headers) = match cred {
            Some(Credential::IdentityToken(t)) => {
                // OAuth2 refresh-token grant, as docker does.
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", t.clone()),
                    ("client_id", "kiln".to_string()),
                ];
                form.extend(query.iter().cloned());
                form.extend(scopes.iter().map(|s| ("scope", s.clone())));
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                let h = vec![(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )];
                ("POST", Some(body), h)
            }
            Some(Credential::Basic { username, password }) => {
                query.push(("account", username.clone()));
                let h = vec![(
                    "authorization",
                    format!("Basic {}", B64.encode(format!("{username}:{password}"))),
                )];
                ("GET", None, h)
            }
            None => ("GET", None, Vec::new()),
        };
        let mut url = realm.to_string();
        if method == "GET" {
            query.extend(scopes.iter().map(|s| ("scope", s.clone())));
            for (i, (k, v)) in query.iter().enumerate() {
                url.push(if i == 0 && !realm.contains('?') {
                    '?'
                } else {
                    '&'
                });
                url.push_str(&format!("{k}={}", urlencode(v)));
            }
        }
        let mut treq = Req::new(method, url.clone(), req.registry, &[], &token_what);
        treq.headers = headers;
        if let Some(b) = &body {
            treq.body = ReqBody::Bytes(b.as_bytes());
        }
        let resp = self.send_unauthenticated(&treq)?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let message = error_message(resp);
            return Err(Error::Unauthorized {
                registry: req.registry.to_string(),
                what: req.what.to_string(),
                message: match cred {
                    Some(c) => format!(
                        "the token server {realm} refused {} ({})",
                        c.describe(),
                        tidy_401(&message)
                    ),
                    None => format!(
                        "the token server {realm} refused anonymous access ({}); \
                         run `kiln login {}`",
                        tidy_401(&message),
                        req.registry
                    ),
                },
            });
        }
        if status != 200 {
            return Err(self.status_error(method, &url, resp));
        }
        let v: serde_json::Value = read_json(resp, &token_what)?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::invalid(token_what, "the response has no token"))
    }

    /// Sends with retries but without answering challenges (token requests).
    fn send_unauthenticated(&self, req: &Req<'_>) -> Result<Response<Body>> {
        let mut attempt = 0;
        loop {
            match self.send_once(req, None) {
                Err(e) if retryable(&e) && attempt < self.opts.retries => {
                    attempt += 1;
                    self.backoff(req, &self.describe(&e), attempt, None);
                }
                Err(e) => return Err(self.transport_error(req, e, attempt)),
                Ok(resp)
                    if status_retryable(resp.status().as_u16()) && attempt < self.opts.retries =>
                {
                    attempt += 1;
                    let msg = format!("HTTP {}", resp.status().as_u16());
                    self.backoff(req, &msg, attempt, None);
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    fn unauthorized(&self, req: &Req<'_>, message: &str, sent_credentials: bool) -> Error {
        let message = tidy_401(message);
        let cred = self.credential(req.registry).ok().flatten();
        let detail = match (&cred, sent_credentials) {
            (None, _) => format!(
                "{message}: no credentials for {r} (run `kiln login {r}`)",
                r = req.registry
            ),
            (Some(c), _) => format!(
                "{message}: the registry refused the credentials of {}",
                c.describe()
            ),
        };
        Error::Unauthorized {
            registry: req.registry.to_string(),
            what: req.what.to_string(),
            message: detail,
        }
    }

    /// A transport error in words (timeouts say how long and what to set).
    pub(crate) fn describe(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => format!(
                "timed out: no progress for {:?} (KILN_REGISTRY_TIMEOUT sets the limit)",
                self.opts.timeout
            ),
            e => e.to_string(),
        }
    }

    pub(crate) fn transport_error(&self, req: &Req<'_>, e: ureq::Error, retries: u32) -> Error {
        let https = req.url.starts_with("https://");
        let looks_tls = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_))
            || e.to_string().to_ascii_lowercase().contains("tls")
            || matches!(&e, ureq::Error::Io(io) if io.kind() == io::ErrorKind::InvalidData);
        let hint = if https && looks_tls {
            format!(
                " (if {} serves plain HTTP, pass --insecure-registry {} or set KILN_INSECURE_REGISTRIES)",
                req.registry, req.registry
            )
        } else {
            String::new()
        };
        let mut message = self.describe(&e);
        if retries > 0 {
            message.push_str(&format!(" (after {} attempts)", retries + 1));
        }
        Error::Transport {
            method: req.method.to_string(),
            url: req.url.clone(),
            message,
            hint,
        }
    }

    /// An error for an unexpected status, with the registry's message.
    pub(crate) fn status_error(&self, method: &str, url: &str, resp: Response<Body>) -> Error {
        let status = resp.status().as_u16();
        Error::Status {
            method: method.to_string(),
            url: url.to_string(),
            status,
            message: error_message(resp),
        }
    }
}

/// A 401's message without the repeated "unauthorized" (the error says
/// it) or a bare status line.
fn tidy_401(message: &str) -> String {
    let m = message.strip_prefix("unauthorized: ").unwrap_or(message);
    if m.starts_with("HTTP 401") || m.is_empty() {
        "authentication required".to_string()
    } else {
        m.to_string()
    }
}

/// The registry's error message: `errors[].code: message` from the JSON
/// body, else the start of the body, else the reason phrase.
pub(crate) fn error_message(resp: Response<Body>) -> String {
    let status = resp.status();
    let mut body = Vec::new();
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(SMALL_BODY)
        .reader()
        .take(64 << 10)
        .read_to_end(&mut body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(errs) = v.get("errors").and_then(|e| e.as_array())
    {
        let parts: Vec<String> = errs
            .iter()
            .map(|e| {
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                match (code.is_empty(), msg.is_empty()) {
                    (false, false) => format!("{}: {msg}", code.to_ascii_lowercase()),
                    (false, true) => code.to_ascii_lowercase(),
                    _ => msg.to_string(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() || text.len() > 300 {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim()
        .to_string()
    } else {
        text.to_string()
    }
}

/// Reads a small JSON body.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response<Body>,
    what: &str,
) -> Result<T> {
    let bytes = read_small(resp, what, SMALL_BODY)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::invalid(what, format!("invalid JSON: {e}")))
}

/// Reads a body of at most `limit` bytes into memory.
pub(crate) fn read_small(resp: Response<Body>, what: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_body()
        .into_with_config()
        .limit(limit + 1)
        .reader()
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid(what, format!("reading the response: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::invalid(
            what,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(out)
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_backoff() {
        let c = Client::new(ClientOptions::default());
        assert_eq!(c.base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(c.base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(c.base_url("r.example"), "https://r.example");
        assert_eq!(c.delay(1), Duration::from_millis(250));
        assert_eq!(c.delay(3), Duration::from_millis(1000));
        assert_eq!(c.delay(30), Duration::from_secs(10));
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
