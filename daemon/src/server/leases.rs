//! The Lease service's request path: grant and revoke go through raft; keep-alive and
//! time-to-live are answered by the leader (forwarded there from followers); the leader's
//! expiry loop proposes a revoke for every lease whose deadline passed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::EtcdServer;
use crate::api::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveResponse,
};
use crate::api::retcdpb::{internal_request, internal_response, InternalRequest};
use crate::api::retcdpeerpb::LeaseQuery;
use crate::error::EtcdError;
use crate::lease::MAX_LEASE_TTL;

/// (remaining or granted TTL, granted TTL, attached keys); TTL -1 means no such lease.
type LeaseAnswer = (i64, i64, Vec<Vec<u8>>);

impl EtcdServer {
    /// etcd's minimum TTL: 1.5 x election timeout, rounded up to whole seconds.
    fn min_lease_ttl(&self) -> i64 {
        ((self.cfg.election_timeout_ms * 3 / 2) as i64 + 999) / 1000
    }

    /// A server-chosen lease ID: etcd's scheme (member ID bits on top, time and a counter
    /// below), always positive.
    fn next_lease_id(&self) -> i64 {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let n = self.lease_ids.fetch_add(1, Ordering::Relaxed);
        let suffix = ((ms << 8) & 0x0000_ffff_ffff_ffff).wrapping_add(n) & 0x0000_ffff_ffff_ffff;
        let id = ((self.member_id & 0xffff) << 48) | suffix;
        (id & 0x7fff_ffff_ffff_ffff) as i64
    }

    pub async fn lease_grant(&self, r: LeaseGrantRequest) -> Result<LeaseGrantResponse, EtcdError> {
        self.refuse_if_learner()?;
        if r.ttl > MAX_LEASE_TTL {
            return Err(EtcdError::LeaseTtlTooLarge);
        }
        self.check_quota(0).await?;
        let ttl = r.ttl.max(self.min_lease_ttl());
        let id = if r.id != 0 {
            r.id
        } else {
            let mut id = self.next_lease_id();
            while id == 0 || self.lessor.ids().binary_search(&id).is_ok() {
                id = self.next_lease_id();
            }
            id
        };
        self.propose_for(
            internal_request::Request::LeaseGrant(LeaseGrantRequest { ttl, id }),
            "lease grant",
            |r| match r {
                internal_response::Response::LeaseGrant(x) => Ok(x),
                other => Err(other),
            },
        )
        .await
    }

    pub async fn lease_revoke(
        &self,
        r: LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, EtcdError> {
        self.refuse_if_learner()?;
        self.propose_for(
            internal_request::Request::LeaseRevoke(r),
            "lease revoke",
            |r| match r {
                internal_response::Response::LeaseRevoke(x) => Ok(x),
                other => Err(other),
            },
        )
        .await
    }

    pub fn lease_leases(&self) -> LeaseLeasesResponse {
        LeaseLeasesResponse {
            header: Some(self.header()),
            leases: self
                .lessor
                .ids()
                .into_iter()
                .map(|id| LeaseStatus { id })
                .collect(),
        }
    }

    /// A keep-alive: the lease's TTL, or 0 when it does not exist (etcd's answer).
    pub async fn lease_renew(&self, id: i64) -> Result<i64, EtcdError> {
        self.refuse_if_learner()?;
        let a = self.ask_leader_about_lease(id, false, true).await?;
        Ok(a.0.max(0))
    }

    pub async fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        self.refuse_if_learner()?;
        let (ttl, granted, ks) = self.ask_leader_about_lease(id, keys, false).await?;
        Ok(LeaseTimeToLiveResponse {
            header: Some(self.header()),
            id,
            ttl,
            granted_ttl: if ttl == -1 { 0 } else { granted },
            keys: if keys { ks } else { Vec::new() },
        })
    }

    /// Answers on the leader; elsewhere asks the leader.
    async fn ask_leader_about_lease(
        &self,
        id: i64,
        keys: bool,
        renew: bool,
    ) -> Result<LeaseAnswer, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let leader = self.leader();
            match leader {
                Some(l) if l == self.member_id => {
                    return self.lease_answer_as_leader(id, keys, renew)
                }
                Some(l) => {
                    let node = self
                        .raft_metrics()
                        .membership_config
                        .membership()
                        .get_node(&l)
                        .cloned();
                    let Some(node) = node else {
                        self.pause_for_leader(leader, deadline).await?;
                        continue;
                    };
                    let mut client = self.peers.client(l, &node).map_err(EtcdError::Internal)?;
                    let mut req = tonic::Request::new(LeaseQuery {
                        cluster_id: self.cluster_id,
                        id,
                        keys,
                    });
                    req.set_timeout(
                        deadline.saturating_duration_since(tokio::time::Instant::now()),
                    );
                    let res = if renew {
                        client.lease_renew(req).await
                    } else {
                        client.lease_time_to_live(req).await
                    };
                    match res {
                        Ok(a) => {
                            let a = a.into_inner();
                            if !a.error.is_empty() {
                                match super::decode_peer_error(&a.error) {
                                    EtcdError::NotLeader => {
                                        self.pause_for_leader(leader, deadline).await?;
                                        continue;
                                    }
                                    e => return Err(e),
                                }
                            }
                            return Ok((a.ttl, a.granted_ttl, a.keys));
                        }
                        Err(s) => match super::peer_status(s) {
                            EtcdError::NotLeader => self.pause_for_leader(leader, deadline).await?,
                            e => return Err(e),
                        },
                    }
                }
                None => self.wait_for_leader_change(None, deadline).await?,
            }
        }
    }

    /// The leader's own answer.
    pub fn lease_answer_as_leader(
        &self,
        id: i64,
        keys: bool,
        renew: bool,
    ) -> Result<LeaseAnswer, EtcdError> {
        if self.leader() != Some(self.member_id) {
            return Err(EtcdError::NotLeader);
        }
        // The expiry loop may not have noticed the leadership yet.
        self.lessor.set_leading(true);
        if renew {
            return Ok(match self.lessor.renew(id) {
                Some(ttl) => (ttl, ttl, Vec::new()),
                None => (-1, 0, Vec::new()),
            });
        }
        Ok(match self.lessor.time_to_live(id) {
            Some((ttl, granted, ks)) => (ttl, granted, if keys { ks } else { Vec::new() }),
            None => (-1, 0, Vec::new()),
        })
    }
}

/// The leader's expiry loop: keeps the lessor told whether it leads, and revokes (through
/// raft) every lease whose deadline passed.
pub fn spawn_expiry(server: Arc<EtcdServer>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_checkpoint = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let leading = server.leader() == Some(server.member_id);
            server.lessor.set_leading(leading);
            if !leading {
                continue;
            }
            if let Some(every) = server.cfg.lease_checkpoint_interval {
                if last_checkpoint.elapsed() >= every {
                    last_checkpoint = tokio::time::Instant::now();
                    checkpoint(&server).await;
                }
            }
            for id in server.lessor.expired(1000) {
                let s = server.clone();
                tokio::spawn(async move {
                    match s.lease_revoke(LeaseRevokeRequest { id }).await {
                        Ok(_) | Err(EtcdError::LeaseNotFound) => {
                            tracing::debug!(lease = %format!("{id:016x}"), "lease expired and revoked")
                        }
                        Err(e) => tracing::warn!(
                            lease = %format!("{id:016x}"),
                            error = %e,
                            "revoking an expired lease failed; will retry"
                        ),
                    }
                });
            }
        }
    })
}

/// Leader: records every lease's remaining TTL through raft, so a new leader (or this one after
/// a restart) resumes from it instead of granting a full TTL again.
async fn checkpoint(server: &EtcdServer) {
    let checkpoints: Vec<crate::api::etcdserverpb::LeaseCheckpoint> = server
        .lessor
        .remaining_ttls()
        .into_iter()
        .map(|(id, remaining_ttl)| crate::api::etcdserverpb::LeaseCheckpoint { id, remaining_ttl })
        .collect();
    for chunk in checkpoints.chunks(1000) {
        let req = InternalRequest {
            request: Some(internal_request::Request::LeaseCheckpoint(
                crate::api::etcdserverpb::LeaseCheckpointRequest {
                    checkpoints: chunk.to_vec(),
                },
            )),
            ..Default::default()
        };
        if let Err(e) = server.propose(req).await {
            tracing::warn!(error = %e, "lease checkpoint failed");
            return;
        }
    }
}
