//! clientv3's concurrency recipes on plain KV, lease and watch calls, as etcdctl's `lock` and
//! `elect` use them: a session (a lease kept alive), a mutex and an election. Keys are
//! `<name>/<lease ID in %x>`; the oldest key under the prefix owns the lock or the election.

use std::time::Duration;

use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::lease_client::LeaseClient;
use crate::etcdserverpb::{
    compare, range_request, request_op, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseKeepAliveRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, ResponseHeader,
    TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
};
use crate::mvccpb::KeyValue;

/// A lease kept alive in the background (clientv3's `concurrency.Session`).
pub struct Session {
    pub lease: i64,
    expired: tokio::sync::watch::Receiver<bool>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Session {
    pub async fn new(conn: &Conn, ttl: i64) -> Result<Session, Failure> {
        let mut leases = LeaseClient::new(conn.channel.clone());
        let grant = leases
            .lease_grant(conn.req(LeaseGrantRequest { ttl, id: 0 }))
            .await?
            .into_inner();
        if !grant.error.is_empty() {
            return Err(Failure::error(grant.error));
        }
        let lease = grant.id;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.send(LeaseKeepAliveRequest { id: lease }).await;
        let mut stream = leases
            .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        let (set_expired, expired) = tokio::sync::watch::channel(false);
        let keeper = tokio::spawn(async move {
            while let Some(Ok(r)) = stream.next().await {
                if r.ttl <= 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs((r.ttl as u64 / 3).max(1))).await;
                if tx.send(LeaseKeepAliveRequest { id: lease }).await.is_err() {
                    break;
                }
            }
            let _ = set_expired.send(true);
        });
        Ok(Session {
            lease,
            expired,
            keeper,
        })
    }

    /// This session's key under `name`: `<name>/<lease ID in %x>`.
    pub fn key(&self, name: &str) -> Vec<u8> {
        format!("{name}/{:x}", self.lease).into_bytes()
    }

    /// Resolves once the lease can no longer be kept alive.
    pub async fn done(&self) {
        let mut rx = self.expired.clone();
        let _ = rx.wait_for(|e| *e).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

fn range_op(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

/// A range over `prefix` that returns its oldest (`first`) or newest key by create revision.
fn by_create(prefix: &[u8], first: bool, max_create: i64) -> RangeRequest {
    use range_request::{SortOrder, SortTarget};
    RangeRequest {
        key: prefix.to_vec(),
        range_end: crate::commands::prefix_end(prefix),
        limit: 1,
        sort_order: if first {
            SortOrder::Ascend
        } else {
            SortOrder::Descend
        } as i32,
        sort_target: SortTarget::Create as i32,
        max_create_revision: max_create,
        ..Default::default()
    }
}

fn create_is_zero(key: &[u8]) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(compare::TargetUnion::CreateRevision(0)),
        ..Default::default()
    }
}

fn create_is(key: &[u8], rev: i64) -> Compare {
    Compare {
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        ..create_is_zero(key)
    }
}

fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

fn range_of(r: &TxnResponse, i: usize) -> Option<&RangeResponse> {
    match r.responses.get(i)?.response.as_ref()? {
        crate::etcdserverpb::response_op::Response::ResponseRange(rr) => Some(rr),
        _ => None,
    }
}

async fn txn(conn: &Conn, t: TxnRequest) -> Result<TxnResponse, Failure> {
    Ok(conn.kv().txn(conn.req(t)).await?.into_inner())
}

pub async fn get(conn: &Conn, key: &[u8]) -> Result<RangeResponse, Failure> {
    let r = RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    Ok(conn.kv().range(conn.req(r)).await?.into_inner())
}

pub async fn delete(conn: &Conn, key: &[u8]) -> Result<(), Failure> {
    let r = DeleteRangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    conn.kv().delete_range(conn.req(r)).await?;
    Ok(())
}

/// A watch on `[key, end)` from `rev`, as a stream of responses (no request timeout: watches
/// live as long as the command).
async fn watch(
    conn: &Conn,
    key: &[u8],
    end: Vec<u8>,
    rev: i64,
) -> Result<
    (
        tokio::sync::mpsc::Sender<WatchRequest>,
        tonic::Streaming<WatchResponse>,
    ),
    Failure,
> {
    let create = WatchCreateRequest {
        key: key.to_vec(),
        range_end: end,
        start_revision: rev,
        ..Default::default()
    };
    Ok(conn.watch(create, 1).await?)
}

fn watch_failure(r: &WatchResponse) -> Option<Failure> {
    r.canceled.then(|| {
        Failure::error(if r.compact_revision != 0 {
            "etcdserver: mvcc: required revision has been compacted".to_string()
        } else if r.cancel_reason.is_empty() {
            "watch canceled".to_string()
        } else {
            r.cancel_reason.clone()
        })
    })
}

/// Waits until `key` is deleted at or after `rev`.
async fn wait_delete(conn: &Conn, key: &[u8], rev: i64) -> Result<(), Failure> {
    let (_tx, mut stream) = watch(conn, key, Vec::new(), rev).await?;
    while let Some(item) = stream.next().await {
        let r = item.map_err(|s| Failure::error(status_message(&s)))?;
        if let Some(f) = watch_failure(&r) {
            return Err(f);
        }
        if r.events.iter().any(|e| e.r#type == 1) {
            return Ok(());
        }
    }
    Err(Failure::error("lost watcher waiting for delete"))
}

/// Waits until every key under `prefix` created at or before `max_create` is gone.
async fn wait_deletes(
    conn: &Conn,
    prefix: &[u8],
    max_create: i64,
) -> Result<Option<ResponseHeader>, Failure> {
    loop {
        let r = conn
            .kv()
            .range(conn.req(by_create(prefix, false, max_create)))
            .await?
            .into_inner();
        let Some(last) = r.kvs.first() else {
            return Ok(r.header);
        };
        let rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
        wait_delete(conn, &last.key, rev).await?;
    }
}

/// A held lock: its key and the revision the lock was acquired at.
pub struct Held {
    pub key: Vec<u8>,
    pub revision: i64,
}

/// clientv3's `Mutex.Lock`: queue under `<name>/`, wait for every older waiter to leave.
pub async fn lock(conn: &Conn, s: &Session, name: &str) -> Result<Held, Failure> {
    let prefix = format!("{name}/").into_bytes();
    let key = s.key(name);
    let r = txn(
        conn,
        TxnRequest {
            compare: vec![create_is_zero(&key)],
            success: vec![
                put_op(&key, b"", s.lease),
                range_op(by_create(&prefix, true, 0)),
            ],
            failure: vec![
                range_op(RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                }),
                range_op(by_create(&prefix, true, 0)),
            ],
        },
    )
    .await?;
    let mut my_rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
    if !r.succeeded {
        my_rev = range_of(&r, 0)
            .and_then(|rr| rr.kvs.first())
            .map(|kv| kv.create_revision)
            .unwrap_or(my_rev);
    }
    let owner = range_of(&r, 1).and_then(|rr| rr.kvs.first());
    if owner.is_none_or(|o| o.create_revision == my_rev) {
        return Ok(Held {
            key,
            revision: r.header.map(|h| h.revision).unwrap_or(0),
        });
    }
    if let Err(e) = wait_deletes(conn, &prefix, my_rev - 1).await {
        let _ = delete(conn, &key).await;
        return Err(e);
    }
    let g = match get(conn, &key).await {
        Ok(g) => g,
        Err(e) => {
            let _ = delete(conn, &key).await;
            return Err(e);
        }
    };
    if g.kvs.is_empty() {
        return Err(Failure::error("mutex: session is expired"));
    }
    Ok(Held {
        key,
        revision: g.header.map(|h| h.revision).unwrap_or(0),
    })
}

/// An election this session leads.
pub struct Leadership {
    pub key: Vec<u8>,
    pub create_revision: i64,
}

/// clientv3's `Election.Campaign`: put the proposal under `<name>/`, wait to be the oldest.
pub async fn campaign(
    conn: &Conn,
    s: &Session,
    name: &str,
    value: &str,
) -> Result<Leadership, Failure> {
    let prefix = format!("{name}/").into_bytes();
    let key = s.key(name);
    let r = txn(
        conn,
        TxnRequest {
            compare: vec![create_is_zero(&key)],
            success: vec![put_op(&key, value.as_bytes(), s.lease)],
            failure: vec![range_op(RangeRequest {
                key: key.clone(),
                ..Default::default()
            })],
        },
    )
    .await?;
    let mut lead = Leadership {
        key,
        create_revision: r.header.as_ref().map(|h| h.revision).unwrap_or(0),
    };
    if !r.succeeded {
        if let Some(kv) = range_of(&r, 0).and_then(|rr| rr.kvs.first()) {
            lead.create_revision = kv.create_revision;
            if kv.value != value.as_bytes() {
                let p = txn(
                    conn,
                    TxnRequest {
                        compare: vec![create_is(&lead.key, lead.create_revision)],
                        success: vec![put_op(&lead.key, value.as_bytes(), s.lease)],
                        failure: vec![],
                    },
                )
                .await?;
                if !p.succeeded {
                    return Err(Failure::error("election: not leader"));
                }
            }
        }
    }
    if let Err(e) = wait_deletes(conn, &prefix, lead.create_revision - 1).await {
        let _ = resign(conn, &lead).await;
        return Err(e);
    }
    Ok(lead)
}

/// clientv3's `Election.Resign`: delete the leader key if it is still ours.
pub async fn resign(conn: &Conn, lead: &Leadership) -> Result<(), Failure> {
    txn(
        conn,
        TxnRequest {
            compare: vec![create_is(&lead.key, lead.create_revision)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(
                    DeleteRangeRequest {
                        key: lead.key.clone(),
                        ..Default::default()
                    },
                )),
            }],
            failure: vec![],
        },
    )
    .await?;
    Ok(())
}

/// clientv3's `Election.Observe`: calls `show` with the leader, then with every change of the
/// leader's value, then with each next leader; returns when a watch or read fails.
pub async fn observe(
    conn: &Conn,
    name: &str,
    mut show: impl FnMut(RangeResponse),
) -> Result<(), Failure> {
    let prefix = format!("{name}/").into_bytes();
    loop {
        let resp = conn
            .kv()
            .range(conn.req(by_create(&prefix, true, 0)))
            .await?
            .into_inner();
        let (header, kv): (ResponseHeader, KeyValue) = match resp.kvs.first() {
            Some(kv) => (resp.header.unwrap_or_default(), kv.clone()),
            None => {
                let rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
                let (_tx, mut stream) =
                    watch(conn, &prefix, crate::commands::prefix_end(&prefix), rev).await?;
                let mut found = None;
                while found.is_none() {
                    let Some(Ok(r)) = stream.next().await else {
                        return Err(Failure::error("elect: observer lost"));
                    };
                    if r.canceled {
                        return Err(Failure::error("elect: observer lost"));
                    }
                    if let Some(kv) = r
                        .events
                        .iter()
                        .find(|e| e.r#type == 0)
                        .and_then(|e| e.kv.clone())
                    {
                        let mut h = r.header.unwrap_or_default();
                        h.revision = kv.mod_revision;
                        found = Some((h, kv));
                    }
                }
                found.ok_or_else(|| Failure::error("elect: observer lost"))?
            }
        };
        show(RangeResponse {
            header: Some(header),
            kvs: vec![kv.clone()],
            more: resp.more,
            count: resp.count,
        });
        let (_tx, mut stream) = watch(conn, &kv.key, Vec::new(), header.revision + 1).await?;
        'leader: loop {
            let Some(Ok(r)) = stream.next().await else {
                return Err(Failure::error("elect: observer lost"));
            };
            if r.canceled {
                return Err(Failure::error("elect: observer lost"));
            }
            for e in &r.events {
                if e.r#type == 1 {
                    break 'leader;
                }
                show(RangeResponse {
                    header: r.header,
                    kvs: e.kv.clone().into_iter().collect(),
                    more: resp.more,
                    count: resp.count,
                });
            }
        }
    }
}
