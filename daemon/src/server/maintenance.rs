//! Maintenance requests: snapshot streaming, alarms and the backend quota, defragmentation,
//! Hash and HashKV.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_stream::StreamExt;

use super::EtcdServer;
use crate::api::etcdserverpb::alarm_request::AlarmAction;
use crate::api::etcdserverpb::{
    AlarmRequest, AlarmResponse, AlarmType, DefragmentResponse, HashKvResponse, HashResponse,
    SnapshotResponse,
};
use crate::api::retcdpb::{internal_request, internal_response};
use crate::backend::{Backend, CF_KV, CF_META};
use crate::error::EtcdError;
use crate::mvcc::Revision;
use crate::version::ETCD_SERVER_VERSION;

impl EtcdServer {
    /// A consistent snapshot of this member's state, in chunks; the last chunk ends with the
    /// sha256 of everything before it (docs/snapshot-format.md). Writes go on meanwhile.
    pub fn snapshot(
        self: &Arc<Self>,
    ) -> impl tokio_stream::Stream<Item = Result<SnapshotResponse, tonic::Status>> + Send + 'static
    {
        let backend = self.store().backend().clone();
        let estimate = backend.size_in_use();
        let header = self.header();
        tracing::info!(member_id = %format!("{:x}", self.member_id()), "sending database snapshot to a client");
        let rx = crate::snapshot::stream(backend, self.cluster_id(), self.member_id());
        let mut sent = 0u64;
        let mut first = true;
        tokio_stream::wrappers::ReceiverStream::new(rx).map(move |chunk| match chunk {
            Ok(blob) => {
                sent += blob.len() as u64;
                let last = blob.len() < crate::snapshot::CHUNK;
                let r = SnapshotResponse {
                    header: first.then_some(header),
                    remaining_bytes: if last {
                        0
                    } else {
                        estimate.saturating_sub(sent).max(1)
                    },
                    blob,
                    version: ETCD_SERVER_VERSION.to_string(),
                };
                first = false;
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot failed");
                Err(tonic::Status::internal(format!(
                    "etcdserver: snapshot failed: {e}"
                )))
            }
        })
    }
}

/// How often the backend size is measured for the quota check.
const QUOTA_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl EtcdServer {
    /// Alarm GET (answered from this member's applied state), ACTIVATE / DEACTIVATE (raft).
    pub async fn alarm(&self, r: AlarmRequest) -> Result<AlarmResponse, EtcdError> {
        match AlarmAction::try_from(r.action) {
            Ok(AlarmAction::Get) => Ok(AlarmResponse {
                header: Some(self.header()),
                alarms: self.alarms.list(),
            }),
            Ok(_) => {
                self.propose_for(internal_request::Request::Alarm(r), "alarm", |r| match r {
                    internal_response::Response::Alarm(x) => Ok(x),
                    other => Err(other),
                })
                .await
            }
            Err(_) => Err(EtcdError::Plain(format!(
                "etcdserver: unknown alarm action {}",
                r.action
            ))),
        }
    }

    /// etcd's quota check before a write is proposed: under an alarm the write fails at once;
    /// a write that would take the backend past `quota-backend-bytes` raises NOSPACE for this
    /// member and fails.
    pub(crate) async fn check_quota(&self, cost: usize) -> Result<(), EtcdError> {
        if self.alarms.has(AlarmType::Corrupt) {
            return Err(EtcdError::Corrupt);
        }
        if self.alarms.has(AlarmType::Nospace) {
            return Err(EtcdError::NoSpace);
        }
        let quota = self.cfg.effective_quota();
        let size = {
            let mut c = self.quota_cache.lock();
            if c.0.is_none_or(|t| t.elapsed() >= QUOTA_CHECK_EVERY) {
                *c = (
                    Some(std::time::Instant::now()),
                    self.store().backend().size_in_use(),
                );
            }
            c.1
        };
        if size + cost as u64 <= quota {
            return Ok(());
        }
        tracing::warn!(
            backend_bytes = size,
            quota_bytes = quota,
            "backend quota exceeded: raising the NOSPACE alarm (free space with compaction and defrag, then 'etcdctl alarm disarm')"
        );
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.member_id(),
            alarm: AlarmType::Nospace as i32,
        };
        if let Err(e) = self.alarm(raise).await {
            tracing::warn!(error = %e, "raising the NOSPACE alarm failed");
        }
        Err(EtcdError::NoSpace)
    }

    /// Defragmentation: RocksDB rewrites its files without stopping reads or writes.
    pub async fn defragment(&self) -> Result<DefragmentResponse, EtcdError> {
        let backend = self.store().backend().clone();
        let before = backend.size_on_disk();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || backend.compact_all())
            .await
            .map_err(|e| EtcdError::Internal(format!("defragment: {e}")))?
            .map_err(|e| EtcdError::Internal(format!("defragment: {e}")))?;
        *self.quota_cache.lock() = (None, 0);
        tracing::info!(
            size_before = before,
            size_after = self.store().backend().size_on_disk(),
            took_ms = started.elapsed().as_millis() as u64,
            "defragmented the backend"
        );
        Ok(DefragmentResponse {
            header: Some(self.header()),
        })
    }

    /// HashKV: CRC-32C over every stored revision up to `rev` (0: the current one), the same
    /// on every member that applied the same entries.
    pub async fn hash_kv(&self, rev: i64) -> Result<HashKvResponse, EtcdError> {
        let backend = self.store().backend().clone();
        let (hash, compact, at) = tokio::task::spawn_blocking(move || kv_hash(&backend, rev))
            .await
            .map_err(|e| EtcdError::Internal(format!("hash: {e}")))??;
        Ok(HashKvResponse {
            header: Some(self.header()),
            hash,
            compact_revision: compact,
            hash_revision: at,
        })
    }

    /// Hash: over the whole key-value history this member stores.
    pub async fn hash(&self) -> Result<HashResponse, EtcdError> {
        let r = self.hash_kv(0).await?;
        Ok(HashResponse {
            header: r.header,
            hash: r.hash,
        })
    }
}

/// CRC-32C over the stored revisions up to `rev` (0: the current one): (hash, compact
/// revision, hashed revision).
pub fn kv_hash(backend: &Backend, rev: i64) -> Result<(u32, i64, i64), EtcdError> {
    let snap = backend.db.snapshot();
    let meta = backend
        .cf(CF_META)
        .map_err(|e| EtcdError::Internal(e.to_string()))?;
    let kv = backend
        .cf(CF_KV)
        .map_err(|e| EtcdError::Internal(e.to_string()))?;
    let read = |k: &str| -> i64 {
        snap.get_cf(meta, k)
            .ok()
            .flatten()
            .and_then(|b| bincode::deserialize::<i64>(&b).ok())
            .unwrap_or(0)
    };
    let (current, compact) = (read("current_rev"), read("compact_rev"));
    let at = if rev == 0 { current } else { rev };
    if at < compact {
        return Err(EtcdError::Compacted);
    }
    if at > current {
        return Err(EtcdError::FutureRev);
    }
    // etcd's algorithm over etcd's layout, so the same history hashes the same on etcd and
    // retcd: the bucket's name, then each revision's key and value up to `at`. Of the
    // revisions at or before the compaction, etcd counts those its key index would keep at
    // `at`: a key's revision from before the compaction counts unless the key changed after
    // the compaction (up to `at`); when no key at all is live at `at`, they all count.
    let err = |e: rocksdb::Error| EtcdError::Internal(format!("hash: {e}"));
    let unreadable = |k: &[u8]| {
        EtcdError::Internal(format!(
            "hash: a stored revision cannot be read ({} bytes of key)",
            k.len()
        ))
    };
    // Keys changed after the compaction, and whether each is live at `at`.
    let mut changed: HashMap<Vec<u8>, bool> = HashMap::new();
    if compact > 0 {
        let from = Revision {
            main: compact + 1,
            sub: 0,
        }
        .encode();
        let mode = rocksdb::IteratorMode::From(&from, rocksdb::Direction::Forward);
        for item in snap.iterator_cf(kv, mode) {
            let (k, v) = item.map_err(err)?;
            let r = Revision::decode(&k).ok_or_else(|| unreadable(&k))?;
            if r.main > at {
                break;
            }
            let (key, put) = crate::mvcc::record_key(&v).ok_or_else(|| unreadable(&k))?;
            changed.insert(key, put);
        }
    }
    let mut kept = crate::snapshot::Crc32c::default();
    kept.update(b"key");
    let mut all = kept;
    let mut any_kept = changed.values().any(|live| *live);
    let mut crc = None;
    for item in snap.iterator_cf(kv, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(err)?;
        let (r, key, value) = crate::mvcc::etcd_record(&k, &v).ok_or_else(|| unreadable(&k))?;
        if r.main > at {
            break;
        }
        if r.main <= compact {
            let (user_key, _) = crate::mvcc::record_key(&v).ok_or_else(|| unreadable(&k))?;
            all.update(&key);
            all.update(&value);
            if !changed.contains_key(&user_key) {
                any_kept = true;
                kept.update(&key);
                kept.update(&value);
            }
            continue;
        }
        let c = crc.get_or_insert(if any_kept { kept } else { all });
        c.update(&key);
        c.update(&value);
    }
    let crc = crc.unwrap_or(if any_kept { kept } else { all });
    // etcd's compact revision is -1 until the first compaction.
    Ok((crc.finish(), if compact == 0 { -1 } else { compact }, at))
}
