//! Linearizable reads share read-index rounds, as etcd's read loop does: a read waits for the
//! next round that *starts after it arrived* (so the index it gets is at least the commit
//! index at its arrival), and every read waiting when a round starts gets that round's
//! answer. One round is in flight at a time, so a thousand concurrent reads cost one leader
//! confirmation (a heartbeat round to a quorum) instead of a thousand. Rounds run in their own
//! task: a client that gives up never stalls the others.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::{oneshot, watch};

use crate::api::retcdpeerpb::ReadIndexRequest;
use crate::cluster::MemberNode;
use crate::error::EtcdError;
use crate::raft::network::Peers;
use crate::raft::Raft;

type Metrics = watch::Receiver<openraft::RaftMetrics<u64, MemberNode>>;
type Answer = Result<Option<u64>, EtcdError>;

/// Waits until a leader other than `old` is known, or the deadline passes.
pub(crate) async fn wait_for_leader_change(
    metrics: &Metrics,
    old: Option<u64>,
    deadline: tokio::time::Instant,
) -> Result<(), EtcdError> {
    let mut rx = metrics.clone();
    let wait = async {
        loop {
            let leader = rx.borrow().current_leader;
            if leader.is_some() && leader != old {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    };
    tokio::time::timeout_at(deadline, wait)
        .await
        .map_err(|_| EtcdError::Timeout)
}

/// After a failed attempt at leader `old`: waits up to a second for another leader (or the
/// deadline), then lets the caller try again.
pub(crate) async fn pause_for_leader(
    metrics: &Metrics,
    old: Option<u64>,
    deadline: tokio::time::Instant,
) -> Result<(), EtcdError> {
    let soon = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
    match wait_for_leader_change(metrics, old, soon).await {
        Err(EtcdError::Timeout) if tokio::time::Instant::now() < deadline => Ok(()),
        other => other,
    }
}

/// How to get one read index: from raft when this member leads, else (when `forward`) from
/// the leader over the peer service.
#[derive(Clone)]
pub(crate) struct ReadIndexer {
    pub raft: Raft,
    pub metrics: Metrics,
    pub peers: Peers,
    pub cluster_id: u64,
    pub timeout: Duration,
    /// Ask the leader when this member does not lead (false: answer NotLeader).
    pub forward: bool,
}

impl ReadIndexer {
    /// The read index (None: nothing to wait for), following leader changes until the
    /// request timeout.
    async fn read_index(&self) -> Answer {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.raft.get_read_log_id()).await;
            return match attempt {
                Err(_) => Err(EtcdError::Timeout),
                Ok(Ok((read, _applied))) => Ok(read.map(|l| l.index)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))))
                    if !self.forward =>
                {
                    Err(EtcdError::NotLeader)
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(id), Some(node)) => match self.remote(id, &node, deadline).await {
                            Ok(i) => Ok(Some(i)),
                            Err(EtcdError::NotLeader) => {
                                pause_for_leader(&self.metrics, Some(id), deadline).await?;
                                continue;
                            }
                            Err(e) => Err(e),
                        },
                        _ => {
                            wait_for_leader_change(&self.metrics, None, deadline).await?;
                            continue;
                        }
                    }
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(EtcdError::Timeout);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Ok(Err(RaftError::Fatal(_))) => Err(EtcdError::Stopped),
            };
        }
    }

    async fn remote(
        &self,
        leader: u64,
        node: &MemberNode,
        deadline: tokio::time::Instant,
    ) -> Result<u64, EtcdError> {
        let mut client = self
            .peers
            .client(leader, node)
            .map_err(EtcdError::Internal)?;
        let mut req = tonic::Request::new(ReadIndexRequest {
            cluster_id: self.cluster_id,
        });
        req.set_timeout(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let resp = client
            .read_index(req)
            .await
            .map_err(super::peer_status)?
            .into_inner();
        if !resp.error.is_empty() {
            return Err(super::decode_peer_error(&resp.error));
        }
        Ok(resp.index)
    }
}

#[derive(Default)]
struct Queue {
    running: bool,
    waiting: Vec<oneshot::Sender<Answer>>,
}

/// Read-index rounds shared by concurrent reads.
pub(crate) struct ReadCoalescer {
    indexer: ReadIndexer,
    queue: Arc<parking_lot::Mutex<Queue>>,
}

impl ReadCoalescer {
    pub fn new(indexer: ReadIndexer) -> ReadCoalescer {
        ReadCoalescer {
            indexer,
            queue: Arc::default(),
        }
    }

    /// A read index obtained by a round that started after this call.
    pub async fn read_index(&self, deadline: tokio::time::Instant) -> Answer {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock();
            q.waiting.push(tx);
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let (indexer, queue) = (self.indexer.clone(), self.queue.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut q = queue.lock();
                        if q.waiting.is_empty() {
                            q.running = false;
                            return;
                        }
                        std::mem::take(&mut q.waiting)
                    };
                    let answer = indexer.read_index().await;
                    for tx in batch {
                        let _ = tx.send(answer.clone());
                    }
                }
            });
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }
}
