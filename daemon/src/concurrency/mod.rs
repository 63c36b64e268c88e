//! Locks and elections served by the member (etcd's v3lock and v3election services), built on
//! the member's own KV, watch and leases exactly as etcd's client-side recipes are: a
//! contender writes `name/<lease>` and waits until every key of the same name created before
//! its own is deleted. Before granting, the lock re-checks that its key (so its lease) still
//! exists — the bug Jepsen found in etcd 3.4.3.
//!
//! With auth on, every read and write a lock or election makes is checked against the
//! caller's permissions, as etcd's services make them with the caller's token: a contender
//! needs read access to the name's whole prefix and write access to its own key.
//!
//! A contender that names no lease (0) gets a new one of 60 s that nothing keeps alive, as
//! etcd's services open a session for it; the lock or leadership ends when it expires.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::api::etcdserverpb::{
    compare, range_request, request_op, response_op, Compare, DeleteRangeRequest,
    LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse, WatchResponse,
};
use crate::api::mvccpb::{event::EventType, KeyValue};
use crate::api::v3electionpb::LeaderKey;
use crate::auth::AuthInfo;
use crate::error::EtcdError;
use crate::mvcc::RangeEnd;
use crate::server::EtcdServer;
use crate::watch::WatchSpec;

/// The caller's identity (None when auth is off).
type Ai = Option<AuthInfo>;

fn prefix(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// etcd's prefix range end (clientv3's `GetPrefixRangeEnd`): the prefix with its last byte
/// below 0xff incremented; `[0]` (every key) when there is none.
pub fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut e = p.to_vec();
    while let Some(last) = e.last_mut() {
        if *last < 0xff {
            *last += 1;
            return e;
        }
        e.pop();
    }
    vec![0]
}

fn lease_key(name: &[u8], lease: i64) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k
}

fn created_is(key: &[u8], rev: i64) -> Compare {
    Compare {
        key: key.to_vec(),
        target: compare::CompareTarget::Create as i32,
        result: compare::CompareResult::Equal as i32,
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        range_end: Vec::new(),
    }
}

/// A transaction made for the caller: refused unless `ai` may do all it touches.
async fn txn(s: &EtcdServer, ai: &Ai, t: TxnRequest) -> Result<TxnResponse, EtcdError> {
    s.check_txn(ai, &t)?;
    s.txn_as(t, ai).await
}

/// Creates `key` unless it exists; returns (its create revision, its current value).
async fn put_if_absent(
    s: &EtcdServer,
    ai: &Ai,
    key: &[u8],
    value: &[u8],
    lease: i64,
) -> Result<(i64, Vec<u8>), EtcdError> {
    let t = TxnRequest {
        compare: vec![created_is(key, 0)],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                lease,
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            })),
        }],
    };
    let r = txn(s, ai, t).await?;
    if r.succeeded {
        return Ok((r.header.map(|h| h.revision).unwrap_or(0), value.to_vec()));
    }
    let kv = r
        .responses
        .into_iter()
        .find_map(|op| match op.response {
            Some(response_op::Response::ResponseRange(rr)) => rr.kvs.into_iter().next(),
            _ => None,
        })
        .ok_or_else(|| EtcdError::Internal("contender key vanished".into()))?;
    Ok((kv.create_revision, kv.value))
}

async fn get(s: &EtcdServer, ai: &Ai, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
    s.check_read(ai, key, &[])?;
    let r = s
        .range(RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })
        .await?;
    Ok(r.kvs.into_iter().next())
}

/// The range of `name`'s keys (`name/` and its prefix end), which the caller must be allowed
/// to read.
fn readable_range(s: &EtcdServer, ai: &Ai, name: &[u8]) -> Result<(Vec<u8>, Vec<u8>), EtcdError> {
    let p = prefix(name);
    let end = prefix_end(&p);
    s.check_read(ai, &p, &end)?;
    Ok((p, end))
}

/// The oldest key of `name` (the owner), and the revision of the read.
async fn owner(s: &EtcdServer, ai: &Ai, name: &[u8]) -> Result<(Option<KeyValue>, i64), EtcdError> {
    let (key, range_end) = readable_range(s, ai, name)?;
    let r = s
        .range(RangeRequest {
            range_end,
            key,
            sort_target: range_request::SortTarget::Create as i32,
            sort_order: range_request::SortOrder::Ascend as i32,
            limit: 1,
            ..Default::default()
        })
        .await?;
    let rev = r.header.map(|h| h.revision).unwrap_or(0);
    Ok((r.kvs.into_iter().next(), rev))
}

/// A watch on `key` (or the range to `end`) from `rev`; canceled when dropped.
struct Watching {
    server: Arc<EtcdServer>,
    key: crate::watch::WatcherKey,
    rx: mpsc::Receiver<WatchResponse>,
}

impl Watching {
    fn start(
        s: &Arc<EtcdServer>,
        key: &[u8],
        end: RangeEnd,
        rev: i64,
    ) -> Result<Watching, EtcdError> {
        let (tx, rx) = mpsc::channel(64);
        let spec = WatchSpec {
            key: key.to_vec(),
            end,
            start_rev: rev,
            prev_kv: false,
            no_put: false,
            no_delete: false,
            progress_notify: false,
            fragment: false,
        };
        let k = s
            .watch
            .watch(-1, spec, tx)
            .map_err(|_| EtcdError::Compacted)?;
        Ok(Watching {
            server: s.clone(),
            key: k,
            rx,
        })
    }

    /// The next response with events; an error if the watch was canceled.
    async fn next(&mut self) -> Result<WatchResponse, EtcdError> {
        loop {
            let r = self.rx.recv().await.ok_or(EtcdError::Stopped)?;
            if r.canceled {
                return Err(EtcdError::Compacted);
            }
            if !r.events.is_empty() {
                return Ok(r);
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.server.watch.cancel(self.key);
    }
}

/// Waits until every key of `name` created at or before `max_create` is deleted.
async fn wait_deletes(
    s: &Arc<EtcdServer>,
    ai: &Ai,
    name: &[u8],
    max_create: i64,
) -> Result<(), EtcdError> {
    let (key, range_end) = readable_range(s, ai, name)?;
    loop {
        let r = s
            .range(RangeRequest {
                range_end: range_end.clone(),
                key: key.clone(),
                max_create_revision: max_create,
                sort_target: range_request::SortTarget::Create as i32,
                sort_order: range_request::SortOrder::Descend as i32,
                limit: 1,
                ..Default::default()
            })
            .await?;
        let Some(last) = r.kvs.into_iter().next() else {
            return Ok(());
        };
        let rev = r.header.map(|h| h.revision).unwrap_or(0);
        let mut w = Watching::start(s, &last.key, RangeEnd::Single, rev + 1)?;
        loop {
            let resp = w.next().await?;
            if resp
                .events
                .iter()
                .any(|e| e.r#type == EventType::Delete as i32)
            {
                break;
            }
        }
    }
}

/// Deletes a contender's key if the request is abandoned before it completes.
struct Abandon {
    server: Arc<EtcdServer>,
    key: Option<Vec<u8>>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let s = self.server.clone();
            tokio::spawn(async move {
                let _ = s
                    .delete_range(DeleteRangeRequest {
                        key,
                        ..Default::default()
                    })
                    .await;
            });
        }
    }
}

/// The TTL of the lease a contender without one gets (etcd's session default).
const SESSION_TTL: i64 = 60;

/// The lease a contender holds its key with: its own, or (lease 0) a new one of
/// `SESSION_TTL` that nothing keeps alive, as etcd's services open a session for it. A lease
/// that does not exist is refused when the key is written, after the permission checks.
async fn session_lease(s: &EtcdServer, lease: i64) -> Result<i64, EtcdError> {
    if lease != 0 {
        return Ok(lease);
    }
    let granted = s
        .lease_grant(LeaseGrantRequest {
            ttl: SESSION_TTL,
            id: 0,
        })
        .await?;
    Ok(granted.id)
}

/// Shared by lock and campaign: write our key, wait our turn, re-check we still hold it.
/// Returns our key, its create revision, the value it held and the lease it is under.
async fn acquire(
    s: &Arc<EtcdServer>,
    ai: &Ai,
    name: &[u8],
    lease: i64,
    value: &[u8],
) -> Result<(Vec<u8>, i64, Vec<u8>, i64), EtcdError> {
    let lease = session_lease(s, lease).await?;
    let key = lease_key(name, lease);
    let (rev, current) = put_if_absent(s, ai, &key, value, lease).await?;
    let mut abandon = Abandon {
        server: s.clone(),
        key: Some(key.clone()),
    };
    wait_deletes(s, ai, name, rev - 1).await?;
    // Our key must still be ours: its lease may have expired while we waited.
    match get(s, ai, &key).await? {
        Some(kv) if kv.create_revision == rev => {}
        _ => {
            abandon.key = None;
            return Err(EtcdError::Plain(
                "etcdserver: session expired: the lease expired while waiting".into(),
            ));
        }
    }
    abandon.key = None;
    Ok((key, rev, current, lease))
}

pub async fn lock(
    s: &Arc<EtcdServer>,
    ai: &Ai,
    name: &[u8],
    lease: i64,
) -> Result<Vec<u8>, EtcdError> {
    acquire(s, ai, name, lease, b"").await.map(|(key, ..)| key)
}

pub async fn unlock(s: &EtcdServer, ai: &Ai, key: &[u8]) -> Result<(), EtcdError> {
    let r = DeleteRangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    s.check_delete(ai, &r)?;
    s.delete_range_as(r, ai).await.map(|_| ())
}

pub async fn campaign(
    s: &Arc<EtcdServer>,
    ai: &Ai,
    name: &[u8],
    lease: i64,
    value: &[u8],
) -> Result<LeaderKey, EtcdError> {
    let (key, rev, current, lease) = acquire(s, ai, name, lease, value).await?;
    let leader = LeaderKey {
        name: name.to_vec(),
        key,
        rev,
        lease,
    };
    if current != value {
        proclaim(s, ai, &leader, value).await?;
    }
    Ok(leader)
}

pub async fn proclaim(
    s: &EtcdServer,
    ai: &Ai,
    leader: &LeaderKey,
    value: &[u8],
) -> Result<(), EtcdError> {
    let t = TxnRequest {
        compare: vec![created_is(&leader.key, leader.rev)],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: leader.key.clone(),
                value: value.to_vec(),
                lease: leader.lease,
                ..Default::default()
            })),
        }],
        failure: Vec::new(),
    };
    let r = txn(s, ai, t).await?;
    if !r.succeeded {
        return Err(EtcdError::Plain("election: not leader".into()));
    }
    Ok(())
}

pub async fn resign(s: &EtcdServer, ai: &Ai, leader: &LeaderKey) -> Result<(), EtcdError> {
    let t = TxnRequest {
        compare: vec![created_is(&leader.key, leader.rev)],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: leader.key.clone(),
                    ..Default::default()
                },
            )),
        }],
        failure: Vec::new(),
    };
    txn(s, ai, t).await.map(|_| ())
}

pub async fn leader(s: &EtcdServer, ai: &Ai, name: &[u8]) -> Result<KeyValue, EtcdError> {
    owner(s, ai, name)
        .await?
        .0
        .ok_or_else(|| EtcdError::Plain("election: no leader".into()))
}

/// Streams the leader's value as it changes (first the current one, if any).
pub fn observe(
    s: Arc<EtcdServer>,
    ai: Ai,
    name: Vec<u8>,
    tx: mpsc::Sender<Result<KeyValue, EtcdError>>,
) {
    tokio::spawn(async move {
        let mut last: Option<(Vec<u8>, i64)> = None;
        let result: Result<(), EtcdError> = async {
            let (_, rev) = owner(&s, &ai, &name).await?;
            let p = prefix(&name);
            let mut w = Watching::start(&s, &p, RangeEnd::To(prefix_end(&p)), rev + 1)?;
            loop {
                if let (Some(kv), _) = owner(&s, &ai, &name).await? {
                    let id = (kv.key.clone(), kv.mod_revision);
                    if last.as_ref() != Some(&id) {
                        last = Some(id);
                        if tx.send(Ok(kv)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                w.next().await?;
            }
        }
        .await;
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
}
