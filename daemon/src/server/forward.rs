//! Writes a follower forwards to the leader travel in batches: every proposal that queued
//! while earlier batches were on their way goes out in the next one (up to `MAX_BATCH`, at most
//! `IN_FLIGHT` batches at once per leader). Under load one peer RPC carries many proposals, as
//! etcd's raft messages carry many MsgProp; a lone write still goes at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{decode_peer_error, peer_status};
use crate::api::retcdpb::{InternalRequest, InternalResponse};
use crate::api::retcdpeerpb::{ProposeBatchRequest, ProposeResponse};
use crate::cluster::MemberNode;
use crate::error::EtcdError;
use crate::raft::network::Peers;

const MAX_BATCH: usize = 512;
const IN_FLIGHT: usize = 4;

struct Pending {
    leader: u64,
    node: MemberNode,
    req: InternalRequest,
    done: oneshot::Sender<Result<InternalResponse, EtcdError>>,
}

/// The follower's queue of writes for the leader.
#[derive(Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// Starts the task that sends the batches (on the current tokio runtime).
    pub fn start(peers: Peers, cluster_id: u64, timeout: Duration) -> Forwarder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(peers, cluster_id, timeout, rx));
        Forwarder { tx }
    }

    /// Proposes `req` on `leader` and waits for its answer until `deadline`.
    pub async fn forward(
        &self,
        leader: u64,
        node: &MemberNode,
        req: InternalRequest,
        deadline: tokio::time::Instant,
    ) -> Result<InternalResponse, EtcdError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Pending {
                leader,
                node: node.clone(),
                req,
                done,
            })
            .map_err(|_| EtcdError::Stopped)?;
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(EtcdError::Timeout),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Ok(Ok(r)) => r,
        }
    }
}

/// Hands each write to the batcher of its leader, so writes for a new leader never wait
/// behind batches still stuck on an old one (a partitioned leader holds them until the RPC
/// times out).
async fn run(
    peers: Peers,
    cluster_id: u64,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batchers: HashMap<u64, mpsc::UnboundedSender<Pending>> = HashMap::new();
    while let Some(p) = rx.recv().await {
        let tx = batchers.entry(p.leader).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(batch_for_one_leader(peers.clone(), cluster_id, timeout, rx));
            tx
        });
        if let Err(mpsc::error::SendError(p)) = tx.send(p) {
            let _ = p.done.send(Err(EtcdError::Stopped));
        }
    }
}

async fn batch_for_one_leader(
    peers: Peers,
    cluster_id: u64,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a free slot is what lets the next batch fill up.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let peers = peers.clone();
        tokio::spawn(async move {
            send(&peers, cluster_id, timeout, batch).await;
            drop(slot);
        });
    }
}

async fn send(peers: &Peers, cluster_id: u64, timeout: Duration, batch: Vec<Pending>) {
    let (leader, node) = (batch[0].leader, batch[0].node.clone());
    let (requests, dones): (Vec<InternalRequest>, Vec<_>) =
        batch.into_iter().map(|p| (p.req, p.done)).unzip();
    let result = async {
        let mut client = peers.client(leader, &node).map_err(EtcdError::Internal)?;
        let mut r = tonic::Request::new(ProposeBatchRequest {
            cluster_id,
            requests,
        });
        r.set_timeout(timeout);
        let responses = client
            .propose_batch(r)
            .await
            .map_err(peer_status)?
            .into_inner()
            .responses;
        if responses.len() != dones.len() {
            return Err(EtcdError::Internal(format!(
                "the leader answered {} of {} forwarded proposals",
                responses.len(),
                dones.len()
            )));
        }
        Ok(responses)
    }
    .await;
    match result {
        Ok(responses) => {
            for (done, r) in dones.into_iter().zip(responses) {
                let _ = done.send(answer(r));
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

fn answer(r: ProposeResponse) -> Result<InternalResponse, EtcdError> {
    if !r.error.is_empty() {
        return Err(decode_peer_error(&r.error));
    }
    r.response
        .ok_or_else(|| EtcdError::Internal("leader returned no response".into()))
}
