//! The request path: validate, then propose writes through raft (answered once applied), or
//! serve reads from MVCC after a linearizable barrier (or locally when serializable).

mod auth;
pub mod bootstrap;
pub mod compactor;
pub mod corrupt;
mod forward;
mod leases;
pub mod maintenance;
mod membership;
pub mod metrics;
pub mod peer;
mod propose;
mod reads;
mod slots;
mod transfer;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::RaftMetrics;
use prost::Message;
use tokio::sync::watch;

pub use bootstrap::{start, wait_ready};
pub use leases::spawn_expiry;
pub use metrics::Metrics;

use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, Member,
    MemberListRequest, MemberListResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader, StatusRequest, StatusResponse, TxnRequest, TxnResponse,
};
use crate::api::retcdpb::{internal_request, internal_response, InternalRequest, InternalResponse};
use crate::apply::execute_range;
use crate::cluster::{attrs_key, MemberAttrs, MemberNode};
use crate::config::Config;
use crate::error::EtcdError;
use crate::mvcc::Store;
use crate::raft::network::Peers;
use crate::raft::Raft;
use crate::version::ETCD_SERVER_VERSION;

pub struct EtcdServer {
    raft: Raft,
    raft_metrics: watch::Receiver<RaftMetrics<u64, MemberNode>>,
    store: Arc<Store>,
    cfg: Arc<Config>,
    member_id: u64,
    cluster_id: u64,
    request_timeout: Duration,
    peers: Peers,
    pub watch: Arc<crate::watch::WatchHub>,
    pub lessor: Arc<crate::lease::Lessor>,
    pub alarms: Arc<crate::alarm::Alarms>,
    pub auth: Arc<crate::auth::AuthStore>,
    /// Counter for server-chosen lease IDs.
    lease_ids: std::sync::atomic::AtomicU64,
    /// Set while leadership is being handed over: new proposals wait.
    transferring: std::sync::atomic::AtomicBool,
    /// When the backend size was last measured for the quota check, and the size.
    quota_cache: parking_lot::Mutex<(Option<std::time::Instant>, u64)>,
    pub metrics: Metrics,
    /// Linearizable reads of this member's clients (asking the leader when following).
    reads: reads::ReadCoalescer,
    /// Read indexes followers ask of this member as leader.
    leader_reads: reads::ReadCoalescer,
    /// Writes sent on to the leader, batched.
    forwarder: forward::Forwarder,
    /// Writes proposed on this member's raft, batched.
    proposer: propose::Proposer,
}

impl EtcdServer {
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Resolves once peers refuse this member as removed from the cluster.
    pub async fn removed(&self) {
        self.peers.wait_removed().await
    }

    /// Writes this member proposed as part of a batch entry (as leader).
    pub fn proposals_batched(&self) -> u64 {
        self.proposer.batched()
    }

    pub fn max_request_bytes(&self) -> usize {
        self.cfg.max_request_bytes as usize
    }

    pub fn raft_metrics(&self) -> RaftMetrics<u64, MemberNode> {
        self.raft_metrics.borrow().clone()
    }

    fn term(&self) -> u64 {
        self.raft_metrics.borrow().current_term
    }

    /// Whether raft messages from member `id` are taken: it is in the membership this member
    /// knows, or this member knows none yet (it is joining and accepts its cluster's leader).
    /// Asked on every AppendEntries, so it reads the metrics in place.
    pub fn accepts_peer(&self, id: u64) -> bool {
        let m = self.raft_metrics.borrow();
        let membership = m.membership_config.membership();
        membership.nodes().next().is_none() || membership.get_node(&id).is_some()
    }

    /// The current leader's member ID, if there is one.
    pub fn leader(&self) -> Option<u64> {
        self.raft_metrics.borrow().current_leader
    }

    /// A response header at the current revision.
    pub fn header(&self) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision: self.store.current_rev(),
            raft_term: self.term(),
        }
    }

    fn fill(&self, h: &mut Option<ResponseHeader>) {
        let rev = h.as_ref().map(|h| h.revision).unwrap_or(0);
        *h = Some(ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision: rev,
            raft_term: self.term(),
        });
    }

    /// Waits until this member has applied everything committed before the call (raft's
    /// read index, asked of the leader when this member follows), so a read that follows is
    /// linearizable.
    pub async fn linearizable_barrier(&self) -> Result<(), EtcdError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let Some(index) = self.reads.read_index(deadline).await? else {
            return Ok(());
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.raft
            .wait(Some(remaining))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => EtcdError::Timeout,
                openraft::metrics::WaitError::ShuttingDown => EtcdError::Stopped,
            })
    }

    /// After a failed attempt at leader `old`: waits up to a second for another leader (or the
    /// deadline), then lets the caller try again.
    async fn pause_for_leader(
        &self,
        old: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<(), EtcdError> {
        reads::pause_for_leader(&self.raft_metrics, old, deadline).await
    }

    /// Waits until a leader other than `old` is known, or the deadline passes.
    async fn wait_for_leader_change(
        &self,
        old: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<(), EtcdError> {
        reads::wait_for_leader_change(&self.raft_metrics, old, deadline).await
    }

    /// Proposes `request` and returns the response `pick` expects, its header filled in.
    pub(crate) async fn propose_for<T: WithHeader>(
        &self,
        request: internal_request::Request,
        what: &str,
        pick: impl FnOnce(internal_response::Response) -> Result<T, internal_response::Response>,
    ) -> Result<T, EtcdError> {
        self.propose_as(&None, request, what, pick).await
    }

    /// As `propose_for`, for a request whose permissions were checked for `ai`: applying it
    /// fails if the auth store changed since.
    pub(crate) async fn propose_as<T: WithHeader>(
        &self,
        ai: &Option<crate::auth::AuthInfo>,
        request: internal_request::Request,
        what: &str,
        pick: impl FnOnce(internal_response::Response) -> Result<T, internal_response::Response>,
    ) -> Result<T, EtcdError> {
        let resp = self
            .propose(InternalRequest {
                request: Some(request),
                auth_revision: ai.as_ref().map(|a| a.revision).unwrap_or(0),
            })
            .await?;
        match resp.response.map(pick) {
            Some(Ok(mut t)) => {
                self.fill(t.header_mut());
                Ok(t)
            }
            Some(Err(other)) => Err(unexpected(what, Some(other))),
            None => Err(unexpected(what, None)),
        }
    }

    async fn propose(&self, req: InternalRequest) -> Result<InternalResponse, EtcdError> {
        if req.encoded_len() > self.cfg.max_request_bytes as usize {
            return Err(EtcdError::RequestTooLarge);
        }
        Metrics::inc(&self.metrics.proposals_pending);
        self.wait_transfer().await;
        let out = self.propose_inner(req).await;
        self.metrics
            .proposals_pending
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if out.is_err() {
            Metrics::inc(&self.metrics.proposals_failed);
        }
        out
    }

    /// Proposes on this member when it leads, otherwise forwards to the leader; follows a
    /// leader change until the request timeout.
    async fn propose_inner(&self, req: InternalRequest) -> Result<InternalResponse, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        if req
            .request
            .as_ref()
            .is_some_and(membership::is_membership_change)
        {
            return self.route_membership_change(req, deadline).await;
        }
        loop {
            // A follower that knows the leader sends the write there at once (asking raft
            // first would only cost a round through its core to learn the same).
            if let Some((id, node)) = self.known_leader_elsewhere() {
                match self
                    .forwarder
                    .forward(id, &node, req.clone(), deadline)
                    .await
                {
                    Err(EtcdError::NotLeader) => {
                        self.pause_for_leader(Some(id), deadline).await?;
                        continue;
                    }
                    other => return other,
                }
            }
            let res = tokio::time::timeout_at(deadline, self.proposer.write(req.clone())).await;
            let not_leader = match write_answer(res) {
                Ok(answer) => return answer,
                Err(f) => f,
            };
            match (not_leader.leader_id, not_leader.leader_node) {
                (Some(id), Some(node)) => {
                    match self
                        .forwarder
                        .forward(id, &node, req.clone(), deadline)
                        .await
                    {
                        Err(EtcdError::NotLeader) => {
                            self.pause_for_leader(Some(id), deadline).await?
                        }
                        other => return other,
                    }
                }
                _ => self.wait_for_leader_change(None, deadline).await?,
            }
        }
    }

    /// The leader and its node, when it is known and another member.
    fn known_leader_elsewhere(&self) -> Option<(u64, MemberNode)> {
        let m = self.raft_metrics.borrow();
        let leader = m.current_leader.filter(|l| *l != self.member_id)?;
        let node = m
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()?;
        Some((leader, node))
    }

    /// Runs a membership change on the leader: here, or forwarded to it.
    async fn route_membership_change(
        &self,
        req: InternalRequest,
        deadline: tokio::time::Instant,
    ) -> Result<InternalResponse, EtcdError> {
        loop {
            let leader = self.leader();
            let res = match leader {
                None => {
                    self.wait_for_leader_change(None, deadline).await?;
                    continue;
                }
                Some(l) if l == self.member_id => match req.request.clone() {
                    Some(r) => self.change_members(r).await,
                    None => return Err(EtcdError::Internal("empty request".into())),
                },
                Some(l) => {
                    let node = self
                        .raft_metrics()
                        .membership_config
                        .membership()
                        .get_node(&l)
                        .cloned();
                    match node {
                        Some(node) => {
                            self.forwarder
                                .forward(l, &node, req.clone(), deadline)
                                .await
                        }
                        None => Err(EtcdError::NotLeader),
                    }
                }
            };
            match res {
                Err(EtcdError::NotLeader) => self.pause_for_leader(leader, deadline).await?,
                other => return other,
            }
        }
    }

    /// Proposes a request forwarded by a follower: only the leader accepts it.
    pub async fn propose_as_leader(
        &self,
        req: InternalRequest,
    ) -> Result<InternalResponse, EtcdError> {
        if req.encoded_len() > self.cfg.max_request_bytes as usize {
            return Err(EtcdError::RequestTooLarge);
        }
        if let Some(r) = req.request.as_ref() {
            if membership::is_membership_change(r) {
                return self.change_members(r.clone()).await;
            }
        }
        let res = tokio::time::timeout(self.request_timeout, self.proposer.write(req)).await;
        write_answer(res).unwrap_or(Err(EtcdError::NotLeader))
    }

    /// The leader's read index, for a follower's linearizable read (shared rounds, as local
    /// reads; NotLeader when this member does not lead).
    pub async fn read_index_as_leader(&self) -> Result<u64, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        Ok(self.leader_reads.read_index(deadline).await?.unwrap_or(0))
    }

    /// Publishes this member's name and client URLs through raft.
    pub async fn publish(&self) -> Result<(), EtcdError> {
        let req = InternalRequest {
            request: Some(internal_request::Request::Publish(
                crate::api::retcdpb::MemberAttributes {
                    id: self.member_id,
                    name: self.cfg.name.clone(),
                    client_urls: self
                        .cfg
                        .advertise_client_urls
                        .iter()
                        .map(|u| u.raw.clone())
                        .collect(),
                },
            )),
            ..Default::default()
        };
        self.propose(req).await.map(|_| ())
    }

    pub async fn range(&self, r: RangeRequest) -> Result<RangeResponse, EtcdError> {
        if !r.serializable {
            self.refuse_if_learner()?;
        }
        validate::range(&r)?;
        Metrics::inc(&self.metrics.range_total);
        if !r.serializable {
            self.linearizable_barrier().await?;
        }
        let mut resp = {
            let view = self.store.read();
            execute_range(&view, &r)?
        };
        self.fill(&mut resp.header);
        Ok(resp)
    }

    pub async fn put(&self, r: PutRequest) -> Result<PutResponse, EtcdError> {
        self.put_as(r, &None).await
    }

    pub async fn put_as(
        &self,
        r: PutRequest,
        ai: &Option<crate::auth::AuthInfo>,
    ) -> Result<PutResponse, EtcdError> {
        self.refuse_if_learner()?;
        validate::put(&r)?;
        self.check_quota(r.key.len() + r.value.len()).await?;
        Metrics::inc(&self.metrics.put_total);
        self.propose_as(ai, internal_request::Request::Put(r), "put", |r| match r {
            internal_response::Response::Put(x) => Ok(x),
            other => Err(other),
        })
        .await
    }

    pub async fn delete_range(
        &self,
        r: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        self.delete_range_as(r, &None).await
    }

    pub async fn delete_range_as(
        &self,
        r: DeleteRangeRequest,
        ai: &Option<crate::auth::AuthInfo>,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        self.refuse_if_learner()?;
        validate::delete_range(&r)?;
        Metrics::inc(&self.metrics.delete_total);
        self.propose_as(
            ai,
            internal_request::Request::DeleteRange(r),
            "delete",
            |r| match r {
                internal_response::Response::DeleteRange(x) => Ok(x),
                other => Err(other),
            },
        )
        .await
    }

    pub async fn txn(&self, r: TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.txn_as(r, &None).await
    }

    pub async fn txn_as(
        &self,
        r: TxnRequest,
        ai: &Option<crate::auth::AuthInfo>,
    ) -> Result<TxnResponse, EtcdError> {
        self.refuse_if_learner()?;
        validate::txn(&r, self.cfg.max_txn_ops as usize)?;
        if !crate::apply::txn_is_readonly(&r) {
            self.check_quota(r.encoded_len()).await?;
        }
        Metrics::inc(&self.metrics.txn_total);
        self.propose_as(ai, internal_request::Request::Txn(r), "txn", |r| match r {
            internal_response::Response::Txn(x) => Ok(x),
            other => Err(other),
        })
        .await
    }

    pub async fn compact(&self, r: CompactionRequest) -> Result<CompactionResponse, EtcdError> {
        self.refuse_if_learner()?;
        // The state machine removes old revisions while applying, so `physical` holds as soon
        // as the proposal returns.
        self.propose_for(
            internal_request::Request::Compaction(r),
            "compaction",
            |r| match r {
                internal_response::Response::Compaction(x) => Ok(x),
                other => Err(other),
            },
        )
        .await
    }

    fn members(&self) -> Vec<Member> {
        let m = self.raft_metrics.borrow().membership_config.clone();
        let membership = m.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let nodes: BTreeMap<u64, MemberNode> =
            membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
        let backend = self.store.backend();
        nodes
            .into_iter()
            .map(|(id, n)| {
                let attrs: MemberAttrs = backend
                    .get_meta(&attrs_key(id))
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                Member {
                    id,
                    name: attrs.name,
                    peer_ur_ls: n.peer_urls,
                    client_ur_ls: attrs.client_urls,
                    is_learner: !voters.contains(&id),
                }
            })
            .collect()
    }

    /// Whether this member is a learner (not a voter) now.
    pub fn is_learner(&self) -> bool {
        !self
            .raft_metrics
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.member_id)
    }

    /// etcd refuses most RPCs on a learner.
    pub fn refuse_if_learner(&self) -> Result<(), EtcdError> {
        if self.is_learner() {
            return Err(EtcdError::NotSupportedForLearner);
        }
        Ok(())
    }

    async fn membership_op(
        &self,
        r: internal_request::Request,
    ) -> Result<(ResponseHeader, InternalResponse), EtcdError> {
        self.refuse_if_learner()?;
        let resp = self
            .propose(InternalRequest {
                request: Some(r),
                ..Default::default()
            })
            .await?;
        // Answer with the membership the change produced, once it reached this member.
        let _ = self.linearizable_barrier().await;
        let mut header = self.header();
        header.revision = 0;
        Ok((header, resp))
    }

    pub async fn member_add(
        &self,
        r: crate::api::etcdserverpb::MemberAddRequest,
    ) -> Result<crate::api::etcdserverpb::MemberAddResponse, EtcdError> {
        let (header, resp) = self
            .membership_op(internal_request::Request::MemberAdd(r))
            .await?;
        match resp.response {
            Some(internal_response::Response::MemberAdded(m)) => {
                Ok(crate::api::etcdserverpb::MemberAddResponse {
                    header: Some(header),
                    member: Some(m),
                    members: self.members(),
                })
            }
            other => Err(unexpected("member add", other)),
        }
    }

    pub async fn member_remove(
        &self,
        r: crate::api::etcdserverpb::MemberRemoveRequest,
    ) -> Result<crate::api::etcdserverpb::MemberRemoveResponse, EtcdError> {
        let (header, _) = self
            .membership_op(internal_request::Request::MemberRemove(r))
            .await?;
        Ok(crate::api::etcdserverpb::MemberRemoveResponse {
            header: Some(header),
            members: self.members(),
        })
    }

    pub async fn member_update(
        &self,
        r: crate::api::etcdserverpb::MemberUpdateRequest,
    ) -> Result<crate::api::etcdserverpb::MemberUpdateResponse, EtcdError> {
        let (header, _) = self
            .membership_op(internal_request::Request::MemberUpdate(r))
            .await?;
        Ok(crate::api::etcdserverpb::MemberUpdateResponse {
            header: Some(header),
            members: self.members(),
        })
    }

    pub async fn member_promote(
        &self,
        r: crate::api::etcdserverpb::MemberPromoteRequest,
    ) -> Result<crate::api::etcdserverpb::MemberPromoteResponse, EtcdError> {
        let (header, _) = self
            .membership_op(internal_request::Request::MemberPromote(r))
            .await?;
        Ok(crate::api::etcdserverpb::MemberPromoteResponse {
            header: Some(header),
            members: self.members(),
        })
    }

    pub async fn member_list(&self, r: MemberListRequest) -> Result<MemberListResponse, EtcdError> {
        self.refuse_if_learner()?;
        if r.linearizable {
            self.linearizable_barrier().await?;
        }
        let mut header = self.header();
        header.revision = 0;
        Ok(MemberListResponse {
            header: Some(header),
            members: self.members(),
        })
    }

    pub fn status(&self) -> StatusResponse {
        let _ = StatusRequest {};
        let m = self.raft_metrics();
        let backend = self.store.backend();
        StatusResponse {
            header: Some(self.header()),
            version: ETCD_SERVER_VERSION.to_string(),
            db_size: backend.size_on_disk() as i64,
            leader: m.current_leader.unwrap_or(0),
            raft_index: m.last_log_index.unwrap_or(0),
            raft_term: m.current_term,
            raft_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            // etcd lists active alarms here, in their protobuf text form.
            errors: self
                .alarms
                .list()
                .iter()
                .map(|a| {
                    let name = crate::api::etcdserverpb::AlarmType::try_from(a.alarm)
                        .map(|t| t.as_str_name())
                        .unwrap_or("NONE");
                    format!("memberID:{} alarm:{name} ", a.member_id)
                })
                .collect(),
            db_size_in_use: backend.size_in_use() as i64,
            is_learner: !m
                .membership_config
                .membership()
                .voter_ids()
                .any(|id| id == self.member_id),
        }
    }

    /// etcd's health check: a leader exists and a linearizable read completes in time.
    pub async fn health(&self) -> Result<(), String> {
        if self.leader().is_none() {
            return Err("RAFT NO LEADER".into());
        }
        match tokio::time::timeout(Duration::from_secs(2), self.linearizable_barrier()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("etcdserver: request timed out".into()),
        }
    }
}

pub(crate) fn peer_status(s: tonic::Status) -> EtcdError {
    let msg = s.message().to_ascii_lowercase();
    if s.code() == tonic::Code::Unavailable
        && (msg.contains("tcp connect error") || msg.contains("connection refused"))
    {
        // Never reached the leader: safe to try again once a leader is known.
        return EtcdError::NotLeader;
    }
    match s.code() {
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => EtcdError::Timeout,
        tonic::Code::Unavailable | tonic::Code::Unknown => {
            // The connection to the leader was lost while it had the request (etcd's
            // message; the detail is logged).
            tracing::warn!(error = %s.message(), "lost the leader while it had a request");
            EtcdError::TimeoutDueToLeaderFail
        }
        // The leader answered with a refusal (another cluster, a removed member, a message
        // too large, ...): say what it said.
        _ => EtcdError::Unavailable(format!("leader unreachable: {}", s.message())),
    }
}

/// Response messages whose header the request path fills in.
pub(crate) trait WithHeader {
    fn header_mut(&mut self) -> &mut Option<ResponseHeader>;
}

/// An applied auth change answers with a bare header.
pub(crate) struct AuthApplied(pub Option<ResponseHeader>);

impl WithHeader for AuthApplied {
    fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
        &mut self.0
    }
}

macro_rules! with_header {
    ($($t:ty),*) => {$(
        impl WithHeader for $t {
            fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        }
    )*};
}

with_header!(
    PutResponse,
    DeleteRangeResponse,
    TxnResponse,
    CompactionResponse,
    crate::api::etcdserverpb::LeaseGrantResponse,
    crate::api::etcdserverpb::LeaseRevokeResponse,
    crate::api::etcdserverpb::AlarmResponse
);

/// What a write proposed on this member (within a deadline) answers its caller, or `Err`
/// with where the leader is when this member does not lead.
fn write_answer(
    res: Result<propose::Outcome, tokio::time::error::Elapsed>,
) -> Result<Result<InternalResponse, EtcdError>, openraft::error::ForwardToLeader<u64, MemberNode>>
{
    match res {
        Err(_) => Ok(Err(EtcdError::Timeout)),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(f),
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
            Ok(Err(EtcdError::Internal(e.to_string())))
        }
        Ok(Err(RaftError::Fatal(_))) => Ok(Err(EtcdError::Stopped)),
    }
}

fn unexpected(what: &str, got: Option<internal_response::Response>) -> EtcdError {
    EtcdError::Internal(format!("unexpected apply result for {what}: {got:?}"))
}

pub(crate) fn decode_peer_error(b: &[u8]) -> EtcdError {
    bincode::deserialize(b).unwrap_or_else(|e| EtcdError::Internal(format!("bad peer error: {e}")))
}
