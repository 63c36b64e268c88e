//! DNS SRV discovery of client endpoints (`--discovery-srv DOMAIN`), as etcd's clients do it:
//! `_etcd-client-ssl._tcp.DOMAIN` gives https endpoints, `_etcd-client._tcp.DOMAIN` http ones
//! (`--discovery-srv-name NAME` makes them `_etcd-client-ssl-NAME` / `_etcd-client-NAME`).
//! The query goes over UDP to the nameservers of /etc/resolv.conf, as Go's resolver does.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// As DNS gives it, with the trailing dot (`etcd1.example.com.`).
    pub target: String,
}

/// The client URLs published for `domain`, https ones first, as etcd's `srv.GetClient`
/// lists them; an error only when both lookups fail.
pub fn client_endpoints(domain: &str, service_name: &str) -> Result<Vec<String>, String> {
    let suffix = if service_name.is_empty() {
        String::new()
    } else {
        format!("-{service_name}")
    };
    let mut urls = Vec::new();
    let mut errors = Vec::new();
    for (service, scheme) in [("etcd-client-ssl", "https"), ("etcd-client", "http")] {
        match lookup(&format!("_{service}{suffix}._tcp.{domain}")) {
            Ok(records) => urls.extend(
                records
                    .iter()
                    .map(|r| format!("{scheme}://{}:{}", r.target, r.port)),
            ),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 2 {
        return Err(format!(
            "dns lookup errors: {} and {}",
            errors[0], errors[1]
        ));
    }
    Ok(urls)
}

fn nameservers() -> Vec<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out: Vec<SocketAddr> = conf
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if out.is_empty() {
        out.push(SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    out
}

/// The SRV records of `name`, by priority (then by weight, heaviest first).
pub fn lookup(name: &str) -> Result<Vec<Srv>, String> {
    let fqdn = name.trim_end_matches('.');
    let mut last = String::new();
    for ns in nameservers() {
        match query(ns, fqdn) {
            Ok(mut records) => {
                if records.is_empty() {
                    return Err(format!("lookup {fqdn} on {ns}: no such host"));
                }
                records.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
                return Ok(records);
            }
            Err(e) => last = format!("lookup {fqdn} on {ns}: {e}"),
        }
    }
    Err(last)
}

fn query(ns: SocketAddr, name: &str) -> Result<Vec<Srv>, String> {
    let id: u16 = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("no such host".into());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 33, 0, 1]); // root, type SRV, class IN
    let bind: SocketAddr = if ns.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bad address")?
    } else {
        "[::]:0".parse().map_err(|_| "bad address")?
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    sock.connect(ns).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    for _attempt in 0..2 {
        sock.send(&q).map_err(|e| e.to_string())?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.to_string()),
        };
        let r = &buf[..n];
        if r.len() < 12 || r[0..2] != id.to_be_bytes() {
            continue;
        }
        return parse(r);
    }
    Err("i/o timeout".into())
}

/// A DNS answer's SRV records (NXDOMAIN and "no records" are both an empty list).
fn parse(r: &[u8]) -> Result<Vec<Srv>, String> {
    let bad = || "cannot unmarshal DNS message".to_string();
    let rcode = r[3] & 0x0f;
    match rcode {
        0 => {}
        3 => return Ok(Vec::new()),
        2 => return Err("server misbehaving".into()),
        _ => return Err(format!("server answered with rcode {rcode}")),
    }
    let qd = u16::from_be_bytes([r[4], r[5]]) as usize;
    let an = u16::from_be_bytes([r[6], r[7]]) as usize;
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(r, pos).ok_or_else(bad)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = skip_name(r, pos).ok_or_else(bad)?;
        let field =
            |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*r.get(at)?, *r.get(at + 1)?])) };
        let rtype = field(pos).ok_or_else(bad)?;
        let len = field(pos + 8).ok_or_else(bad)? as usize;
        let data = pos + 10;
        if data + len > r.len() {
            return Err(bad());
        }
        if rtype == 33 && len >= 7 {
            out.push(Srv {
                priority: field(data).ok_or_else(bad)?,
                weight: field(data + 2).ok_or_else(bad)?,
                port: field(data + 4).ok_or_else(bad)?,
                target: read_name(r, data + 6).ok_or_else(bad)?,
            });
        }
        pos = data + len;
    }
    Ok(out)
}

/// The position just after the (possibly compressed) name at `pos`.
fn skip_name(r: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *r.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2);
        }
        pos += 1 + len;
    }
}

/// The name at `pos`, following compression pointers, with a trailing dot.
fn read_name(r: &[u8], mut pos: usize) -> Option<String> {
    let mut name = String::new();
    for _ in 0..128 {
        let len = *r.get(pos)? as usize;
        if len == 0 {
            if name.is_empty() {
                name.push('.');
            }
            return Some(name);
        }
        if len & 0xc0 == 0xc0 {
            pos = ((len & 0x3f) << 8) | *r.get(pos + 1)? as usize;
            continue;
        }
        let label = r.get(pos + 1..pos + 1 + len)?;
        name.push_str(&String::from_utf8_lossy(label));
        name.push('.');
        pos += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_answer_with_compressed_names() {
        // Question _etcd-client._tcp.ex.com SRV; one answer pointing back at it, target
        // m1.ex.com compressed against the question's "ex.com".
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for l in ["_etcd-client", "_tcp", "ex", "com"] {
            r.push(l.len() as u8);
            r.extend_from_slice(l.as_bytes());
        }
        r.extend_from_slice(&[0, 0, 33, 0, 1]);
        r.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let rdata: Vec<u8> = [&[0, 10, 0, 5, 0x09, 0x4b, 2][..], b"m1", &[0xc0, 30]].concat();
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
        assert_eq!(
            parse(&r),
            Ok(vec![Srv {
                priority: 10,
                weight: 5,
                port: 2379,
                target: "m1.ex.com.".into()
            }])
        );
    }
}
