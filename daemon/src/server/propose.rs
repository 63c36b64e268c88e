//! The leader's proposals travel in batches: a write proposes at once while fewer than
//! `IN_FLIGHT` proposals are on their way through raft; otherwise it waits in a queue, and
//! whatever queued goes into the next raft entry as one `InternalBatch` (up to `MAX_BATCH`
//! requests or `MAX_BATCH_BYTES`), applied in order as consecutive entries would be. Under
//! load one log append, one fsync and one replicated entry carry many writes, as etcd's raft
//! loop writes every proposal of a round with one WAL sync; a lone write is not delayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::oneshot;

use super::slots::Slots;
use crate::api::retcdpb::{internal_request, InternalBatch, InternalRequest, InternalResponse};
use crate::cluster::MemberNode;
use crate::error::EtcdError;
use crate::raft::{Pb, Raft, Response};

const IN_FLIGHT: usize = 4;
const MAX_BATCH: usize = 1024;
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why raft did not take a write (the leader moved, raft stopped...).
pub type WriteError = RaftError<u64, ClientWriteError<u64, MemberNode>>;
/// The applied result of one write, or why raft did not take it.
pub type Outcome = Result<Result<InternalResponse, EtcdError>, WriteError>;

struct Waiting {
    req: InternalRequest,
    done: oneshot::Sender<Outcome>,
}

struct Inner {
    raft: Raft,
    queue: Mutex<Slots<Waiting>>,
    /// Writes that went into raft as part of a batch entry (`/metrics`).
    batched: AtomicU64,
}

/// Proposes writes on this member's raft (which must lead; otherwise each write gets
/// `ForwardToLeader`).
#[derive(Clone)]
pub struct Proposer {
    inner: Arc<Inner>,
}

impl Proposer {
    pub fn new(raft: Raft) -> Proposer {
        Proposer {
            inner: Arc::new(Inner {
                raft,
                queue: Mutex::new(Slots::new(IN_FLIGHT)),
                batched: AtomicU64::new(0),
            }),
        }
    }

    /// How many writes were proposed as part of a batch entry so far.
    pub fn batched(&self) -> u64 {
        self.inner.batched.load(Ordering::Relaxed)
    }

    /// Proposes `req` and waits until it is applied.
    pub async fn write(&self, req: InternalRequest) -> Outcome {
        let answer = {
            let mut q = self.inner.queue.lock();
            if q.try_take() {
                Err(req)
            } else {
                let (done, answer) = oneshot::channel();
                q.push(Waiting { req, done });
                Ok(answer)
            }
        };
        match answer {
            Ok(answer) => answer.await.unwrap_or(Ok(Err(EtcdError::Stopped))),
            Err(req) => {
                // The slot is handed back (and the queue started) even if this caller is
                // dropped while raft works on its write.
                let _slot = Slot(self.inner.clone());
                propose_one(&self.inner.raft, req).await
            }
        }
    }
}

/// A proposal slot taken by a direct write.
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        // The slot passes on to a task that proposes what queued; when shutting down there
        // is none, and the queued writers learn it as their answers are dropped.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                if let Some(next) = self.0.next_batch() {
                    rt.spawn(run(self.0.clone(), next));
                }
            }
            Err(_) => self.0.queue.lock().release(),
        }
    }
}

/// Proposes batches until the queue is empty, then gives the slot back.
async fn run(inner: Arc<Inner>, mut batch: Vec<Waiting>) {
    loop {
        propose(&inner, batch).await;
        match inner.next_batch() {
            Some(b) => batch = b,
            None => return,
        }
    }
}

impl Inner {
    /// For the holder of a slot: the next batch to propose, or None after giving the slot
    /// back because nothing queued.
    fn next_batch(&self) -> Option<Vec<Waiting>> {
        self.queue.lock().next_batch(take_batch)
    }
}

/// The oldest queued writes, as many as fit in one entry.
fn take_batch(waiting: &mut Vec<Waiting>) -> Option<Vec<Waiting>> {
    if waiting.is_empty() {
        return None;
    }
    let mut bytes = 0;
    let mut n = 0;
    for w in waiting.iter() {
        bytes += w.req.encoded_len();
        if n > 0 && (n == MAX_BATCH || bytes > MAX_BATCH_BYTES) {
            break;
        }
        n += 1;
    }
    Some(waiting.drain(..n).collect())
}

fn one(r: Response) -> Result<InternalResponse, EtcdError> {
    match r {
        Response::One(r) => r.map(|p| p.0),
        Response::Batch(_) => Err(EtcdError::Internal(
            "a single proposal was answered as a batch".into(),
        )),
    }
}

/// A write proposed as a raft entry of its own.
async fn propose_one(raft: &Raft, req: InternalRequest) -> Outcome {
    raft.client_write(Pb(req)).await.map(|r| one(r.data))
}

async fn propose(inner: &Inner, mut batch: Vec<Waiting>) {
    let raft = &inner.raft;
    if batch.len() == 1 {
        if let Some(w) = batch.pop() {
            let _ = w.done.send(propose_one(raft, w.req).await);
        }
        return;
    }
    inner
        .batched
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let (reqs, dones): (Vec<_>, Vec<_>) = batch.into_iter().map(|w| (w.req, w.done)).unzip();
    let entry = InternalRequest {
        request: Some(internal_request::Request::Batch(InternalBatch {
            requests: reqs,
        })),
        auth_revision: 0,
    };
    match raft.client_write(Pb(entry)).await {
        Ok(r) => match r.data {
            Response::Batch(results) if results.len() == dones.len() => {
                for (done, res) in dones.into_iter().zip(results) {
                    let _ = done.send(Ok(res.map(|p| p.0)));
                }
            }
            other => {
                let e = EtcdError::Internal(format!(
                    "a batch of {} proposals was answered with {other:?}",
                    dones.len()
                ));
                for done in dones {
                    let _ = done.send(Ok(Err(e.clone())));
                }
            }
        },
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::etcdserverpb::PutRequest;

    fn put(value_len: usize) -> Waiting {
        let req = InternalRequest {
            request: Some(internal_request::Request::Put(PutRequest {
                key: b"k".to_vec(),
                value: vec![0; value_len],
                ..Default::default()
            })),
            auth_revision: 0,
        };
        Waiting {
            req,
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_takes_the_oldest_writes_within_its_limits() {
        let mut q: Vec<Waiting> = (0..MAX_BATCH + 5).map(|_| put(10)).collect();
        assert_eq!(take_batch(&mut q).map(|b| b.len()), Some(MAX_BATCH));
        assert_eq!(take_batch(&mut q).map(|b| b.len()), Some(5));
        assert!(take_batch(&mut q).is_none());

        // By size: 3 MiB values, two per 4 MiB... only one fits, but a batch is never empty.
        let mut q: Vec<Waiting> = (0..3).map(|_| put(3 << 20)).collect();
        assert_eq!(take_batch(&mut q).map(|b| b.len()), Some(1));
        let mut q: Vec<Waiting> = (0..3).map(|_| put(1 << 20)).collect();
        assert_eq!(take_batch(&mut q).map(|b| b.len()), Some(3));
        let mut q: Vec<Waiting> = (0..5).map(|_| put(1 << 20)).collect();
        assert_eq!(take_batch(&mut q).map(|b| b.len()), Some(3));
        assert_eq!(q.len(), 2);
    }
}
