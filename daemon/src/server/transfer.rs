//! Leadership transfer (etcd's MoveLeader, and the hand-over on SIGTERM).
//!
//! openraft 0.9 has no transfer API, but its leader lease makes one possible: a follower
//! refuses votes while its leader lease (= max election timeout) is fresh, and campaigns on its
//! own only after lease + a random election timeout. So the leader stops new proposals, makes
//! sure the target has every entry, tells it to campaign just after the lease runs out, and
//! stops its heartbeats: the target, being up to date, wins before anyone else's timer fires.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::EtcdServer;
use crate::api::retcdpeerpb::TimeoutNowRequest;
use crate::error::EtcdError;

/// Held while a transfer runs: heartbeats resume and proposals flow again when it goes.
struct TransferEnds<'a>(&'a EtcdServer);

impl Drop for TransferEnds<'_> {
    fn drop(&mut self) {
        self.0.raft.runtime_config().heartbeat(true);
        self.0.transferring.store(false, Ordering::SeqCst);
    }
}

impl EtcdServer {
    fn election_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.election_timeout_ms)
    }

    /// How long after the last heartbeat the target campaigns.
    fn transfer_delay(&self) -> Duration {
        let et = self.election_timeout();
        et + (et / 4).min(Duration::from_millis(100))
    }

    /// Waits while a leadership transfer holds new proposals (bounded).
    pub(crate) async fn wait_transfer(&self) {
        let deadline =
            tokio::time::Instant::now() + 3 * self.election_timeout() + Duration::from_secs(2);
        while self.transferring.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Hands leadership to voter `target`; returns once it leads.
    pub async fn move_leader(&self, target: u64) -> Result<(), EtcdError> {
        if self.leader() != Some(self.member_id) {
            return Err(EtcdError::NotLeader);
        }
        if target == self.member_id {
            return Ok(());
        }
        let m = self.raft_metrics();
        let membership = m.membership_config.membership().clone();
        if !membership.voter_ids().any(|id| id == target) {
            return Err(EtcdError::BadLeaderTransferee);
        }
        let node = membership
            .get_node(&target)
            .cloned()
            .ok_or(EtcdError::BadLeaderTransferee)?;
        if self.transferring.swap(true, Ordering::SeqCst) {
            return Err(EtcdError::Unavailable(
                "a leadership transfer is already in progress".into(),
            ));
        }
        // Ends the transfer however this call ends, a client giving up on it included.
        let _ends = TransferEnds(self);
        self.do_transfer(target, &node).await
    }

    async fn do_transfer(
        &self,
        target: u64,
        node: &crate::cluster::MemberNode,
    ) -> Result<(), EtcdError> {
        let et = self.election_timeout();
        // 1. The target must hold every entry (proposals are held from here on).
        let caught_up = async {
            loop {
                let m = self.raft_metrics();
                let last = m.last_log_index.unwrap_or(0);
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&target).cloned().flatten())
                    .map(|l| l.index)
                    .unwrap_or(0);
                if matched >= last {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(2 * et + Duration::from_secs(1), caught_up)
            .await
            .map_err(|_| transfer_aborted(target, "the member is not caught up"))?;
        // 2. Tell the target to campaign once the followers' leases run out, then stop
        // renewing them. Heartbeats go on until the target has taken the request: a target
        // that cannot take it (stopped, unreachable) leaves this member leading, as etcd's
        // failed transfer does, instead of leaving the followers without a leader.
        let delay = self.transfer_delay();
        let mut client = self
            .peers
            .client(target, node)
            .map_err(EtcdError::Internal)?;
        let mut req = tonic::Request::new(TimeoutNowRequest {
            cluster_id: self.cluster_id,
            from: self.member_id,
            delay_ms: delay.as_millis() as u64,
        });
        req.set_timeout(Duration::from_secs(2));
        client.timeout_now(req).await.map_err(|s| {
            let why = format!(
                "the member did not take the campaign request: {}",
                s.message()
            );
            transfer_aborted(target, &why)
        })?;
        self.raft.runtime_config().heartbeat(false);
        // 3. Wait for the target to lead.
        let mut rx = self.raft.metrics();
        let became_leader = async {
            loop {
                if rx.borrow().current_leader == Some(target) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(delay + 2 * et + Duration::from_secs(1), became_leader)
            .await
            .map_err(|_| transfer_aborted(target, "the member did not become leader in time"))?;
        tracing::info!(to = %format!("{target:x}"), "leadership transferred");
        Ok(())
    }

    /// On the target: campaign once the old leader's lease has run out.
    pub(crate) fn campaign_after(self: &std::sync::Arc<Self>, delay: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = me.raft.trigger().elect().await {
                tracing::warn!(error = %e, "campaign for leader transfer failed");
            }
        });
    }

    /// On SIGTERM: a leader hands over to the most caught-up connected voter first.
    pub async fn hand_over_leadership(&self) {
        if self.leader() != Some(self.member_id) {
            return;
        }
        let m = self.raft_metrics();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        let within = 2 * self.election_timeout();
        let best = m
            .replication
            .as_ref()
            .into_iter()
            .flat_map(|r| r.iter())
            .filter(|(id, _)| {
                **id != self.member_id && voters.contains(id) && self.peers.is_active(**id, within)
            })
            .max_by_key(|(_, l)| l.as_ref().map(|l| l.index))
            .map(|(id, _)| *id);
        let Some(target) = best else { return };
        match self.move_leader(target).await {
            Ok(()) => {
                tracing::info!(to = %format!("{target:x}"), "handed leadership over before stopping")
            }
            Err(e) => tracing::warn!(error = %e, "could not hand leadership over before stopping"),
        }
    }
}

/// Logs why a transfer to `target` gave up and answers etcd's error for it.
fn transfer_aborted(target: u64, why: &str) -> EtcdError {
    tracing::warn!(to = %format!("{target:x}"), why, "leader transfer aborted");
    EtcdError::TimeoutLeaderTransfer
}
