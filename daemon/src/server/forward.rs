//! Writes a follower forwards to the leader travel in batches: a write goes at once, from its
//! own task, while fewer than `IN_FLIGHT` batches are on their way to the leader; otherwise it
//! queues, and whatever queued goes in the next batch (up to `MAX_BATCH`). Under load one peer
//! message carries many proposals, as etcd's raft messages carry many MsgProp; a lone write
//! is not delayed. Each leader has its own queue, so writes for a new leader never wait behind
//! batches stuck on an old one (a partitioned leader holds them until the request times out).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::oneshot;

use super::slots::Slots;
use super::{decode_peer_error, peer_status};
use crate::api::retcdpb::{InternalRequest, InternalResponse};
use crate::api::retcdpeerpb::{ProposeBatchRequest, ProposeBatchResponse, ProposeResponse};
use crate::cluster::MemberNode;
use crate::error::EtcdError;
use crate::raft::network::Peers;

const MAX_BATCH: usize = 512;
const IN_FLIGHT: usize = 4;

type Answer = Result<InternalResponse, EtcdError>;

struct Pending {
    req: InternalRequest,
    done: oneshot::Sender<Answer>,
}

struct Queue {
    /// Where the leader listens (its latest known peer URLs).
    node: MemberNode,
    slots: Slots<Pending>,
}

/// The writes for one leader.
struct LeaderQueue {
    leader: u64,
    queue: Mutex<Queue>,
}

struct Inner {
    peers: Peers,
    cluster_id: u64,
    timeout: Duration,
    leaders: Mutex<HashMap<u64, Arc<LeaderQueue>>>,
}

/// The follower's queues of writes for the leader.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

impl Forwarder {
    pub fn start(peers: Peers, cluster_id: u64, timeout: Duration) -> Forwarder {
        Forwarder {
            inner: Arc::new(Inner {
                peers,
                cluster_id,
                timeout,
                leaders: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Proposes `req` on `leader` and waits for its answer until `deadline`.
    pub async fn forward(
        &self,
        leader: u64,
        node: &MemberNode,
        req: InternalRequest,
        deadline: tokio::time::Instant,
    ) -> Answer {
        let lq = self
            .inner
            .leaders
            .lock()
            .entry(leader)
            .or_insert_with(|| {
                Arc::new(LeaderQueue {
                    leader,
                    queue: Mutex::new(Queue {
                        node: node.clone(),
                        slots: Slots::new(IN_FLIGHT),
                    }),
                })
            })
            .clone();
        let direct = {
            let mut q = lq.queue.lock();
            if q.node != *node {
                q.node = node.clone();
            }
            if q.slots.try_take() {
                Ok((req, q.node.clone()))
            } else {
                let (done, answer) = oneshot::channel();
                q.slots.push(Pending { req, done });
                Err(answer)
            }
        };
        let answer = async {
            match direct {
                Err(answer) => answer.await.unwrap_or(Err(EtcdError::Stopped)),
                Ok((req, node)) => {
                    // The slot is handed on (to a task for what queued meanwhile) even if
                    // this caller gives up first.
                    let _slot = Slot {
                        inner: self.inner.clone(),
                        lq: lq.clone(),
                    };
                    match send(&self.inner, leader, &node, vec![req]).await {
                        Ok(mut answers) => answers.pop().unwrap_or_else(|| {
                            Err(EtcdError::Internal(
                                "the leader answered no proposal".into(),
                            ))
                        }),
                        Err(e) => Err(e),
                    }
                }
            }
        };
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(EtcdError::Timeout),
            Ok(r) => r,
        }
    }
}

/// A batch slot taken by a write sent from its caller's task.
struct Slot {
    inner: Arc<Inner>,
    lq: Arc<LeaderQueue>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                if let Some((batch, node)) = self.lq.next_batch() {
                    rt.spawn(run(self.inner.clone(), self.lq.clone(), batch, node));
                }
            }
            Err(_) => self.lq.queue.lock().slots.release(),
        }
    }
}

impl LeaderQueue {
    /// For the holder of a slot: the next batch, or None after giving the slot back because
    /// nothing queued.
    fn next_batch(&self) -> Option<(Vec<Pending>, MemberNode)> {
        let mut q = self.queue.lock();
        let batch = q.slots.next_batch(|waiting| {
            let n = waiting.len().min(MAX_BATCH);
            (n > 0).then(|| waiting.drain(..n).collect())
        })?;
        Some((batch, q.node.clone()))
    }
}

/// Sends batches until the leader's queue is empty, then gives the slot back.
async fn run(
    inner: Arc<Inner>,
    lq: Arc<LeaderQueue>,
    mut batch: Vec<Pending>,
    mut node: MemberNode,
) {
    loop {
        let (requests, dones): (Vec<InternalRequest>, Vec<_>) =
            batch.into_iter().map(|p| (p.req, p.done)).unzip();
        match send(&inner, lq.leader, &node, requests).await {
            Ok(answers) => {
                for (done, a) in dones.into_iter().zip(answers) {
                    let _ = done.send(a);
                }
            }
            Err(e) => {
                for done in dones {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
        match lq.next_batch() {
            Some((b, n)) => (batch, node) = (b, n),
            None => return,
        }
    }
}

/// Proposes `requests` on the leader: an answer for each, or why none came.
async fn send(
    inner: &Inner,
    leader: u64,
    node: &MemberNode,
    requests: Vec<InternalRequest>,
) -> Result<Vec<Answer>, EtcdError> {
    let (peers, timeout) = (&inner.peers, inner.timeout);
    let n = requests.len();
    let req = ProposeBatchRequest {
        cluster_id: inner.cluster_id,
        requests,
    };
    let responses = match peers.propose_over_stream(leader, node, &req, timeout).await {
        Some(answer) => {
            let data = answer.map_err(peer_status)?;
            ProposeBatchResponse::decode(data.as_slice())
                .map_err(|e| EtcdError::Internal(format!("bad answer to forwarded writes: {e}")))?
                .responses
        }
        None => {
            let mut client = peers.client(leader, node).map_err(EtcdError::Internal)?;
            let mut r = tonic::Request::new(req);
            r.set_timeout(timeout);
            client
                .propose_batch(r)
                .await
                .map_err(peer_status)?
                .into_inner()
                .responses
        }
    };
    if responses.len() != n {
        return Err(EtcdError::Internal(format!(
            "the leader answered {} of {n} forwarded proposals",
            responses.len(),
        )));
    }
    Ok(responses.into_iter().map(answer).collect())
}

fn answer(r: ProposeResponse) -> Result<InternalResponse, EtcdError> {
    if !r.error.is_empty() {
        return Err(decode_peer_error(&r.error));
    }
    r.response
        .ok_or_else(|| EtcdError::Internal("leader returned no response".into()))
}
