//! The MVCC store: a read view and a write transaction over the key index and RocksDB.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{KeyIndex, Revision};
use crate::api::mvccpb::{event::EventType, Event, KeyValue};
use crate::backend::{Backend, BackendError, Context, CF_KV};
use crate::error::EtcdError;

const KIND_PUT: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// A stored revision as etcd's bbolt holds it (what etcd's HashKV hashes): its revision, its
/// key (main, `_`, sub, and `t` for a deletion) and its value (the KeyValue; a deletion's
/// carries only the key). None for a row that is not a revision.
pub fn etcd_record<'v>(
    k: &[u8],
    v: &'v [u8],
) -> Option<(Revision, Vec<u8>, std::borrow::Cow<'v, [u8]>)> {
    let rev = Revision::decode(k)?;
    let (&kind, kv) = v.split_first()?;
    let mut key = Vec::with_capacity(18);
    key.extend_from_slice(&k[..8]);
    key.push(b'_');
    key.extend_from_slice(&k[8..]);
    if kind != KIND_TOMBSTONE {
        return Some((rev, key, std::borrow::Cow::Borrowed(kv)));
    }
    key.push(b't');
    let tomb = KeyValue {
        key: decode_value(v).ok()?.1.key,
        ..Default::default()
    };
    Some((rev, key, std::borrow::Cow::Owned(tomb.encode_to_vec())))
}

/// A stored revision's key, and whether it is a put (not a deletion).
pub fn record_key(v: &[u8]) -> Option<(Vec<u8>, bool)> {
    let (kind, kv) = decode_value(v).ok()?;
    Some((kv.key, kind != KIND_TOMBSTONE))
}

/// The end of a key range, decoded from etcd's `range_end` convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeEnd {
    /// Empty `range_end`: the key alone.
    Single,
    /// `range_end` = `\0`: every key >= key.
    Infinity,
    /// `[key, end)`.
    To(Vec<u8>),
}

impl RangeEnd {
    pub fn from_request(range_end: &[u8]) -> RangeEnd {
        match range_end {
            [] => RangeEnd::Single,
            [0] => RangeEnd::Infinity,
            e => RangeEnd::To(e.to_vec()),
        }
    }

    /// Whether `k` falls in `[key, self)`.
    pub fn contains(&self, key: &[u8], k: &[u8]) -> bool {
        match self {
            RangeEnd::Single => k == key,
            RangeEnd::Infinity => k >= key,
            RangeEnd::To(e) => k >= key && k < e.as_slice(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RangeOptions {
    /// 0 = no limit.
    pub limit: i64,
    /// <= 0 = the current revision.
    pub rev: i64,
    pub count_only: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range at the revision (ignores `limit`).
    pub count: i64,
    /// The store's current revision.
    pub rev: i64,
}

pub(super) struct Inner {
    index: BTreeMap<Box<[u8]>, KeyIndex>,
    /// Keys and their leases as found when loading (taken once by the lessor).
    attached: Vec<(Vec<u8>, i64)>,
    current_rev: i64,
    compact_rev: i64,
}

fn load_inner(backend: &Backend) -> Result<Inner, BackendError> {
    let mut index: BTreeMap<Box<[u8]>, KeyIndex> = BTreeMap::new();
    let mut last_rev = 0i64;
    let mut leases: HashMap<Vec<u8>, i64> = HashMap::new();
    {
        let cf = backend.cf(CF_KV)?;
        for item in backend.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.ctx("scan kv")?;
            let rev =
                Revision::decode(&k).ok_or_else(|| BackendError::Other("corrupt kv key".into()))?;
            let (kind, kv) = decode_value(&v).map_err(|e| BackendError::Other(e.to_string()))?;
            let ki = index.entry(kv.key.as_slice().into()).or_default();
            if kind == KIND_TOMBSTONE {
                leases.remove(&kv.key);
            } else if kv.lease != 0 {
                leases.insert(kv.key.clone(), kv.lease);
            } else {
                leases.remove(&kv.key);
            }
            if kind == KIND_TOMBSTONE {
                ki.tombstone(rev);
            } else {
                ki.restore_put(
                    rev,
                    Revision {
                        main: kv.create_revision,
                        sub: 0,
                    },
                    kv.version,
                );
            }
            last_rev = last_rev.max(rev.main);
        }
    }
    index.retain(|_, ki| !ki.generations.iter().all(|g| g.revs.is_empty()));
    let current_rev = backend
        .get_meta::<i64>("current_rev")?
        .unwrap_or(1)
        .max(last_rev)
        .max(1);
    let compact_rev = backend.get_meta::<i64>("compact_rev")?.unwrap_or(0);
    Ok(Inner {
        index,
        attached: leases.into_iter().collect(),
        current_rev,
        compact_rev,
    })
}

pub struct Store {
    backend: Arc<Backend>,
    inner: RwLock<Inner>,
}

fn storage_err(e: BackendError) -> EtcdError {
    EtcdError::Internal(e.to_string())
}

fn decode_value(b: &[u8]) -> Result<(u8, KeyValue), EtcdError> {
    let (&kind, rest) = b
        .split_first()
        .ok_or_else(|| EtcdError::Internal("corrupt kv record: empty value".into()))?;
    let kv = KeyValue::decode(rest)
        .map_err(|e| EtcdError::Internal(format!("corrupt kv record: {e}")))?;
    Ok((kind, kv))
}

fn encode_value(kind: u8, kv: &KeyValue) -> Vec<u8> {
    let mut b = Vec::with_capacity(1 + kv.encoded_len());
    b.push(kind);
    // Encoding into a Vec cannot run out of space.
    let _ = kv.encode(&mut b);
    b
}

impl Store {
    /// Opens the store and rebuilds the key index from RocksDB.
    pub fn open(backend: Arc<Backend>) -> Result<Store, BackendError> {
        let inner = load_inner(&backend)?;
        Ok(Store {
            backend,
            inner: RwLock::new(inner),
        })
    }

    /// Rebuilds the index after the storage underneath was replaced (snapshot install).
    pub fn reload(&self) -> Result<(), BackendError> {
        let inner = load_inner(&self.backend)?;
        *self.inner.write() = inner;
        Ok(())
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    pub fn current_rev(&self) -> i64 {
        self.inner.read().current_rev
    }

    /// The keys that had a lease when the store was (re)loaded, for the lessor.
    pub fn take_attached(&self) -> Vec<(Vec<u8>, i64)> {
        std::mem::take(&mut self.inner.write().attached)
    }

    pub fn compact_rev(&self) -> i64 {
        self.inner.read().compact_rev
    }

    /// Number of live keys.
    pub fn key_count(&self) -> usize {
        self.inner
            .read()
            .index
            .values()
            .filter(|k| !k.is_deleted())
            .count()
    }

    /// A consistent read view (writers wait while it is held).
    pub fn read(&self) -> ReadView<'_> {
        ReadView {
            store: self,
            inner: self.inner.read(),
        }
    }

    /// A write transaction: every revision it makes is committed in one RocksDB batch.
    pub fn write(&self) -> WriteTxn<'_> {
        WriteTxn {
            store: self,
            inner: self.inner.write(),
            batch: WriteBatch::default(),
            pending: HashMap::new(),
            events: Vec::new(),
        }
    }

    /// Every event with a revision in `[from, to]`, in revision order, from storage (what an
    /// unsynced watcher catches up with). Fails with `Compacted` when `from` was compacted.
    pub fn events_between(&self, from: i64, to: i64) -> Result<Vec<Event>, EtcdError> {
        if from < self.compact_rev() {
            return Err(EtcdError::Compacted);
        }
        let cf = self.backend.cf(CF_KV).map_err(storage_err)?;
        let start = Revision { main: from, sub: 0 }.encode();
        let end = Revision {
            main: to.saturating_add(1),
            sub: 0,
        }
        .encode();
        let mut out = Vec::new();
        for item in self
            .backend
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item.map_err(|e| EtcdError::Internal(format!("scan events: {e}")))?;
            if k.as_ref() >= end.as_slice() {
                break;
            }
            let (kind, kv) = decode_value(&v)?;
            out.push(Event {
                r#type: if kind == KIND_TOMBSTONE {
                    EventType::Delete as i32
                } else {
                    EventType::Put as i32
                },
                kv: Some(kv),
                prev_kv: None,
            });
        }
        Ok(out)
    }

    /// The value of `key` as of revision `rev` (None if absent then or compacted away).
    pub fn get_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        let view = self.read();
        if rev < view.compact_rev() || rev <= 0 {
            return None;
        }
        view.range(
            key,
            &RangeEnd::Single,
            RangeOptions {
                rev,
                ..Default::default()
            },
        )
        .ok()
        .and_then(|r| r.kvs.into_iter().next())
    }

    fn load(&self, rev: Revision) -> Result<KeyValue, EtcdError> {
        let cf = self.backend.cf(CF_KV).map_err(storage_err)?;
        let v = self
            .backend
            .db
            .get_pinned_cf(cf, rev.encode())
            .map_err(|e| EtcdError::Internal(format!("read revision {}: {e}", rev.main)))?
            .ok_or_else(|| {
                EtcdError::Internal(format!(
                    "revision {}.{} is in the index but not in storage",
                    rev.main, rev.sub
                ))
            })?;
        decode_value(&v).map(|(_, kv)| kv)
    }
}

/// Range over `inner` as of view revision `view_rev`, loading values with `load`.
fn range_in(
    inner: &Inner,
    view_rev: i64,
    key: &[u8],
    end: &RangeEnd,
    opts: RangeOptions,
    load: impl Fn(Revision) -> Result<KeyValue, EtcdError>,
) -> Result<RangeResult, EtcdError> {
    let rev = if opts.rev <= 0 { view_rev } else { opts.rev };
    if rev > view_rev {
        return Err(EtcdError::FutureRev);
    }
    if rev < inner.compact_rev {
        return Err(EtcdError::Compacted);
    }
    let mut revs = Vec::new();
    let mut count = 0i64;
    let mut visit = |ki: &KeyIndex| {
        if let Some(at) = ki.get(rev) {
            count += 1;
            if !opts.count_only && (opts.limit <= 0 || (revs.len() as i64) < opts.limit) {
                revs.push(at.modified);
            }
        }
    };
    match end {
        RangeEnd::Single => {
            if let Some(ki) = inner.index.get(key) {
                visit(ki);
            }
        }
        RangeEnd::Infinity => {
            for (_, ki) in inner
                .index
                .range::<[u8], _>((Bound::Included(key), Bound::Unbounded))
            {
                visit(ki);
            }
        }
        RangeEnd::To(e) => {
            if e.as_slice() > key {
                for (_, ki) in inner
                    .index
                    .range::<[u8], _>((Bound::Included(key), Bound::Excluded(e.as_slice())))
                {
                    visit(ki);
                }
            }
        }
    }
    let kvs = revs.into_iter().map(load).collect::<Result<Vec<_>, _>>()?;
    Ok(RangeResult {
        kvs,
        count,
        rev: view_rev,
    })
}

pub struct ReadView<'a> {
    store: &'a Store,
    inner: RwLockReadGuard<'a, Inner>,
}

impl ReadView<'_> {
    pub fn rev(&self) -> i64 {
        self.inner.current_rev
    }

    pub fn compact_rev(&self) -> i64 {
        self.inner.compact_rev
    }

    pub fn range(
        &self,
        key: &[u8],
        end: &RangeEnd,
        opts: RangeOptions,
    ) -> Result<RangeResult, EtcdError> {
        range_in(&self.inner, self.inner.current_rev, key, end, opts, |r| {
            self.store.load(r)
        })
    }
}

pub struct WriteTxn<'a> {
    store: &'a Store,
    inner: RwLockWriteGuard<'a, Inner>,
    batch: WriteBatch,
    /// Values written by this transaction, readable before the batch reaches RocksDB.
    pending: HashMap<Revision, KeyValue>,
    /// The events of this transaction, in revision order, for watchers.
    events: Vec<Event>,
}

impl<'a> WriteTxn<'a> {
    pub fn current_rev(&self) -> i64 {
        self.inner.current_rev
    }

    /// Starts the next revision.
    pub fn begin(&mut self) -> RevTxn<'_, 'a> {
        let main = self.inner.current_rev + 1;
        RevTxn {
            txn: self,
            main,
            sub: 0,
        }
    }

    /// Stores a meta record in this transaction's batch.
    pub fn put_meta<T: serde::Serialize>(&mut self, key: &str, v: &T) -> Result<(), EtcdError> {
        self.store
            .backend
            .put_meta(&mut self.batch, key, v)
            .map_err(storage_err)
    }

    /// Stores an already encoded meta record in this transaction's batch.
    pub fn put_meta_raw(&mut self, key: &str, v: &[u8]) -> Result<(), EtcdError> {
        let cf = self
            .store
            .backend
            .cf(crate::backend::CF_META)
            .map_err(storage_err)?;
        self.batch.put_cf(cf, key, v);
        Ok(())
    }

    /// Deletes a meta record in this transaction's batch.
    pub fn delete_meta(&mut self, key: &str) -> Result<(), EtcdError> {
        let cf = self
            .store
            .backend
            .cf(crate::backend::CF_META)
            .map_err(storage_err)?;
        self.batch.delete_cf(cf, key);
        Ok(())
    }

    /// The underlying batch, for records that must commit atomically with the KV changes.
    pub fn batch(&mut self) -> &mut WriteBatch {
        &mut self.batch
    }

    /// Compacts history up to `rev`: superseded versions at or before `rev` are removed
    /// physically in this transaction's batch.
    pub fn compact(&mut self, rev: i64) -> Result<(), EtcdError> {
        if rev <= self.inner.compact_rev {
            return Err(EtcdError::Compacted);
        }
        if rev > self.inner.current_rev {
            return Err(EtcdError::FutureRev);
        }
        let mut keep = HashSet::new();
        self.inner.index.retain(|_, ki| !ki.compact(rev, &mut keep));
        let cf = self.store.backend.cf(CF_KV).map_err(storage_err)?;
        let from = Revision { main: 0, sub: 0 }.encode();
        let to = Revision {
            main: rev + 1,
            sub: 0,
        }
        .encode();
        let iter = self
            .store
            .backend
            .db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward));
        for item in iter {
            let (k, _) = item.map_err(|e| EtcdError::Internal(format!("compaction scan: {e}")))?;
            if k.as_ref() >= to.as_slice() {
                break;
            }
            if let Some(r) = Revision::decode(&k) {
                if !keep.contains(&r) {
                    self.batch.delete_cf(cf, &k);
                }
            }
        }
        let stale: Vec<Revision> = self
            .pending
            .keys()
            .filter(|r| r.main <= rev && !keep.contains(r))
            .copied()
            .collect();
        for r in stale {
            self.pending.remove(&r);
            self.batch.delete_cf(cf, r.encode());
        }
        self.inner.compact_rev = rev;
        self.store
            .backend
            .put_meta(&mut self.batch, "compact_rev", &rev)
            .map_err(storage_err)?;
        Ok(())
    }

    /// Writes everything to RocksDB in one batch (not fsynced: the raft log is the durable
    /// record, and entries after the last applied one are applied again on restart).
    /// Returns the events written, in revision order.
    pub fn commit(mut self) -> Result<Vec<Event>, BackendError> {
        let rev = self.inner.current_rev;
        self.store
            .backend
            .put_meta(&mut self.batch, "current_rev", &rev)?;
        let batch = std::mem::take(&mut self.batch);
        self.store.backend.write(batch, false)?;
        Ok(std::mem::take(&mut self.events))
    }
}

/// One revision inside a write transaction.
pub struct RevTxn<'t, 'a> {
    txn: &'t mut WriteTxn<'a>,
    main: i64,
    sub: i64,
}

impl RevTxn<'_, '_> {
    /// The revision this transaction's reads see: its own writes included.
    pub fn rev(&self) -> i64 {
        if self.sub > 0 {
            self.main
        } else {
            self.main - 1
        }
    }

    fn load(&self, r: Revision) -> Result<KeyValue, EtcdError> {
        match self.txn.pending.get(&r) {
            Some(kv) => Ok(kv.clone()),
            None => self.txn.store.load(r),
        }
    }

    pub fn range(
        &self,
        key: &[u8],
        end: &RangeEnd,
        opts: RangeOptions,
    ) -> Result<RangeResult, EtcdError> {
        range_in(&self.txn.inner, self.rev(), key, end, opts, |r| {
            self.load(r)
        })
    }

    /// The live value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        match self
            .txn
            .inner
            .index
            .get(key)
            .and_then(|ki| ki.get(i64::MAX))
        {
            Some(at) => self.load(at.modified).map(Some),
            None => Ok(None),
        }
    }

    fn next_rev(&mut self) -> Revision {
        let r = Revision {
            main: self.main,
            sub: self.sub,
        };
        self.sub += 1;
        r
    }

    /// Writes one revision's record: to the batch, to the readable pending set, and as an
    /// event for watchers.
    fn record(&mut self, rev: Revision, kind: u8, kv: KeyValue) -> Result<(), EtcdError> {
        let cf = self.txn.store.backend.cf(CF_KV).map_err(storage_err)?;
        self.txn
            .batch
            .put_cf(cf, rev.encode(), encode_value(kind, &kv));
        let r#type = if kind == KIND_TOMBSTONE {
            EventType::Delete
        } else {
            EventType::Put
        };
        self.txn.events.push(Event {
            r#type: r#type as i32,
            kv: Some(kv.clone()),
            prev_kv: None,
        });
        self.txn.pending.insert(rev, kv);
        Ok(())
    }

    /// Puts `key`; returns the previous live value.
    pub fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        lease: i64,
    ) -> Result<Option<KeyValue>, EtcdError> {
        let prev = self.get(key)?;
        let rev = self.next_rev();
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: rev.main,
            version,
            value,
            lease,
        };
        self.record(rev, KIND_PUT, kv)?;
        let index = &mut self.txn.inner.index;
        match index.get_mut(key) {
            Some(ki) => ki.put(rev),
            None => {
                let mut ki = KeyIndex::default();
                ki.put(rev);
                index.insert(key.into(), ki);
            }
        }
        Ok(prev)
    }

    /// Deletes every live key in the range; returns their last values.
    pub fn delete_range(&mut self, key: &[u8], end: &RangeEnd) -> Result<Vec<KeyValue>, EtcdError> {
        let live = self.range(key, end, RangeOptions::default())?.kvs;
        for prev in &live {
            let rev = self.next_rev();
            let tomb = KeyValue {
                key: prev.key.clone(),
                mod_revision: rev.main,
                ..Default::default()
            };
            self.record(rev, KIND_TOMBSTONE, tomb)?;
            if let Some(ki) = self.txn.inner.index.get_mut(prev.key.as_slice()) {
                ki.tombstone(rev);
            }
        }
        Ok(live)
    }

    /// Ends the revision: the store revision advances if anything was written.
    pub fn finish(self) -> i64 {
        if self.sub > 0 {
            self.txn.inner.current_rev = self.main;
        }
        self.txn.inner.current_rev
    }
}
