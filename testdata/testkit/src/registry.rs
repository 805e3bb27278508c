//! A real registry for tests: Debian's `docker-registry` (CNCF
//! distribution 2.8) started on 127.0.0.1 with a free port and a
//! temporary storage directory, open or with htpasswd Basic auth; a
//! fault-injecting loopback HTTP proxy to put in front of it; and a
//! writer for multi-platform OCI layouts (an index of several images)
//! that `skopeo copy --all` can push; and a plain `GET` to read what a
//! registry serves.
//!
//! Nothing here talks to anything but 127.0.0.1.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{FixtureImage, sha256};

/// The registry binary `.ci/install-deps` installs.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running `docker-registry`; killed (and its storage removed) on drop.
pub struct TestRegistry {
    child: Child,
    dir: PathBuf,
    addr: String,
    /// `(user, password)` when started with Basic auth.
    pub credentials: Option<(String, String)>,
}

/// A unique scratch directory under the system temp dir.
fn scratch_dir(what: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "kiln-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The status code of `GET /v2/` at `addr`, if it answers.
fn ping(addr: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET http://HOST/PATH` over HTTP/1.0 (no redirect followed, no
/// auth), accepting OCI and docker manifests and indexes: the status and
/// the body. For reading what a registry holds.
pub fn http_get(host: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/vnd.oci.image.manifest.v1+json, \
         application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\r\n"
    )
    .expect("send request");
    let (head, mut body) = read_head(&mut s).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    s.read_to_end(&mut body).expect("read body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: bad status line in {head:?}"));
    (status, body)
}

impl TestRegistry {
    /// Starts an open registry (anyone may pull and push).
    pub fn start() -> TestRegistry {
        Self::start_inner(None)
    }

    /// Starts a registry that wants Basic auth with `user`/`password`
    /// (an htpasswd file made with `htpasswd -Bbn`, bcrypt as distribution requires).
    pub fn start_with_auth(user: &str, password: &str) -> TestRegistry {
        Self::start_inner(Some((user.to_string(), password.to_string())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run .ci/install-deps (Debian package docker-registry)"
        );
        let dir = scratch_dir("registry");
        let mut auth = String::new();
        if let Some((u, p)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("run htpasswd (Debian package apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {addr}\n  secret: kiln-test-secret\n{auth}",
                data = dir.join("data").display(),
            );
            let cfg = dir.join("config.yml");
            std::fs::write(&cfg, config).expect("write registry config");
            let log = std::fs::File::create(dir.join("registry.log")).expect("log file");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Some(code) = ping(&addr) {
                    assert!(code == 200 || code == 401, "registry answered {code}");
                    return TestRegistry {
                        child,
                        dir,
                        addr,
                        credentials,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start; its log:\n{log}");
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> &str {
        &self.addr
    }

    /// Where the registry keeps its data.
    pub fn storage(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 Service Unavailable` without forwarding.
    Unavailable,
    /// Forward, but declare and send only the first half of the body
    /// (a clean, short response).
    Truncate,
    /// Forward with one byte of the body changed (same length).
    Corrupt,
    /// Send the headers and half the body, then close the connection
    /// (a reset mid-transfer).
    Reset,
    /// Accept the request and say nothing for this long, then close.
    Stall(Duration),
}

/// A fault for requests whose method and path match, `times` times
/// (`u32::MAX`: always).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `GET`, `HEAD`, … or `None` for any.
    pub method: Option<&'static str>,
    /// A substring of the request path (e.g. `/blobs/sha256:…`).
    pub path_contains: String,
    /// What to do.
    pub fault: Fault,
    /// How many more requests it applies to.
    pub times: u32,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    /// `METHOD PATH -> STATUS|fault`, in arrival order.
    log: Vec<String>,
    /// Bearer-token gateway: `user:password` the token endpoint accepts.
    token_auth: Option<String>,
    /// Tokens handed out, with the scopes they grant.
    tokens: Vec<(String, Vec<String>)>,
}

/// A loopback HTTP proxy in front of a registry that injects [`Fault`]s.
/// One request per connection (`Connection: close`). Stops on drop.
pub struct FaultProxy {
    addr: String,
    state: Arc<Mutex<ProxyState>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy for `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, up) = (state.clone(), stop.clone(), upstream.to_string());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (st, up) = (st.clone(), up.clone());
                thread::spawn(move || {
                    let _ = serve(conn, &up, &st);
                });
            }
        });
        FaultProxy { addr, state, stop }
    }

    /// Starts a proxy that also acts as a Bearer-token auth gateway, as
    /// Docker Hub or GHCR do: `/v2/…` requests without a token for their
    /// scope get `401` with `WWW-Authenticate: Bearer realm="http://PROXY/token",
    /// service="kiln-test",scope="repository:NAME:ACTIONS"`; `GET /token`
    /// with Basic `user:password` returns a token granting the `scope`
    /// parameters asked for. The upstream registry itself is open.
    pub fn start_with_token_auth(upstream: &str, user: &str, password: &str) -> FaultProxy {
        let p = FaultProxy::start(upstream);
        p.state.lock().unwrap().token_auth = Some(format!("{user}:{password}"));
        p
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> &str {
        &self.addr
    }

    /// Adds a rule (rules are tried in order).
    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Shorthand: `fault` for `times` requests of `method` whose path contains `path`.
    pub fn inject(&self, method: &'static str, path: &str, fault: Fault, times: u32) {
        self.add(Rule {
            method: Some(method),
            path_contains: path.to_string(),
            fault,
            times,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// The requests seen so far: `METHOD PATH -> STATUS` or `-> FAULT`.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Reads an HTTP head (up to the blank line); returns it and what
/// followed it in the buffer.
fn read_head(r: &mut impl Read) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no head"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return Err(io::Error::other("head too large"));
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Rewrites a head: drops `Connection`/`Content-Length` (re-added as
/// given) and forces `Connection: close`.
fn rewrite_head(head: &str, content_length: Option<u64>) -> String {
    let mut out = String::new();
    for (i, l) in head.split("\r\n").enumerate() {
        if l.is_empty() {
            continue;
        }
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if i > 0
            && (name == "connection"
                || name == "keep-alive"
                || (content_length.is_some() && name == "content-length"))
        {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    if let Some(n) = content_length {
        out.push_str(&format!("Content-Length: {n}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<ProxyState>) -> io::Result<()> {
    let (head, mut body_start) = read_head(&mut client)?;
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    // The request body (our client always sends Content-Length).
    let len: u64 = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(resp) = token_gate(
        &head,
        &method,
        &path,
        state,
        &client.local_addr()?.to_string(),
    ) {
        // Drain the request body so the client sees the answer.
        let already = body_start.len() as u64;
        if len > already {
            io::copy(&mut (&mut client).take(len - already), &mut io::sink())?;
        }
        client.write_all(resp.as_bytes())?;
        return client.flush();
    }
    let fault = {
        let mut st = state.lock().unwrap();
        let hit = st.rules.iter_mut().find(|r| {
            r.times > 0 && r.method.is_none_or(|m| m == method) && path.contains(&r.path_contains)
        });
        let fault = hit.map(|r| {
            r.times -= 1;
            r.fault
        });
        if let Some(f) = fault {
            st.log.push(format!("{method} {path} -> {f:?}"));
        }
        fault
    };
    match fault {
        Some(Fault::Unavailable) => {
            let msg =
                br#"{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}"#;
            write!(
                client,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                msg.len()
            )?;
            client.write_all(msg)?;
            return Ok(());
        }
        Some(Fault::Stall(d)) => {
            thread::sleep(d);
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(rewrite_head(&head, None).as_bytes())?;
    let already = body_start.len() as u64;
    up.write_all(&body_start)?;
    body_start.clear();
    if len > already {
        io::copy(&mut (&mut client).take(len - already), &mut up)?;
    }
    let (rhead, rest) = read_head(&mut up)?;
    let status = rhead.split_whitespace().nth(1).unwrap_or("?").to_string();
    if fault.is_none() {
        state
            .lock()
            .unwrap()
            .log
            .push(format!("{method} {path} -> {status}"));
    }
    let body_len: Option<u64> = header(&rhead, "content-length").and_then(|v| v.parse().ok());
    let mut body = io::Cursor::new(rest).chain(up);
    let has_body = method != "HEAD" && status != "204" && status != "304";
    match (fault, body_len) {
        (Some(Fault::Truncate), Some(n)) if has_body => {
            let half = n / 2;
            client.write_all(rewrite_head(&rhead, Some(half)).as_bytes())?;
            io::copy(&mut body.take(half), &mut client)?;
        }
        (Some(Fault::Reset), Some(n)) if has_body => {
            client.write_all(rewrite_head(&rhead, None).as_bytes())?;
            io::copy(&mut (&mut body).take(n / 2), &mut client)?;
            client.flush()?;
            let _ = client.shutdown(Shutdown::Both);
        }
        (Some(Fault::Corrupt), Some(n)) if has_body && n > 0 => {
            client.write_all(rewrite_head(&rhead, None).as_bytes())?;
            let mut data = Vec::new();
            body.take(n).read_to_end(&mut data)?;
            let i = data.len() / 2;
            data[i] ^= 0x5a;
            client.write_all(&data)?;
        }
        _ => {
            client.write_all(rewrite_head(&rhead, None).as_bytes())?;
            if has_body {
                match body_len {
                    Some(n) => io::copy(&mut body.take(n), &mut client)?,
                    None => io::copy(&mut body, &mut client)?,
                };
            }
        }
    }
    client.flush()
}

/// The token gateway's answer to a request, if it intercepts it.
fn token_gate(
    head: &str,
    method: &str,
    path: &str,
    state: &Mutex<ProxyState>,
    me: &str,
) -> Option<String> {
    let mut st = state.lock().unwrap();
    let secret = st.token_auth.clone()?;
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if let Some(query) = path.strip_prefix("/token") {
        let scopes: Vec<String> = query
            .trim_start_matches('?')
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(percent_decode)
            .collect();
        let basic = header(head, "authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .map(|b| b.trim().to_string());
        let want = base64_encode(secret.as_bytes());
        st.log.push(format!("{method} {path} -> token"));
        if basic.as_deref() != Some(want.as_str()) {
            return Some(reply(
                "401 Unauthorized",
                "",
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            ));
        }
        let token = format!("tok{}", st.tokens.len());
        st.tokens.push((token.clone(), scopes));
        return Some(reply("200 OK", "", &format!(r#"{{"token":"{token}"}}"#)));
    }
    let rest = path.strip_prefix("/v2/")?;
    let bearer = header(head, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if rest.is_empty() {
        // The API root (what `login` checks): any valid token will do.
        if bearer.is_some_and(|t| st.tokens.iter().any(|(tok, _)| tok == t.trim())) {
            return None;
        }
        st.log.push(format!("{method} {path} -> 401"));
        return Some(reply(
            "401 Unauthorized",
            &format!(
                "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"kiln-test\"\r\n"
            ),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        ));
    }
    // The repository: everything before /manifests/, /blobs/ or /tags/.
    let name = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .find_map(|m| rest.find(m).map(|i| &rest[..i]))?;
    let actions = if method == "GET" || method == "HEAD" {
        "pull"
    } else {
        "pull,push"
    };
    let needed = format!("repository:{name}:{actions}");
    let granted = bearer.is_some_and(|t| {
        st.tokens.iter().any(|(tok, scopes)| {
            tok == t.trim()
                && scopes.iter().any(|s| {
                    s.strip_prefix(&format!("repository:{name}:"))
                        .is_some_and(|a| actions.split(',').all(|x| a.split(',').any(|y| y == x)))
                })
        })
    });
    if granted {
        return None;
    }
    st.log.push(format!("{method} {path} -> 401 {needed}"));
    Some(reply(
        "401 Unauthorized",
        &format!(
            "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"kiln-test\",scope=\"{needed}\"\r\n"
        ),
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    ))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes an OCI image layout directory at `dir` holding one index with
/// one manifest per `(image, architecture)`, the index tagged `tag`;
/// returns the manifests' digests in order. `skopeo copy --all
/// oci:DIR:TAG docker://…` pushes it as a multi-platform image.
pub fn write_oci_index_layout(
    dir: &Path,
    images: &[(&FixtureImage, &str)],
    tag: &str,
) -> io::Result<Vec<String>> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let put = |data: &[u8]| -> io::Result<String> {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data)?;
        Ok(d)
    };
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (image, arch) in images {
        let mut config: serde_json::Value = serde_json::from_slice(&image.config_json())?;
        config["architecture"] = json!(arch);
        let config = serde_json::to_vec(&config)?;
        let cd = put(&config)?;
        let mut layers = Vec::new();
        for l in &image.layers {
            let z = crate::gzip(l);
            let d = put(&z)?;
            layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": z.len()}));
        }
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": layers,
        }))?;
        let md = put(&m)?;
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": m.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        digests.push(md);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))?;
    let id = put(&index)?;
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top)?)?;
    Ok(digests)
}
