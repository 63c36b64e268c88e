//! Membership changes (etcd's Cluster service), executed on the leader as raft configuration
//! changes, with etcd's checks: duplicate peer URLs, at most one learner, promote only an
//! in-sync learner, and (with `--strict-reconfig-check`) no change that would leave fewer
//! started, connected voters than a quorum.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::ChangeMembers;

use super::EtcdServer;
use crate::api::etcdserverpb::{
    Member, MemberAddRequest, MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest,
};
use crate::api::retcdpb::{internal_request, internal_response, InternalResponse};
use crate::cluster::{attrs_key, member_id, MemberAttrs, MemberNode};
use crate::error::EtcdError;

/// etcd allows one learner at a time.
const MAX_LEARNERS: usize = 1;

pub(crate) fn is_membership_change(r: &internal_request::Request) -> bool {
    use internal_request::Request as Rq;
    matches!(
        r,
        Rq::MemberAdd(_) | Rq::MemberRemove(_) | Rq::MemberUpdate(_) | Rq::MemberPromote(_)
    )
}

struct View {
    nodes: BTreeMap<u64, MemberNode>,
    voters: BTreeSet<u64>,
}

impl EtcdServer {
    fn membership_view(&self) -> View {
        let m = self.raft_metrics().membership_config.clone();
        View {
            nodes: m
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
            voters: m.membership().voter_ids().collect(),
        }
    }

    fn is_started(&self, id: u64) -> bool {
        self.store
            .backend()
            .get_meta::<MemberAttrs>(&attrs_key(id))
            .ok()
            .flatten()
            .is_some_and(|a| !a.name.is_empty())
    }

    /// Voters that have started (published) and answered recently.
    fn healthy_voters(&self, voters: &BTreeSet<u64>) -> usize {
        let within =
            Duration::from_millis(self.cfg.election_timeout_ms * 2).max(Duration::from_secs(2));
        voters
            .iter()
            .filter(|id| self.is_started(**id) && self.peers.is_active(**id, within))
            .count()
    }

    /// etcd's strict reconfiguration check for a change to `new_voters`.
    fn check_quorum_after(&self, new_voters: &BTreeSet<u64>) -> Result<(), EtcdError> {
        if !self.cfg.strict_reconfig_check {
            return Ok(());
        }
        let quorum = new_voters.len() / 2 + 1;
        if self.healthy_voters(new_voters) < quorum {
            return Err(EtcdError::UnhealthyCluster);
        }
        Ok(())
    }

    fn check_urls(
        &self,
        view: &View,
        urls: &[String],
        except: Option<u64>,
    ) -> Result<(), EtcdError> {
        if urls.is_empty() {
            return Err(EtcdError::BadPeerUrls(
                "at least one peer URL is required".into(),
            ));
        }
        crate::config::parse_urls("peer-urls", &urls.join(","))
            .map_err(|e| EtcdError::BadPeerUrls(e.to_string()))?;
        for (id, n) in &view.nodes {
            if Some(*id) == except {
                continue;
            }
            if n.peer_urls.iter().any(|u| urls.contains(u)) {
                return Err(EtcdError::PeerUrlExists);
            }
        }
        Ok(())
    }

    async fn raft_change(
        &self,
        change: ChangeMembers<u64, MemberNode>,
        retain: bool,
    ) -> Result<(), EtcdError> {
        use openraft::error::{ClientWriteError, RaftError};
        let before = self
            .raft_metrics()
            .membership_config
            .log_id()
            .map(|l| l.index);
        let raft = self.raft.clone();
        let mut task = tokio::spawn(async move { raft.change_membership(change, retain).await });
        // openraft commits a change in two steps (joint, then final). Like etcd, answer once
        // the change itself is committed: a voter added to a one-member cluster cannot vote
        // on the final step until it starts, which may be long after this request.
        let mut metrics = self.raft.metrics();
        let joint_committed = async {
            loop {
                {
                    let m = metrics.borrow();
                    let cfg = &m.membership_config;
                    let idx = cfg.log_id().map(|l| l.index);
                    if idx > before
                        && cfg.membership().get_joint_config().len() > 1
                        && m.last_applied.map(|l| l.index) >= idx
                    {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let result = tokio::time::timeout(self.request_timeout, async {
            tokio::select! {
                r = &mut task => Some(r),
                _ = joint_committed => None,
            }
        })
        .await;
        match result {
            Err(_) => Err(EtcdError::Timeout),
            // The final step goes on in the background.
            Ok(None) => Ok(()),
            Ok(Some(Err(e))) => Err(EtcdError::Internal(format!("membership change: {e}"))),
            Ok(Some(Ok(Ok(_)))) => Ok(()),
            Ok(Some(Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))))) => {
                Err(EtcdError::NotLeader)
            }
            Ok(Some(Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))))) => {
                Err(EtcdError::Unavailable(format!(
                    "membership change refused: {e}"
                )))
            }
            Ok(Some(Ok(Err(RaftError::Fatal(_))))) => Err(EtcdError::Stopped),
        }
    }

    /// Makes learner `id` a voter once it has started and published itself.
    fn promote_when_started(&self, id: u64) {
        let raft = self.raft.clone();
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let started = store
                    .backend()
                    .get_meta::<MemberAttrs>(&attrs_key(id))
                    .ok()
                    .flatten()
                    .is_some_and(|a| !a.name.is_empty());
                let m = raft.metrics().borrow().membership_config.clone();
                if m.membership().get_node(&id).is_none() {
                    return; // removed meanwhile
                }
                if m.membership().voter_ids().any(|v| v == id) {
                    return;
                }
                if !started {
                    continue;
                }
                let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    raft.change_membership(change, false),
                )
                .await
                {
                    Ok(Ok(_)) => {
                        tracing::info!(member = %format!("{id:x}"), "added member is now a voter");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(member = %format!("{id:x}"), error = %e, "making the added member a voter failed; retrying")
                    }
                    Err(_) => {
                        tracing::warn!(member = %format!("{id:x}"), "making the added member a voter timed out; retrying")
                    }
                }
            }
        });
    }

    /// Executes a membership change; only the leader does.
    pub(crate) async fn change_members(
        &self,
        req: internal_request::Request,
    ) -> Result<InternalResponse, EtcdError> {
        use internal_request::Request as Rq;
        use internal_response::Response as Rs;
        if self.leader() != Some(self.member_id) {
            return Err(EtcdError::NotLeader);
        }
        let view = self.membership_view();
        let learners = view.nodes.len() - view.voters.len();
        let response = match req {
            Rq::MemberAdd(MemberAddRequest {
                peer_ur_ls,
                is_learner,
            }) => {
                self.check_urls(&view, &peer_ur_ls, None)?;
                if is_learner && learners >= MAX_LEARNERS {
                    return Err(EtcdError::TooManyLearners);
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let id = member_id(&peer_ur_ls, "", Some(now));
                if view.nodes.contains_key(&id) {
                    return Err(EtcdError::MemberExists);
                }
                let node = MemberNode {
                    peer_urls: peer_ur_ls.clone(),
                };
                if is_learner {
                    self.raft_change(ChangeMembers::AddNodes(BTreeMap::from([(id, node)])), true)
                        .await?;
                } else {
                    let mut after = view.voters.clone();
                    after.insert(id);
                    // etcd's exception: a second member may always join a one-member cluster
                    // (rebuilding from a restored or force-new-cluster survivor).
                    if view.voters.len() != 1 {
                        self.check_quorum_after(&after)?;
                    }
                    if self.healthy_voters(&view.voters) > after.len() / 2 {
                        self.raft_change(
                            ChangeMembers::AddVoters(BTreeMap::from([(id, node)])),
                            false,
                        )
                        .await?;
                    } else {
                        // Growing a one-member cluster: raft's joint consensus could not commit
                        // the change before the new member runs, so it joins as a learner and
                        // becomes a voter once it has started (etcd answers at once too).
                        self.raft_change(
                            ChangeMembers::AddNodes(BTreeMap::from([(id, node)])),
                            true,
                        )
                        .await?;
                        self.promote_when_started(id);
                    }
                }
                tracing::info!(member = %format!("{id:x}"), urls = ?peer_ur_ls, is_learner, "added member");
                Rs::MemberAdded(Member {
                    id,
                    name: String::new(),
                    peer_ur_ls,
                    client_ur_ls: Vec::new(),
                    is_learner,
                })
            }
            Rq::MemberRemove(MemberRemoveRequest { id }) => {
                if !view.nodes.contains_key(&id) {
                    return Err(EtcdError::MemberNotFound);
                }
                if view.voters.contains(&id) {
                    let mut after = view.voters.clone();
                    after.remove(&id);
                    self.check_quorum_after(&after)?;
                    self.raft_change(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                        .await?;
                } else {
                    self.raft_change(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                        .await?;
                }
                tracing::info!(member = %format!("{id:x}"), "removed member");
                Rs::MembersChanged(true)
            }
            Rq::MemberUpdate(MemberUpdateRequest { id, peer_ur_ls }) => {
                if !view.nodes.contains_key(&id) {
                    return Err(EtcdError::MemberNotFound);
                }
                self.check_urls(&view, &peer_ur_ls, Some(id))?;
                let node = MemberNode {
                    peer_urls: peer_ur_ls.clone(),
                };
                self.raft_change(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])), true)
                    .await?;
                tracing::info!(member = %format!("{id:x}"), urls = ?peer_ur_ls, "updated member");
                Rs::MembersChanged(true)
            }
            Rq::MemberPromote(MemberPromoteRequest { id }) => {
                if !view.nodes.contains_key(&id) {
                    return Err(EtcdError::MemberNotFound);
                }
                if view.voters.contains(&id) {
                    return Err(EtcdError::MemberNotLearner);
                }
                let m = self.raft_metrics();
                let last = m.last_log_index.unwrap_or(0);
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten())
                    .map(|l| l.index)
                    .unwrap_or(0);
                // etcd: the learner's progress must be within 90% of the leader's.
                if (matched as f64) < (last as f64) * 0.9 {
                    return Err(EtcdError::LearnerNotReady);
                }
                let mut after = view.voters.clone();
                after.insert(id);
                self.check_quorum_after(&after)?;
                self.raft_change(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await?;
                tracing::info!(member = %format!("{id:x}"), "promoted learner");
                Rs::MembersChanged(true)
            }
            other => {
                return Err(EtcdError::Internal(format!(
                    "not a membership change: {other:?}"
                )))
            }
        };
        Ok(InternalResponse {
            response: Some(response),
        })
    }
}
