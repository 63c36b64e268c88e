//! Starting a member: open the data dir, bootstrap a new cluster or restart from disk, start
//! raft, and wait until a leader is known.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rocksdb::WriteBatch;

use super::{EtcdServer, Metrics};
use crate::backend::Backend;
use crate::cluster::{cluster_id, InitialCluster, MemberNode};
use crate::config::{Config, Source};
use crate::mvcc::Store;
use crate::raft::log_store::LogStore;
use crate::raft::network::PeerNetwork;
use crate::raft::state_machine::StateMachine;
use crate::raft::{raft_config, Raft};

/// Opens or bootstraps the member described by `cfg` and returns it once raft runs.
pub async fn start(cfg: Config) -> Result<Arc<EtcdServer>, String> {
    let cfg = Arc::new(cfg);
    let backend = Arc::new(
        Backend::open(&cfg.data_dir, cfg.wal_dir.as_deref(), !cfg.unsafe_no_fsync)
            .map_err(|e| format!("cannot open data dir {}: {e}", cfg.data_dir.display()))?,
    );
    let existing: Option<(u64, u64)> = match (
        backend
            .get_meta::<u64>("member_id")
            .map_err(|e| e.to_string())?,
        backend
            .get_meta::<u64>("cluster_id")
            .map_err(|e| e.to_string())?,
    ) {
        (Some(m), Some(c)) => Some((m, c)),
        _ => None,
    };

    let (member_id, cid) = match existing {
        Some((m, c)) => {
            tracing::info!(
                data_dir = %cfg.data_dir.display(),
                member_id = %format!("{m:x}"),
                cluster_id = %format!("{c:x}"),
                "restarting member from its data dir; initial-cluster settings are ignored"
            );
            (m, c)
        }
        None => {
            let (m, c, nodes) = new_cluster(&cfg)?;
            crate::raft::log_store::seed_bootstrap(&backend, nodes).map_err(|e| e.to_string())?;
            let mut b = WriteBatch::default();
            backend
                .put_meta(&mut b, "member_id", &m)
                .map_err(|e| e.to_string())?;
            backend
                .put_meta(&mut b, "cluster_id", &c)
                .map_err(|e| e.to_string())?;
            backend.write(b, true).map_err(|e| e.to_string())?;
            tracing::info!(
                member_id = %format!("{m:x}"),
                cluster_id = %format!("{c:x}"),
                "bootstrapping a new cluster"
            );
            (m, c)
        }
    };

    let store = Arc::new(Store::open(backend.clone()).map_err(|e| e.to_string())?);
    let log_store = LogStore::open(backend.clone()).map_err(|e| e.to_string())?;
    let sm =
        StateMachine::open(store.clone(), cfg.warning_apply_duration).map_err(|e| e.to_string())?;
    let raft = Raft::new(member_id, raft_config(&cfg)?, PeerNetwork, log_store, sm)
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
    let election = Duration::from_millis(cfg.election_timeout_ms);
    let server = Arc::new(EtcdServer {
        raft_metrics: raft.metrics(),
        raft,
        store,
        request_timeout: Duration::from_secs(5) + 2 * election,
        cfg,
        member_id,
        cluster_id: cid,
        metrics: Metrics::default(),
    });
    // A member serves once it knows a leader (etcd's ready notification).
    let mut rx = server.raft.metrics();
    let wait = tokio::time::timeout(10 * election + Duration::from_secs(5), async {
        loop {
            if rx.borrow().current_leader.is_some() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    if wait.await.is_err() {
        tracing::warn!("no leader yet; serving anyway (requests needing consensus will wait)");
    }
    Ok(server)
}

/// Validates the bootstrap settings and derives the member and cluster IDs as etcd does.
fn new_cluster(cfg: &Config) -> Result<(u64, u64, BTreeMap<u64, MemberNode>), String> {
    if !cfg.initial_cluster_state_new {
        return Err(
            "--initial-cluster-state=existing: joining an existing cluster is not supported yet by retcd"
                .into(),
        );
    }
    let advertise: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.raw.clone())
        .collect();
    // etcd: without an explicit --initial-cluster, the member bootstraps alone as
    // name=initial-advertise-peer-urls.
    let initial = if cfg.raw["initial-cluster"].1 == Source::Default {
        advertise
            .iter()
            .map(|u| format!("{}={u}", cfg.name))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        cfg.initial_cluster.clone()
    };
    let ic = InitialCluster::parse(&initial).map_err(|e| e.to_string())?;
    let Some((_, urls)) = ic.members.iter().find(|(n, _)| *n == cfg.name) else {
        return Err(format!(
            "couldn't find local name {:?} in the initial cluster configuration (--initial-cluster={initial}); add {}=<peer URL> or fix --name",
            cfg.name, cfg.name
        ));
    };
    let mut a = advertise.clone();
    let mut b = urls.clone();
    a.sort();
    b.sort();
    if a != b {
        return Err(format!(
            "--initial-cluster has {}={} but missing from --initial-advertise-peer-urls={} (they must list the same URLs)",
            cfg.name,
            urls.join(","),
            advertise.join(",")
        ));
    }
    if ic.members.len() > 1 {
        return Err(format!(
            "--initial-cluster lists {} members: clusters of more than one member are not supported yet by retcd",
            ic.members.len()
        ));
    }
    let ids = ic.ids(&cfg.initial_cluster_token);
    let member_ids: Vec<u64> = ids.iter().map(|(id, _, _)| *id).collect();
    let cid = cluster_id(&member_ids);
    let mut nodes = BTreeMap::new();
    let mut me = 0;
    for (id, name, peer_urls) in ids {
        let local = name == cfg.name;
        if local {
            me = id;
        }
        nodes.insert(
            id,
            MemberNode {
                name: if local {
                    name.to_string()
                } else {
                    String::new()
                },
                peer_urls: peer_urls.to_vec(),
                client_urls: if local {
                    cfg.advertise_client_urls
                        .iter()
                        .map(|u| u.raw.clone())
                        .collect()
                } else {
                    Vec::new()
                },
            },
        );
    }
    Ok((me, cid, nodes))
}
