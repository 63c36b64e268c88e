//! The raft log in RocksDB (column families `raft_log` and `raft_state`).
//!
//! Writes go through one writer thread, in order. The writer drains whatever is queued and
//! commits it as one RocksDB batch with one fsync, so concurrent proposals share an fsync. A
//! follower's append finding nothing queued is written by the caller (openraft's core) itself:
//! the leader waits for it, and a round through the writer thread would only add two wakeups.
//! Appended entries stay readable from an in-memory tail until they are durable (and a little
//! longer, for replication).
//!
//! The leader's own entries are reported flushed to openraft as soon as they are queued, so
//! openraft sends them to the followers while the leader writes and fsyncs them (as etcd's
//! leader does, raft thesis 10.2.1). Nothing may treat such an entry as committed before it
//! is durable here too: the state machine waits for [`LogStore::durable`] before applying it,
//! and AppendEntries wait for it before telling followers a commit index (see the network).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogId, Vote};
use parking_lot::Mutex;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use tokio::sync::{oneshot, watch};

use super::{io_err, LogId, StorageError, TypeConfig};
use crate::backend::{Backend, CF_RAFT_LOG, CF_RAFT_STATE};

type Entry = openraft::Entry<TypeConfig>;

/// Entries kept in memory behind the last durable one.
const TAIL_KEEP: u64 = 2048;

/// The most a follower's append written in place (not by the writer thread) may hold.
const INLINE_MAX_BYTES: usize = 64 << 10;

enum Op {
    Append {
        rows: Vec<(u64, Vec<u8>)>,
        last: u64,
        /// None: already answered (the leader's own entries, reported flushed when queued; a
        /// follower's append written in place by its caller).
        done: Option<LogFlushed<TypeConfig>>,
    },
    /// Raw state write (vote, purged) plus optional log deletion, then notify.
    State {
        puts: Vec<(&'static str, Vec<u8>)>,
        delete_from: Option<u64>,
        delete_to_inclusive: Option<u64>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
}

struct Shared {
    tail: Mutex<BTreeMap<u64, Entry>>,
    last_purged: Mutex<Option<LogId>>,
    /// The term this member leads in by its last saved vote (0: not leading).
    leading_term: AtomicU64,
    /// The last commit index openraft saved and its encoding, not yet written: it goes into
    /// the writer's next batch that makes the log durable up to it.
    committed: Mutex<Option<(u64, Vec<u8>)>>,
    /// Ops sent to the writer thread and not yet written.
    queued: AtomicU64,
    /// Held while a batch is written.
    io: Mutex<Io>,
}

/// How far the log is durable, and who hears of it.
struct Io {
    durable_index: u64,
    durable: watch::Sender<u64>,
}

#[derive(Clone)]
pub struct LogStore {
    backend: Arc<Backend>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Op>,
    self_id: u64,
    durable: watch::Receiver<u64>,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn encode<T: serde::Serialize>(v: &T, what: ErrorSubject<u64>) -> Result<Vec<u8>, StorageError> {
    bincode::serialize(v).map_err(|e| io_err(what, ErrorVerb::Write, e))
}

impl LogStore {
    pub fn open(backend: Arc<Backend>, self_id: u64) -> Result<LogStore, StorageError> {
        let last_purged: Option<LogId> = read_state(&backend, "purged")?;
        // What a previous run left on disk is as durable as it will get.
        let on_disk = last_on_disk(&backend)?
            .or(last_purged)
            .map_or(0, |l| l.index);
        let (durable_tx, durable) = watch::channel(on_disk);
        let shared = Arc::new(Shared {
            tail: Mutex::new(BTreeMap::new()),
            last_purged: Mutex::new(last_purged),
            leading_term: AtomicU64::new(0),
            committed: Mutex::new(None),
            queued: AtomicU64::new(0),
            io: Mutex::new(Io {
                durable_index: on_disk,
                durable: durable_tx,
            }),
        });
        let (tx, rx) = mpsc::channel::<Op>();
        let (b, s) = (backend.clone(), shared.clone());
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_loop(b, s, rx))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        Ok(LogStore {
            backend,
            shared,
            tx,
            self_id,
            durable,
        })
    }

    /// The index up to which the log is written and fsynced.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    /// Hands `op` to the writer thread.
    fn queue(&self, op: Op, what: ErrorSubject<u64>) -> Result<(), StorageError> {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(op).map_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            io_err(what, ErrorVerb::Write, "raft log writer stopped")
        })
    }

    async fn write_state(
        &self,
        puts: Vec<(&'static str, Vec<u8>)>,
        delete_from: Option<u64>,
        delete_to_inclusive: Option<u64>,
    ) -> Result<(), StorageError> {
        let (done, rx) = oneshot::channel();
        self.queue(
            Op::State {
                puts,
                delete_from,
                delete_to_inclusive,
                done: Some(done),
            },
            ErrorSubject::Store,
        )?;
        rx.await
            .map_err(|_| {
                io_err(
                    ErrorSubject::Store,
                    ErrorVerb::Write,
                    "raft log writer stopped",
                )
            })?
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }
}

/// The id of the last entry in the log on disk.
fn last_on_disk(backend: &Backend) -> Result<Option<LogId>, StorageError> {
    let cf = backend
        .cf(CF_RAFT_LOG)
        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
    let mut it = backend.db.iterator_cf(cf, IteratorMode::End);
    match it.next() {
        None => Ok(None),
        Some(Ok((_, v))) => {
            let e: Entry = bincode::deserialize(&v)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            Ok(Some(*e.get_log_id()))
        }
        Some(Err(e)) => Err(io_err(ErrorSubject::Logs, ErrorVerb::Read, e)),
    }
}

fn read_state<T: serde::de::DeserializeOwned>(
    backend: &Backend,
    name: &str,
) -> Result<Option<T>, StorageError> {
    let cf = backend
        .cf(CF_RAFT_STATE)
        .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))?;
    match backend
        .db
        .get_cf(cf, name)
        .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))?
    {
        None => Ok(None),
        Some(b) => bincode::deserialize(&b)
            .map(Some)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e)),
    }
}

/// Whether `id` is an entry this member created as leader in the term it leads in now
/// (`leading`, 0 when it does not lead): a follower's entries come from another leader, or
/// from an earlier term.
fn leaders_own(leading: u64, self_id: u64, id: &LogId) -> bool {
    leading != 0 && id.leader_id.term == leading && id.leader_id.node_id == self_id
}

/// Waits until the log is durable up to `index`; an error once the log writer has stopped.
pub async fn wait_durable(durable: &mut watch::Receiver<u64>, index: u64) -> Result<(), String> {
    durable
        .wait_for(|d| *d >= index)
        .await
        .map(|_| ())
        .map_err(|_| "the raft log writer stopped".to_string())
}

/// Writes `ops` as one RocksDB batch with one fsync, in the order given; then publishes how
/// far the log is durable and trims the in-memory tail. Returns the last index appended.
fn write_ops(backend: &Backend, shared: &Shared, ops: &[Op]) -> Result<u64, String> {
    let mut io = shared.io.lock();
    let log_cf = backend.cf(CF_RAFT_LOG).map_err(|e| e.to_string())?;
    let state_cf = backend.cf(CF_RAFT_STATE).map_err(|e| e.to_string())?;
    let mut batch = WriteBatch::default();
    let mut last_appended = 0;
    let mut durable_after = io.durable_index;
    for op in ops {
        match op {
            Op::Append { rows, last, .. } => {
                for (i, b) in rows {
                    batch.put_cf(log_cf, key(*i), b);
                }
                last_appended = last_appended.max(*last);
                durable_after = *last;
            }
            Op::State {
                puts,
                delete_from,
                delete_to_inclusive,
                ..
            } => {
                for (k, v) in puts {
                    batch.put_cf(state_cf, k, v);
                }
                if let Some(from) = delete_from {
                    batch.delete_range_cf(log_cf, key(*from), key(u64::MAX));
                    // The log ends before `from` until something is appended again.
                    durable_after = durable_after.min(from.saturating_sub(1));
                }
                if let Some(to) = delete_to_inclusive {
                    batch.delete_range_cf(log_cf, key(0), key(to.saturating_add(1)));
                }
            }
        }
    }
    // The commit index rides along once the log holds what it refers to (a restart must not
    // find a commit index beyond its log).
    {
        let mut committed = shared.committed.lock();
        if committed.as_ref().is_some_and(|(i, _)| *i <= durable_after) {
            if let Some((_, b)) = committed.take() {
                batch.put_cf(state_cf, "committed", b);
            }
        }
    }
    backend.write(batch, true).map_err(|e| e.to_string())?;
    io.durable_index = durable_after;
    io.durable.send_if_modified(|d| {
        let changed = *d != durable_after;
        *d = durable_after;
        changed
    });
    drop(io);
    if last_appended > TAIL_KEEP {
        let mut tail = shared.tail.lock();
        let keep_from = last_appended - TAIL_KEEP;
        // Drop from the front: split_off would move the whole kept tail every batch.
        while let Some(e) = tail.first_entry() {
            if *e.key() >= keep_from {
                break;
            }
            e.remove();
        }
    }
    Ok(last_appended)
}

fn writer_loop(backend: Arc<Backend>, shared: Arc<Shared>, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while let Ok(more) = rx.try_recv() {
            ops.push(more);
        }
        let result = write_ops(&backend, &shared, &ops);
        if let Err(e) = &result {
            if ops
                .iter()
                .any(|op| matches!(op, Op::Append { done: None, .. }))
            {
                // The leader already let these entries go to its followers: like etcd on a
                // failed WAL write, stop rather than serve a log it could not keep.
                tracing::error!(error = %e, "cannot write the raft log; stopping the member");
                std::process::exit(1);
            }
        }
        shared.queued.fetch_sub(ops.len() as u64, Ordering::AcqRel);
        for op in ops {
            match op {
                Op::Append { done, .. } => {
                    if let Some(done) = done {
                        done.log_io_completed(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.clone())),
                        )
                    }
                }
                Op::State { done, .. } => {
                    if let Some(d) = done {
                        let _ = d.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                    }
                }
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let (tail_first, from_tail): (Option<u64>, Vec<Entry>) = {
            let tail = self.shared.tail.lock();
            (
                tail.keys().next().copied(),
                tail.range(start..end).map(|(_, e)| e.clone()).collect(),
            )
        };
        let disk_end = match tail_first {
            Some(f) => f.min(end),
            None => end,
        };
        let mut out = Vec::new();
        if start < disk_end {
            let cf = self
                .backend
                .cf(CF_RAFT_LOG)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let from = key(start);
            for item in self
                .backend
                .db
                .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward))
            {
                let (k, v) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let idx = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0xff; 8]));
                if idx >= disk_end {
                    break;
                }
                let e: Entry = bincode::deserialize(&v)
                    .map_err(|e| io_err(ErrorSubject::LogIndex(idx), ErrorVerb::Read, e))?;
                out.push(e);
            }
        }
        out.extend(from_tail);
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = *self.shared.last_purged.lock();
        let tail_last = self
            .shared
            .tail
            .lock()
            .values()
            .next_back()
            .map(|e| *e.get_log_id());
        let last = match tail_last {
            Some(l) => Some(l),
            None => last_on_disk(&self.backend)?,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let b = encode(vote, ErrorSubject::Vote)?;
        self.write_state(vec![("vote", b)], None, None).await?;
        let leading = vote.committed && vote.leader_id.node_id == self.self_id;
        self.shared.leading_term.store(
            if leading { vote.leader_id.term } else { 0 },
            Ordering::Release,
        );
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        read_state(&self.backend, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let b = encode(&committed, ErrorSubject::Store)?;
        // Not written on its own: it goes with the writer's next batch (the next append on
        // a busy member). Losing it only means re-learning the commit index from the leader;
        // a write of its own for every commit would cost the writer a round per request.
        *self.shared.committed.lock() = Some((committed.map_or(0, |c| c.index), b));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(read_state::<Option<LogId>>(&self.backend, "committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut last = 0;
        let leading = self.shared.leading_term.load(Ordering::Acquire);
        let mut own = true;
        {
            let mut tail = self.shared.tail.lock();
            for e in entries {
                let id = *e.get_log_id();
                own &= leaders_own(leading, self.self_id, &id);
                let row = encode(&e, ErrorSubject::Log(id))?;
                bytes += row.len();
                rows.push((id.index, row));
                last = id.index;
                tail.insert(id.index, e);
            }
        }
        if !own && self.shared.queued.load(Ordering::Acquire) == 0 && bytes <= INLINE_MAX_BYTES {
            // A follower's append, with nothing ahead of it for the writer (openraft's core
            // is the only caller, so nothing can be queued meanwhile): written here, which
            // saves the round through the writer thread while the leader waits for it. Big
            // appends (a follower catching up) go to the writer, not to block the runtime.
            let op = Op::Append {
                rows,
                last,
                done: None,
            };
            let result = write_ops(&self.backend, &self.shared, std::slice::from_ref(&op));
            callback.log_io_completed(result.map(|_| ()).map_err(std::io::Error::other));
            return Ok(());
        }
        // The leader's own entries count as flushed once queued; others once written.
        let (done, flushed_now) = if own {
            (None, Some(callback))
        } else {
            (Some(callback), None)
        };
        self.queue(Op::Append { rows, last, done }, ErrorSubject::Logs)?;
        if let Some(callback) = flushed_now {
            callback.log_io_completed(Ok(()));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut tail = self.shared.tail.lock();
            let _ = tail.split_off(&log_id.index);
        }
        self.write_state(Vec::new(), Some(log_id.index), None).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let b = encode(&log_id, ErrorSubject::Store)?;
        {
            let mut tail = self.shared.tail.lock();
            *tail = tail.split_off(&(log_id.index + 1));
            *self.shared.last_purged.lock() = Some(log_id);
        }
        self.write_state(vec![("purged", b)], None, Some(log_id.index))
            .await
    }
}

/// Seeds a brand-new member's raft log with the initial membership, as etcd's static
/// bootstrap does: every member of `initial-cluster` writes the same entry (term 1, index 0)
/// and a term-1 vote, so no member has to "initialize" the others and the first leader is
/// elected in term 2, as in etcd.
pub fn seed_bootstrap(
    backend: &Backend,
    nodes: std::collections::BTreeMap<u64, crate::cluster::MemberNode>,
) -> Result<(), StorageError> {
    let (lowest, membership) = initial_membership(nodes);
    let entry = Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, lowest), 0),
        payload: openraft::EntryPayload::Membership(membership),
    };
    let vote = Vote::new(1, lowest);
    let log_cf = backend
        .cf(CF_RAFT_LOG)
        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
    let state_cf = backend
        .cf(CF_RAFT_STATE)
        .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
    let mut batch = WriteBatch::default();
    batch.put_cf(log_cf, key(0), encode(&entry, ErrorSubject::Logs)?);
    batch.put_cf(state_cf, "vote", encode(&vote, ErrorSubject::Vote)?);
    backend
        .write(batch, true)
        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
}

/// Seeds the raft state of a data dir whose state machine already holds data (a restore, or
/// `--force-new-cluster`): the membership counts as applied at index 0 and the log as purged
/// up to it. A member that joins later then receives a snapshot of the data rather than a
/// replay of a log that never contained it.
pub fn seed_applied(
    backend: &Backend,
    nodes: std::collections::BTreeMap<u64, crate::cluster::MemberNode>,
) -> Result<(), StorageError> {
    let (lowest, membership) = initial_membership(nodes);
    let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(1, lowest), 0);
    let stored = openraft::StoredMembership::new(Some(log_id), membership);
    let vote = Vote::new(1, lowest);
    let state_cf = backend
        .cf(CF_RAFT_STATE)
        .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
    let mut batch = WriteBatch::default();
    batch.put_cf(state_cf, "vote", encode(&vote, ErrorSubject::Vote)?);
    batch.put_cf(state_cf, "purged", encode(&log_id, ErrorSubject::Logs)?);
    let meta_err = |e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e);
    backend
        .put_meta(&mut batch, "applied", &Some(log_id))
        .map_err(meta_err)?;
    backend
        .put_meta(&mut batch, "membership", &stored)
        .map_err(meta_err)?;
    backend
        .write(batch, true)
        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
}

/// Every node a voter; the lowest ID holds the first term's vote.
fn initial_membership(
    nodes: std::collections::BTreeMap<u64, crate::cluster::MemberNode>,
) -> (u64, openraft::Membership<u64, crate::cluster::MemberNode>) {
    let voters: std::collections::BTreeSet<u64> = nodes.keys().copied().collect();
    let lowest = voters.iter().next().copied().unwrap_or(0);
    (lowest, openraft::Membership::new(vec![voters], nodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(term: u64, node: u64, index: u64) -> (Entry, LogId) {
        let id = openraft::LogId::new(openraft::CommittedLeaderId::new(term, node), index);
        let e = Entry {
            log_id: id,
            payload: openraft::EntryPayload::Blank,
        };
        (e, id)
    }

    #[test]
    fn only_the_current_leaders_entries_of_its_term_are_its_own() {
        let (_, mine) = entry(5, 7, 10);
        assert!(leaders_own(5, 7, &mine));
        assert!(!leaders_own(0, 7, &mine), "not leading");
        assert!(!leaders_own(6, 7, &mine), "from an earlier term of its own");
        let (_, other) = entry(5, 8, 10);
        assert!(!leaders_own(5, 7, &other), "another leader's entry");
    }

    /// A log store of member 7 on a fresh database (keep the directory while it is used).
    fn open_store() -> (tempfile::TempDir, Arc<Backend>, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(Backend::open(dir.path(), None, true).unwrap());
        let store = LogStore::open(backend.clone(), 7).unwrap();
        (dir, backend, store)
    }

    /// Entries `from..=to` of `term` by `node`, put in the store's in-memory tail, as rows.
    fn rows(store: &LogStore, term: u64, node: u64, from: u64, to: u64) -> Vec<(u64, Vec<u8>)> {
        let mut rows = Vec::new();
        for i in from..=to {
            let (e, id) = entry(term, node, i);
            rows.push((i, encode(&e, ErrorSubject::Log(id)).unwrap()));
            store.shared.tail.lock().insert(i, e);
        }
        rows
    }

    /// Queues this leader's (7's) own entries `from..=to` of term 3; waits until durable.
    async fn append_own(store: &LogStore, from: u64, to: u64) {
        let rows = rows(store, 3, 7, from, to);
        store
            .queue(
                Op::Append {
                    rows,
                    last: to,
                    done: None,
                },
                ErrorSubject::Logs,
            )
            .unwrap();
        let mut durable = store.durable();
        tokio::time::timeout(Duration::from_secs(10), wait_durable(&mut durable, to))
            .await
            .unwrap()
            .unwrap();
    }

    /// The commit index is written with the first batch that makes the log hold it, never
    /// ahead of the entries it refers to.
    #[tokio::test]
    async fn the_commit_index_goes_to_disk_with_the_log_it_refers_to() {
        let (_dir, _, mut store) = open_store();
        store.save_vote(&Vote::new_committed(3, 7)).await.unwrap();
        append_own(&store, 1, 2).await;
        store.save_committed(Some(entry(3, 7, 4).1)).await.unwrap();
        assert_eq!(
            store.read_committed().await.unwrap(),
            None,
            "not written alone"
        );
        append_own(&store, 3, 3).await;
        assert_eq!(
            store.read_committed().await.unwrap(),
            None,
            "the log ends at 3"
        );
        append_own(&store, 4, 5).await;
        assert_eq!(
            store.read_committed().await.unwrap(),
            Some(entry(3, 7, 4).1)
        );
        store.save_committed(Some(entry(3, 7, 5).1)).await.unwrap();
        store.save_vote(&Vote::new_committed(4, 8)).await.unwrap();
        assert_eq!(
            store.read_committed().await.unwrap(),
            Some(entry(3, 7, 5).1)
        );
    }

    /// What the writer queued is counted until written (a follower's append is written in
    /// place only with nothing queued), and a write in place publishes its durable index.
    #[tokio::test]
    async fn a_write_in_place_follows_the_queue_and_publishes_its_durable_index() {
        let (_dir, backend, mut store) = open_store();
        store.save_vote(&Vote::new_committed(3, 8)).await.unwrap();
        append_own(&store, 1, 3).await;
        // The writer counts its ops done right after publishing the durable index.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.shared.queued.load(Ordering::Acquire) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "queued ops never counted done"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let op = Op::Append {
            rows: rows(&store, 3, 8, 4, 6),
            last: 6,
            done: None,
        };
        assert_eq!(
            write_ops(&backend, &store.shared, std::slice::from_ref(&op)),
            Ok(6)
        );
        assert_eq!(*store.durable().borrow(), 6);
        assert_eq!(last_on_disk(&backend).unwrap().map(|l| l.index), Some(6));
    }

    /// The leader's own entries go to the writer without a callback; the durable index
    /// follows the writes, and a truncation takes it back to where the log now ends.
    #[tokio::test]
    async fn the_durable_index_follows_appends_and_truncations() {
        let (_dir, backend, mut store) = open_store();
        let durable = store.durable();
        assert_eq!(*durable.borrow(), 0);

        store.save_vote(&Vote::new_committed(3, 7)).await.unwrap();
        assert_eq!(store.shared.leading_term.load(Ordering::Acquire), 3);
        append_own(&store, 1, 5).await;
        assert_eq!(*durable.borrow(), 5);
        assert_eq!(last_on_disk(&backend).unwrap().map(|l| l.index), Some(5));

        store.truncate(entry(3, 7, 3).1).await.unwrap();
        assert_eq!(*durable.borrow(), 2);
        assert_eq!(last_on_disk(&backend).unwrap().map(|l| l.index), Some(2));

        // Another member's vote: this one no longer leads.
        store.save_vote(&Vote::new_committed(4, 8)).await.unwrap();
        assert_eq!(store.shared.leading_term.load(Ordering::Acquire), 0);

        // A reopened store starts from what is on disk.
        drop(store);
        let reopened = LogStore::open(backend, 7).unwrap();
        assert_eq!(*reopened.durable().borrow(), 2);
    }
}
