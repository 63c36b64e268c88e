//! The raft state machine: applies committed entries to the MVCC store. Its state is
//! persistent (RocksDB), so the applied log id and membership are stored with the data in the
//! same batch, and entries after the last applied one are applied again after a restart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, StoredMembership};

use super::{io_err, LogId, Pb, Response, SnapshotData, StorageError, TypeConfig};
use crate::api::retcdpb::internal_request::Request as Rq;
use crate::api::retcdpb::InternalResponse;
use crate::apply;
use crate::cluster::MemberNode;
use crate::lease::{LeaseRecord, Lessor};
use crate::mvcc::Store;

type Membership = StoredMembership<u64, MemberNode>;

/// Asks for a snapshot (and so a log purge) every `snapshot-count` applied requests, as etcd
/// counts them: a batch entry counts each request it carries. openraft's own policy counts
/// entries, and batch entries would let the log grow up to a thousand times longer between
/// purges under load; it stays on as a backstop (entries never outnumber requests).
pub struct SnapshotTrigger {
    every: u64,
    since: AtomicU64,
    due: Notify,
}

impl SnapshotTrigger {
    pub fn new(every: u64) -> SnapshotTrigger {
        SnapshotTrigger {
            every: every.max(1),
            since: AtomicU64::new(0),
            due: Notify::new(),
        }
    }

    /// Counts `n` applied requests; true when a snapshot is due (then it was signalled).
    fn applied(&self, n: u64) -> bool {
        let since = self.since.fetch_add(n, Ordering::Relaxed) + n;
        let due = since >= self.every && since - n < self.every;
        if due {
            self.due.notify_one();
        }
        due
    }

    fn snapshotted(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    /// Runs until raft stops: triggers a snapshot whenever one is due.
    pub async fn run(self: Arc<Self>, raft: super::Raft) {
        loop {
            self.due.notified().await;
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

pub struct StateMachine {
    store: Arc<Store>,
    watch: Arc<crate::watch::WatchHub>,
    lessor: Arc<Lessor>,
    alarms: Arc<crate::alarm::Alarms>,
    auth: Arc<crate::auth::AuthStore>,
    applied: Option<LogId>,
    membership: Membership,
    warn_apply: Duration,
    /// Where checkpoints for peers are taken (`<data-dir>/member/snap`).
    snap_dir: PathBuf,
    snapshots: Arc<SnapshotTrigger>,
    /// How far the raft log is durable here: the leader's own entries are applied only once
    /// its log holds them (see `log_store`).
    durable: Option<tokio::sync::watch::Receiver<u64>>,
}

impl StateMachine {
    pub fn open(
        store: Arc<Store>,
        watch: Arc<crate::watch::WatchHub>,
        lessor: Arc<Lessor>,
        alarms: Arc<crate::alarm::Alarms>,
        auth: Arc<crate::auth::AuthStore>,
        warn_apply: Duration,
        snap_dir: PathBuf,
    ) -> Result<StateMachine, StorageError> {
        let b = store.backend();
        b.check_installing()
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?;
        // Leftover checkpoints of a previous run are never needed again.
        let _ = std::fs::remove_dir_all(&snap_dir);
        let applied: Option<LogId> = b
            .get_meta::<Option<LogId>>("applied")
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
            .flatten();
        let membership: Membership = b
            .get_meta("membership")
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
            .unwrap_or_default();
        Ok(StateMachine {
            store,
            watch,
            lessor,
            alarms,
            auth,
            applied,
            membership,
            warn_apply,
            snap_dir,
            snapshots: Arc::new(SnapshotTrigger::new(u64::MAX)),
            durable: None,
        })
    }

    /// Applies an entry only once the raft log is durable up to it (`LogStore::durable`).
    pub fn wait_for_log(&mut self, durable: tokio::sync::watch::Receiver<u64>) {
        self.durable = Some(durable);
    }

    /// Asks for a snapshot every `count` applied requests; run the returned trigger once raft
    /// is up (`SnapshotTrigger::run`).
    pub fn snapshot_every(&mut self, count: u64) -> Arc<SnapshotTrigger> {
        self.snapshots = Arc::new(SnapshotTrigger::new(count));
        self.snapshots.clone()
    }

    fn meta(&self) -> SnapshotMeta<u64, MemberNode> {
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: match self.applied {
                Some(l) => format!("{}-{}", l.leader_id.term, l.index),
                None => "0-0".into(),
            },
        }
    }
}

/// Builds the snapshot that lets raft compact its log: the applied state is already durable
/// in RocksDB once the WAL is synced, so nothing is copied.
pub struct SnapshotBuilder {
    store: Arc<Store>,
    meta: SnapshotMeta<u64, MemberNode>,
    snapshots: Arc<SnapshotTrigger>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Raft purges log entries covered by this snapshot: make the applied state durable first.
        self.store
            .backend()
            .db
            .flush_wal(true)
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        self.snapshots.snapshotted();
        tracing::info!(
            applied_index = self.meta.last_log_id.map(|l| l.index).unwrap_or(0),
            snapshot_count = self.snapshots.every,
            "triggering snapshot"
        );
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::default(),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        if let (Some(d), Some(last)) = (self.durable.as_mut(), entries.last()) {
            crate::raft::log_store::wait_durable(d, last.log_id.index)
                .await
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        }
        let started = Instant::now();
        let mut out = Vec::new();
        let mut txn = self.store.write();
        let mut membership_changed = false;
        let mut requests = 0u64;
        for entry in entries {
            requests += 1;
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => out.push(Response::One(Ok(Pb(InternalResponse::default())))),
                EntryPayload::Normal(Pb(req)) => {
                    let mut one = |r| {
                        apply::apply(&mut txn, r, &self.lessor, &self.alarms, &self.auth).map(Pb)
                    };
                    out.push(match req.request {
                        Some(Rq::Batch(b)) => {
                            requests += (b.requests.len() as u64).saturating_sub(1);
                            Response::Batch(b.requests.into_iter().map(&mut one).collect())
                        }
                        _ => Response::One(one(req)),
                    });
                }
                EntryPayload::Membership(m) => {
                    // A removed member's published attributes go with it.
                    for (id, _) in self.membership.membership().nodes() {
                        if m.get_node(id).is_none() {
                            if let Err(e) = txn.delete_meta(&crate::cluster::attrs_key(*id)) {
                                return Err(io_err(
                                    ErrorSubject::StateMachine,
                                    ErrorVerb::Write,
                                    e,
                                ));
                            }
                        }
                    }
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    membership_changed = true;
                    out.push(Response::One(Ok(Pb(InternalResponse::default()))));
                }
            }
        }
        let backend = self.store.backend().clone();
        backend
            .put_meta(txn.batch(), "applied", &self.applied)
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        if membership_changed {
            backend
                .put_meta(txn.batch(), "membership", &self.membership)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        }
        let events = txn
            .commit()
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        self.watch.notify(&events);
        self.snapshots.applied(requests);
        let took = started.elapsed();
        if took > self.warn_apply {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                entries = out.len(),
                "apply request took too long"
            );
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            meta: self.meta(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, MemberNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        let dir = snapshot
            .dir
            .clone()
            .ok_or_else(|| io_err(subject(), ErrorVerb::Write, "received snapshot has no data"))?;
        let backend = self.store.backend().clone();
        let started = Instant::now();
        tokio::task::block_in_place(|| backend.install_checkpoint(&dir))
            .map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
        self.store
            .reload()
            .map_err(|e| io_err(subject(), ErrorVerb::Read, e))?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let records: Vec<LeaseRecord> = self
            .store
            .backend()
            .meta_with_prefix("lease/")
            .map_err(|e| io_err(subject(), ErrorVerb::Read, e))?;
        self.lessor.reset(records, self.store.take_attached());
        self.auth
            .load(self.store.backend())
            .map_err(|e| io_err(subject(), ErrorVerb::Read, e))?;
        self.alarms.reset(
            self.store
                .backend()
                .meta_with_prefix("alarm/")
                .map_err(|e| io_err(subject(), ErrorVerb::Read, e))?,
        );
        self.watch.resync_all();
        tracing::info!(
            snapshot = %meta.snapshot_id,
            revision = self.store.current_rev(),
            took_ms = started.elapsed().as_millis() as u64,
            "installed snapshot from the leader"
        );
        drop(snapshot);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        if self.applied.is_none() {
            return Ok(None);
        }
        // A point-in-time checkpoint of the applied state, for a peer that needs it.
        let meta = self.meta();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = self
            .snap_dir
            .join(format!("send-{}-{nanos}", meta.snapshot_id));
        let backend = self.store.backend().clone();
        tokio::task::block_in_place(|| backend.checkpoint(&dir))
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData { dir: Some(dir) }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::SnapshotTrigger;

    #[test]
    fn a_snapshot_is_due_every_count_of_requests() {
        let t = SnapshotTrigger::new(100);
        assert!(!t.applied(60));
        assert!(t.applied(45)); // a batch crossing the count
        assert!(!t.applied(500)); // signalled once until the snapshot is taken
        t.snapshotted();
        assert!(!t.applied(99));
        assert!(t.applied(1));
        let one = SnapshotTrigger::new(0);
        assert!(one.applied(1));
    }
}
