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

/// A data dir an etcd member left behind holds data this member cannot read: starting on it
/// would bootstrap an empty cluster beside the old data, and clients would find their keys
/// gone. Refused, touching nothing, unless this member's own database is already there.
fn refuse_etcd_files(cfg: &Config) -> Result<(), String> {
    let found = crate::backend::etcd_member_files(&cfg.data_dir, cfg.wal_dir.as_deref());
    if found.is_empty() {
        return Ok(());
    }
    let list = found
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if crate::backend::db_path(&cfg.data_dir)
        .join("CURRENT")
        .exists()
    {
        tracing::warn!(files = %list, "the data dir also holds an etcd member's files; they are ignored");
        return Ok(());
    }
    let restore = match crate::bolt::db_in_dir(&cfg.data_dir) {
        Some(db) => format!(
            "restore its database into a new data dir with 'etcdutl snapshot restore {} \
             --skip-hash-check' and this member's cluster flags, or ",
            db.display()
        ),
        None => String::new(),
    };
    Err(format!(
        "data dir {} holds an etcd member's data ({list}), which this etcd does not run on; \
         nothing was changed. Start this member with an empty --data-dir: {restore}copy the \
         keys from the old cluster with 'etcdctl make-mirror' (docs/migrating-from-etcd.md)",
        cfg.data_dir.display()
    ))
}

/// Opens or bootstraps the member described by `cfg` and starts raft.
pub async fn start(cfg: Config) -> Result<Arc<EtcdServer>, String> {
    let cfg = Arc::new(cfg);
    refuse_etcd_files(&cfg)?;
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
        Some((m, c)) if cfg.force_new_cluster => {
            force_new_cluster(&backend, m, &cfg)?;
            (m, c)
        }
        Some((m, c)) => {
            tracing::info!(
                data_dir = %cfg.data_dir.display(),
                member_id = %format!("{m:x}"),
                cluster_id = %format!("{c:x}"),
                "restarting member from its data dir; initial-cluster settings are ignored"
            );
            (m, c)
        }
        None if !cfg.initial_cluster_state_new => {
            let (m, c) = join_existing(&cfg).await?;
            persist_ids(&backend, m, c, "joining an existing cluster")?;
            (m, c)
        }
        None => {
            let (m, c, nodes) = new_cluster(&cfg)?;
            refuse_if_peers_differ(&cfg, c).await?;
            crate::raft::log_store::seed_bootstrap(&backend, nodes).map_err(|e| e.to_string())?;
            persist_ids(&backend, m, c, "bootstrapping a new cluster")?;
            (m, c)
        }
    };

    let store = Arc::new(Store::open(backend.clone()).map_err(|e| e.to_string())?);
    let log_store = LogStore::open(backend.clone(), member_id).map_err(|e| e.to_string())?;
    let snap_dir = crate::backend::db_path(&cfg.data_dir)
        .with_file_name("snap")
        .join("send");
    let watch = crate::watch::WatchHub::start(
        store.clone(),
        cfg.watch_progress_notify_interval,
        cfg.max_request_bytes as usize,
    );
    let lessor = Arc::new(crate::lease::Lessor::load(
        backend
            .meta_with_prefix("lease/")
            .map_err(|e| e.to_string())?,
        store.take_attached(),
    ));
    let alarms = Arc::new(crate::alarm::Alarms::load(
        backend
            .meta_with_prefix("alarm/")
            .map_err(|e| e.to_string())?,
    ));
    let auth = Arc::new(crate::auth::AuthStore::new(Duration::from_secs(
        cfg.auth_token_ttl.max(1),
    )));
    auth.load(&backend)?;
    let mut sm = StateMachine::open(
        store.clone(),
        watch.clone(),
        lessor.clone(),
        alarms.clone(),
        auth.clone(),
        cfg.warning_apply_duration,
        snap_dir,
    )
    .map_err(|e| e.to_string())?;
    let snapshots = sm.snapshot_every(cfg.snapshot_count);
    sm.wait_for_log(log_store.durable());
    let peers = Peers::new(cid, member_id).with_local_ip(
        cfg.listen_peer_urls
            .first()
            .map(|u| u.host.as_str())
            .unwrap_or(""),
    );
    let network = PeerNetwork {
        peers: peers.clone(),
        durable: log_store.durable(),
    };
    let raft = Raft::new(member_id, raft_config(&cfg)?, network, log_store, sm)
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
    tokio::spawn(snapshots.run(raft.clone()));
    // A member that applied its own removal must not come back.
    {
        let m: openraft::StoredMembership<u64, MemberNode> = backend
            .get_meta("membership")
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        if m.membership().nodes().next().is_some() && m.membership().get_node(&member_id).is_none()
        {
            let _ = raft.shutdown().await;
            return Err(format!(
                "the member has been permanently removed from the cluster (member {member_id:x}, cluster {cid:x}); to bring this host back, wipe {} and add it again with 'etcdctl member add'",
                cfg.data_dir.display()
            ));
        }
    }
    let election = Duration::from_millis(cfg.election_timeout_ms);
    let request_timeout = Duration::from_secs(5) + 2 * election;
    let indexer = super::reads::ReadIndexer {
        raft: raft.clone(),
        metrics: raft.metrics(),
        peers: peers.clone(),
        cluster_id: cid,
        timeout: request_timeout,
        forward: true,
    };
    let leader_only = super::reads::ReadIndexer {
        forward: false,
        ..indexer.clone()
    };
    Ok(Arc::new(EtcdServer {
        raft_metrics: raft.metrics(),
        reads: super::reads::ReadCoalescer::new(indexer),
        leader_reads: super::reads::ReadCoalescer::new(leader_only),
        proposer: super::propose::Proposer::new(raft.clone()),
        raft,
        store,
        request_timeout,
        cfg,
        member_id,
        cluster_id: cid,
        forwarder: super::forward::Forwarder::start(peers.clone(), cid, request_timeout),
        peers,
        watch,
        lessor,
        alarms,
        auth,
        lease_ids: std::sync::atomic::AtomicU64::new(0),
        transferring: Default::default(),
        quota_cache: Default::default(),
        metrics: Metrics::default(),
    }))
}

/// `--force-new-cluster`: this member's data stays (keys, history, leases, auth, its member
/// and cluster IDs), but its raft state is reset to a one-member cluster of itself, so a
/// survivor of a quorum loss can serve again and members can be added back.
fn force_new_cluster(backend: &Backend, me: u64, cfg: &Config) -> Result<(), String> {
    use crate::backend::{CF_META, CF_RAFT_LOG, CF_RAFT_STATE};
    let stored: openraft::StoredMembership<u64, MemberNode> = backend
        .get_meta("membership")
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let peer_urls = stored
        .membership()
        .get_node(&me)
        .map(|n| n.peer_urls.clone())
        .unwrap_or_else(|| {
            cfg.initial_advertise_peer_urls
                .iter()
                .map(|u| u.raw.clone())
                .collect()
        });
    let others: Vec<String> = stored
        .membership()
        .nodes()
        .filter(|(id, _)| **id != me)
        .map(|(id, _)| format!("{id:x}"))
        .collect();
    let mut b = WriteBatch::default();
    for cf in [CF_RAFT_LOG, CF_RAFT_STATE] {
        let h = backend.cf(cf).map_err(|e| e.to_string())?;
        b.delete_range_cf(h, &[0u8; 0][..], &[0xffu8; 32][..]);
    }
    let meta = backend.cf(CF_META).map_err(|e| e.to_string())?;
    b.delete_cf(meta, "applied");
    b.delete_cf(meta, "membership");
    for id in stored
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| *id != me)
    {
        b.delete_cf(meta, crate::cluster::attrs_key(id));
    }
    backend.write(b, true).map_err(|e| e.to_string())?;
    let mut nodes = BTreeMap::new();
    nodes.insert(me, MemberNode { peer_urls });
    crate::raft::log_store::seed_applied(backend, nodes).map_err(|e| e.to_string())?;
    tracing::warn!(
        member_id = %format!("{me:x}"),
        removed = %others.join(","),
        "--force-new-cluster: restarting as a one-member cluster with this member's data; add members back with 'etcdctl member add' (and start them with empty data dirs)"
    );
    Ok(())
}

/// Records this member's and its cluster's IDs (durably) in a fresh data dir.
pub fn persist_ids(backend: &Backend, member: u64, cluster: u64, what: &str) -> Result<(), String> {
    let mut b = WriteBatch::default();
    backend
        .put_meta(&mut b, "member_id", &member)
        .map_err(|e| e.to_string())?;
    backend
        .put_meta(&mut b, "cluster_id", &cluster)
        .map_err(|e| e.to_string())?;
    backend.write(b, true).map_err(|e| e.to_string())?;
    tracing::info!(
        member_id = %format!("{member:x}"),
        cluster_id = %format!("{cluster:x}"),
        "{what}"
    );
    Ok(())
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

/// Asks the members listed in `initial-cluster` who is in the cluster.
async fn ask_members(url: &str) -> Result<(u64, BTreeMap<u64, MemberNode>), String> {
    let peers = Peers::new(0, 0);
    let node = MemberNode {
        peer_urls: vec![url.to_string()],
    };
    let mut client = peers.client(0, &node)?;
    let mut req = tonic::Request::new(crate::api::retcdpeerpb::MembersRequest { cluster_id: 0 });
    req.set_timeout(Duration::from_secs(1));
    let resp = client
        .members(req)
        .await
        .map_err(|e| format!("{url}: {}", e.message()))?
        .into_inner();
    let (nodes, _learners): (BTreeMap<u64, MemberNode>, Vec<u64>) =
        bincode::deserialize(&resp.members).map_err(|e| format!("{url}: bad answer: {e}"))?;
    Ok((resp.cluster_id, nodes))
}

fn other_peer_urls(cfg: &Config) -> Result<Vec<String>, String> {
    let ic = InitialCluster::parse(&cfg.initial_cluster).map_err(|e| e.to_string())?;
    Ok(ic
        .members
        .into_iter()
        .filter(|(n, _)| *n != cfg.name)
        .flat_map(|(_, urls)| urls)
        .collect())
}

fn own_urls(cfg: &Config) -> Vec<String> {
    let mut v: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.raw.clone())
        .collect();
    v.sort();
    v
}

/// `initial-cluster-state=existing`: the member was added with `member add`; learn its ID
/// and the cluster's from the running members.
async fn join_existing(cfg: &Config) -> Result<(u64, u64), String> {
    let urls = other_peer_urls(cfg)?;
    let mine = own_urls(cfg);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last_err = String::from("no other member in --initial-cluster");
    while tokio::time::Instant::now() < deadline {
        for url in &urls {
            match ask_members(url).await {
                Ok((cid, nodes)) => {
                    for (id, n) in &nodes {
                        let mut theirs = n.peer_urls.clone();
                        theirs.sort();
                        if theirs == mine {
                            return Ok((*id, cid));
                        }
                    }
                    return Err(format!(
                        "cluster {cid:x} (asked at {url}) has no member with peer URLs {}: add this member first with 'etcdctl member add {} --peer-urls={}'",
                        mine.join(","),
                        cfg.name,
                        mine.join(",")
                    ));
                }
                Err(e) => last_err = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "--initial-cluster-state=existing: cannot reach any member of --initial-cluster to join ({last_err})"
    ))
}

/// `initial-cluster-state=new`: if a listed peer already runs a different cluster, this
/// member was meant to join it (`existing`), not to start a second cluster.
async fn refuse_if_peers_differ(cfg: &Config, cid: u64) -> Result<(), String> {
    for url in other_peer_urls(cfg)? {
        if let Ok((theirs, _)) = ask_members(&url).await {
            if theirs != cid {
                return Err(format!(
                    "member ID mismatch: with --initial-cluster-state=new this member would bootstrap cluster {cid:x}, but peer {url} belongs to cluster {theirs:x}; if this member was added with 'etcdctl member add', start it with --initial-cluster-state=existing (and an empty data dir)"
                ));
            }
        }
    }
    Ok(())
}

/// Validates the bootstrap settings and derives the member and cluster IDs as etcd does.
fn new_cluster(cfg: &Config) -> Result<(u64, u64, BTreeMap<u64, MemberNode>), String> {
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
    plan_cluster(&cfg.name, &initial, &cfg.initial_cluster_token, &advertise)
}

/// The member IDs and cluster ID etcd derives from `initial-cluster` and its token, after
/// checking that `name` is listed with exactly its advertised peer URLs.
pub fn plan_cluster(
    name: &str,
    initial: &str,
    token: &str,
    advertise: &[String],
) -> Result<(u64, u64, BTreeMap<u64, MemberNode>), String> {
    let ic = InitialCluster::parse(initial).map_err(|e| e.to_string())?;
    let Some((_, urls)) = ic.members.iter().find(|(n, _)| *n == name) else {
        return Err(format!(
            "couldn't find local name {name:?} in the initial cluster configuration (--initial-cluster={initial}); add {name}=<peer URL> or fix --name"
        ));
    };
    let mut a = advertise.to_vec();
    let mut b = urls.clone();
    a.sort();
    b.sort();
    if a != b {
        return Err(format!(
            "--initial-cluster has {name}={} but missing from --initial-advertise-peer-urls={} (they must list the same URLs)",
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
    let ids = ic.ids(token);
    let member_ids: Vec<u64> = ids.iter().map(|(id, _, _)| *id).collect();
    let cid = cluster_id(&member_ids);
    let mut nodes = BTreeMap::new();
    let mut me = 0;
    for (id, n, peer_urls) in ids {
        if n == name {
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
