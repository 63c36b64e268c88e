//! Cluster membership: member and cluster IDs derived exactly as etcd derives them, the
//! `initial-cluster` bootstrap map, and the member record stored in raft membership.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::config::{parse_urls, ConfigError};

/// A member as raft membership carries it (openraft's `Node`): what peers need to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub peer_urls: Vec<String>,
}

impl std::fmt::Display for MemberNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.peer_urls)
    }
}

/// What a member publishes about itself once started (etcd's member attributes). A member
/// that has not published yet is listed as `unstarted`, with no name and no client URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAttrs {
    pub name: String,
    pub client_urls: Vec<String>,
}

/// The meta key of member `id`'s attributes.
pub fn attrs_key(id: u64) -> String {
    format!("member/{id:016x}")
}

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the member's sorted peer
/// URLs concatenated, then the cluster token, then (for `member add`) the Unix time in seconds.
pub fn member_id(peer_urls: &[String], token: &str, now_unix: Option<i64>) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    if let Some(t) = now_unix {
        h.update(t.to_string().as_bytes());
    }
    first_u64(&h.finalize())
}

/// etcd's cluster ID: the first 8 bytes of SHA-1 over the sorted member IDs, 8 bytes each.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The parsed `initial-cluster`: member name -> peer URLs, in the order first seen.
#[derive(Debug, Clone)]
pub struct InitialCluster {
    pub members: Vec<(String, Vec<String>)>,
}

impl InitialCluster {
    /// Parses `n1=http://a:2380,n2=http://b:2380` (a name may repeat to give several URLs).
    pub fn parse(s: &str) -> Result<InitialCluster, ConfigError> {
        let mut members: Vec<(String, Vec<String>)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, url) = part.split_once('=').ok_or_else(|| {
                ConfigError(format!(
                    "--initial-cluster entry {part:?} must be name=peerURL (e.g. default=http://localhost:2380)"
                ))
            })?;
            let url = parse_urls("initial-cluster", url)?.pop().ok_or_else(|| {
                ConfigError(format!("--initial-cluster entry {part:?} has no URL"))
            })?;
            match members.iter_mut().find(|(n, _)| n == name) {
                Some((_, urls)) => urls.push(url.raw),
                None => members.push((name.to_string(), vec![url.raw])),
            }
        }
        if members.is_empty() {
            return Err(ConfigError("--initial-cluster is empty".into()));
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, urls) in &members {
            for u in urls {
                if let Some(other) = seen.insert(u, name) {
                    return Err(ConfigError(format!(
                        "--initial-cluster has duplicate peer URL {u} (members {other} and {name})"
                    )));
                }
            }
        }
        Ok(InitialCluster { members })
    }

    /// Member IDs for every member, computed with `token`.
    pub fn ids(&self, token: &str) -> Vec<(u64, &str, &[String])> {
        self.members
            .iter()
            .map(|(n, urls)| (member_id(urls, token, None), n.as_str(), urls.as_slice()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
