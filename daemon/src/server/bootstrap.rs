//! Starting a member: open the data dir, bootstrap a new cluster or restart from disk, and
//! start raft. [`wait_ready`] then waits for a leader and publishes the member's attributes,
//! after which it serves clients (etcd's ready notification).

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
use crate::raft::network::{PeerNetwork, Peers};
use crate::raft::state_machine::StateMachine;
use crate::raft::{raft_config, Raft};

/// Opens or bootstraps the member described by `cfg` and starts raft.
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
    let snap_dir = crate::backend::db_path(&cfg.data_dir)
        .with_file_name("snap")
        .join("send");
    let sm = StateMachine::open(store.clone(), cfg.warning_apply_duration, snap_dir)
        .map_err(|e| e.to_string())?;
    let peers = Peers::new(cid, member_id);
    let network = PeerNetwork {
        peers: peers.clone(),
    };
    let raft = Raft::new(member_id, raft_config(&cfg)?, network, log_store, sm)
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
    let election = Duration::from_millis(cfg.election_timeout_ms);
    Ok(Arc::new(EtcdServer {
        raft_metrics: raft.metrics(),
        raft,
        store,
        request_timeout: Duration::from_secs(5) + 2 * election,
        cfg,
        member_id,
        cluster_id: cid,
        peers,
        metrics: Metrics::default(),
    }))
}

/// Waits until a leader is known and this member's name and client URLs are published
/// through raft; retries for as long as it takes (a member waits for its peers at first
/// bootstrap), logging while it waits.
pub async fn wait_ready(server: &EtcdServer) {
    let mut rx = server.raft().metrics();
    let mut waited = Duration::ZERO;
    let step = Duration::from_secs(5);
    loop {
        if rx.borrow().current_leader.is_some() {
            break;
        }
        if tokio::time::timeout(step, rx.changed()).await.is_ok() {
            continue;
        }
        waited += step;
        tracing::warn!(
            waited_secs = waited.as_secs(),
            "no leader yet: waiting for a quorum of members to start"
        );
    }
    loop {
        match server.publish().await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "publishing member attributes failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
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
    let n = ic.members.len();
    if n % 2 == 0 {
        tracing::warn!(
            members = n,
            quorum = n / 2 + 1,
            "an even number of members tolerates no more failures than one member fewer (quorum is N/2+1); prefer an odd number"
        );
    }
    let ids = ic.ids(&cfg.initial_cluster_token);
    let member_ids: Vec<u64> = ids.iter().map(|(id, _, _)| *id).collect();
    let cid = cluster_id(&member_ids);
    let mut nodes = BTreeMap::new();
    let mut me = 0;
    for (id, name, peer_urls) in ids {
        if name == cfg.name {
            me = id;
        }
        nodes.insert(
            id,
            MemberNode {
                peer_urls: peer_urls.to_vec(),
            },
        );
    }
    Ok((me, cid, nodes))
}
