//! Name resolution files for the sandbox, following BuildKit:
//!
//! - `/etc/hosts`: `127.0.0.1 localhost <hostname>`, `::1 localhost
//!   ip6-localhost ip6-loopback`, then the extra hosts.
//! - `/etc/resolv.conf`: the host's. Outside host mode, when the host's only
//!   nameserver is systemd-resolved's stub (127.0.0.53), the real upstream
//!   list in `/run/systemd/resolve/resolv.conf` is used instead; loopback
//!   nameservers are dropped (they would be unreachable from another network
//!   namespace); if none are left (also in host mode when there were none),
//!   Google's public servers are used.
//!
//! The files are written to the run directory in the scratch space and
//! bind-mounted read-only over the image's, so they never reach a layer.

use std::net::IpAddr;
use std::path::Path;

use crate::spec::Network;

const HOST_RESOLV: &str = "/etc/resolv.conf";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
const DEFAULT_NAMESERVERS: [&str; 4] = [
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
];

/// The sandbox's `/etc/hosts`.
pub(crate) fn hosts_file(hostname: &str, extra: &[(String, String)]) -> String {
    let mut s =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

/// The sandbox's `/etc/resolv.conf`, from the host's files.
pub(crate) fn resolv_conf(network: Network) -> String {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    let mut host = read(HOST_RESOLV);
    if network != Network::Host && nameservers(&host) == ["127.0.0.53"] {
        let upstream = read(RESOLVED_UPSTREAM);
        if !upstream.is_empty() {
            host = upstream;
        }
    }
    transform(&host, network)
}

fn nameservers(conf: &str) -> Vec<&str> {
    conf.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .collect()
}

/// Applies the rules of the module doc to a resolv.conf text.
pub(crate) fn transform(conf: &str, network: Network) -> String {
    let keep = |ns: &str| match ns.parse::<IpAddr>() {
        Ok(ip) => network == Network::Host || !ip.is_loopback(),
        Err(_) => false,
    };
    let mut out = String::new();
    let mut kept = 0;
    for line in conf.lines() {
        let mut w = line.split_whitespace();
        if w.next() == Some("nameserver") {
            match w.next() {
                Some(ns) if keep(ns) => kept += 1,
                _ => continue,
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        for ns in DEFAULT_NAMESERVERS {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_buildkit() {
        assert_eq!(
            hosts_file("buildkitsandbox", &[("db".into(), "10.0.0.2".into())]),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tdb\n"
        );
    }

    #[test]
    fn loopback_nameservers_dropped_outside_host_mode() {
        let conf =
            "search example.org\nnameserver 127.0.0.1\nnameserver 10.1.1.1\noptions ndots:2\n";
        assert_eq!(
            transform(conf, Network::None),
            "search example.org\nnameserver 10.1.1.1\noptions ndots:2\n"
        );
        assert_eq!(transform(conf, Network::Host), conf);
    }

    #[test]
    fn default_nameservers_when_none_left() {
        let out = transform("nameserver 127.0.0.53\n", Network::None);
        assert_eq!(
            out,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
        );
        assert!(transform("", Network::Host).contains("nameserver 8.8.8.8"));
    }
}
