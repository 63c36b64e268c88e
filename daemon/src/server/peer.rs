//! The peer service on `listen-peer-urls`: raft messages from other members, snapshots they
//! stream to this one, and requests followers forward to the leader. A message from another
//! cluster, or from a member that is not (or no longer) in this cluster, is refused.

use std::path::PathBuf;
use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{Snapshot, SnapshotMeta, Vote};
use prost::Message;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{EtcdServer, Metrics};
use crate::api::retcdpeerpb::peer_server::{Peer, PeerServer};
use crate::api::retcdpeerpb::{
    LeaseAnswer, LeaseQuery, MembersRequest, MembersResponse, ProposeBatchRequest,
    ProposeBatchResponse, ProposeRequest, ProposeResponse, RaftMessage, ReadIndexRequest,
    ReadIndexResponse, SnapshotChunk, TimeoutNowRequest, TimeoutNowResponse,
};
use crate::cluster::MemberNode;
use crate::raft::network::MAX_PEER_MESSAGE;
use crate::raft::{SnapshotData, TypeConfig};

pub struct PeerService {
    server: Arc<EtcdServer>,
    snap_dir: PathBuf,
}

/// The gRPC service to mount on the peer listeners.
pub fn peer_routes(server: Arc<EtcdServer>) -> tonic::service::Routes {
    let snap_dir = crate::backend::db_path(&server.config().data_dir)
        .with_file_name("snap")
        .join("recv");
    tonic::service::Routes::new(
        PeerServer::new(PeerService { server, snap_dir })
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE),
    )
}

impl PeerService {
    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        if cluster_id != self.server.cluster_id() {
            return Err(Status::failed_precondition(format!(
                "retcd: cluster ID mismatch: this member belongs to cluster {:x}, the sender to {:x}",
                self.server.cluster_id(),
                cluster_id
            )));
        }
        Ok(())
    }

    fn check_member(&self, from: u64) -> Result<(), Status> {
        if !self.server.accepts_peer(from) {
            return Err(Status::permission_denied(format!(
                "retcd: member {from:x} is not a member of cluster {:x} (removed, or never added)",
                self.server.cluster_id()
            )));
        }
        Ok(())
    }

    fn check(&self, m: &RaftMessage) -> Result<(), Status> {
        self.check_cluster(m.cluster_id)?;
        self.check_member(m.from)
    }

    fn reply(&self, data: Vec<u8>) -> Response<RaftMessage> {
        Response::new(RaftMessage {
            cluster_id: self.server.cluster_id(),
            from: self.server.member_id(),
            to: 0,
            data,
        })
    }

    /// Writes a follower forwarded, over gRPC or a raft stream.
    async fn propose_all(&self, p: ProposeBatchRequest) -> Result<ProposeBatchResponse, Status> {
        self.check_cluster(p.cluster_id)?;
        // All proposed at once (in order), so they share the leader's log appends.
        let answers = futures::future::join_all(
            p.requests
                .into_iter()
                .map(|req| self.server.propose_as_leader(req)),
        )
        .await;
        Ok(ProposeBatchResponse {
            responses: answers.into_iter().map(propose_response).collect(),
        })
    }

    /// AppendEntries from the leader, over gRPC or a raft stream: the encoded answer.
    async fn append(&self, m: RaftMessage) -> Result<Vec<u8>, Status> {
        self.check(&m)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&m.data)?;
        let res = self.server.raft().append_entries(rpc).await;
        encode_answer(&res)
    }
}

/// Serves one raft stream (see [`crate::raft::stream`]) until the sender closes it or this
/// member stops: each AppendEntries is handed to raft here, its answer written back.
pub async fn serve_raft_stream(server: Arc<EtcdServer>, stream: tokio::net::TcpStream) {
    use crate::raft::stream::{accept, read_frame, write_answer, KIND_APPEND, KIND_PROPOSE};
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let svc = PeerService {
        server,
        snap_dir: PathBuf::new(),
    };
    let mut io = tokio::io::BufReader::new(stream);
    if let Err(e) = accept(&mut io).await {
        tracing::debug!(?peer, error = %e, "refused a peer connection");
        return;
    }
    loop {
        let (kind, body) = match read_frame(&mut io, MAX_PEER_MESSAGE + 1024).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(?peer, error = %e, "raft stream ended");
                return;
            }
        };
        let bad = |e: prost::DecodeError| {
            Status::invalid_argument(format!("bad raft stream message: {e}"))
        };
        let answer = match kind {
            KIND_APPEND => match RaftMessage::decode(body.as_slice()) {
                Ok(m) => {
                    Metrics::inc(&svc.server.metrics.stream_appends_received);
                    svc.append(m).await
                }
                Err(e) => Err(bad(e)),
            },
            KIND_PROPOSE => match ProposeBatchRequest::decode(body.as_slice()) {
                Ok(p) => {
                    Metrics::add(
                        &svc.server.metrics.stream_proposals_received,
                        p.requests.len() as u64,
                    );
                    svc.propose_all(p).await.map(|r| r.encode_to_vec())
                }
                Err(e) => Err(bad(e)),
            },
            other => Err(Status::unimplemented(format!(
                "raft stream message kind {other} is not known to this member"
            ))),
        };
        if let Err(e) = write_answer(io.get_mut(), answer).await {
            tracing::debug!(?peer, error = %e, "raft stream ended");
            return;
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Status> {
    bincode::deserialize(b).map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))
}

/// A raft call's outcome as the peer protocol carries it.
fn encode_answer<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Status> {
    bincode::serialize(v).map_err(|e| Status::internal(e.to_string()))
}

fn encode_err(e: &crate::error::EtcdError) -> Vec<u8> {
    bincode::serialize(e).unwrap_or_default()
}

/// A proposal's outcome as the peer protocol carries it.
fn propose_response(
    r: Result<crate::api::retcdpb::InternalResponse, crate::error::EtcdError>,
) -> ProposeResponse {
    match r {
        Ok(resp) => ProposeResponse {
            response: Some(resp),
            error: Vec::new(),
        },
        Err(e) => ProposeResponse {
            response: None,
            error: encode_err(&e),
        },
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(
        &self,
        r: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let data = self.append(r.into_inner()).await?;
        Ok(self.reply(data))
    }

    async fn vote(&self, r: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = r.into_inner();
        self.check(&m)?;
        let rpc: VoteRequest<u64> = decode(&m.data)?;
        let res = self.server.raft().vote(rpc).await;
        Ok(self.reply(encode_answer(&res)?))
    }

    async fn install_snapshot(
        &self,
        r: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        let mut stream = r.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        self.check_cluster(first.cluster_id)?;
        self.check_member(first.from)?;
        let (vote, meta): (Vote<u64>, SnapshotMeta<u64, MemberNode>) = decode(&first.header)?;
        let dir = self.snap_dir.join(format!(
            "{}-{}",
            meta.snapshot_id,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        // Dropping the handle removes the directory, whatever happens below.
        let data = SnapshotData {
            dir: Some(dir.clone()),
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Status::internal(format!("create {}: {e}", dir.display())))?;
        let mut chunk = Some(first);
        let mut received = 0u64;
        while let Some(c) = match chunk.take() {
            Some(c) => Some(c),
            None => stream.next().await.transpose()?,
        } {
            if c.file.is_empty() || c.file.contains('/') || c.file.starts_with('.') {
                return Err(Status::invalid_argument(format!(
                    "bad snapshot file name {:?}",
                    c.file
                )));
            }
            let path = dir.join(&c.file);
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .await
                .map_err(|e| Status::internal(format!("open {}: {e}", path.display())))?;
            f.seek(std::io::SeekFrom::Start(c.offset))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            f.write_all(&c.data)
                .await
                .map_err(|e| Status::internal(format!("write {}: {e}", path.display())))?;
            f.sync_all()
                .await
                .map_err(|e| Status::internal(format!("sync {}: {e}", path.display())))?;
            received += c.data.len() as u64;
        }
        tracing::info!(
            snapshot = %meta.snapshot_id,
            bytes = received,
            "received snapshot from the leader; installing"
        );
        let snapshot = Snapshot::<TypeConfig> {
            meta,
            snapshot: Box::new(data),
        };
        let res = self
            .server
            .raft()
            .install_full_snapshot(vote, snapshot)
            .await;
        Ok(self.reply(encode_answer(&res)?))
    }

    async fn propose(
        &self,
        r: Request<ProposeRequest>,
    ) -> Result<Response<ProposeResponse>, Status> {
        let p = r.into_inner();
        self.check_cluster(p.cluster_id)?;
        let req = p
            .request
            .ok_or_else(|| Status::invalid_argument("propose without a request"))?;
        Ok(Response::new(propose_response(
            self.server.propose_as_leader(req).await,
        )))
    }

    async fn propose_batch(
        &self,
        r: Request<ProposeBatchRequest>,
    ) -> Result<Response<ProposeBatchResponse>, Status> {
        Ok(Response::new(self.propose_all(r.into_inner()).await?))
    }

    async fn read_index(
        &self,
        r: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        self.check_cluster(r.get_ref().cluster_id)?;
        Ok(Response::new(
            match self.server.read_index_as_leader().await {
                Ok(index) => ReadIndexResponse {
                    index,
                    error: Vec::new(),
                },
                Err(e) => ReadIndexResponse {
                    index: 0,
                    error: encode_err(&e),
                },
            },
        ))
    }

    async fn members(
        &self,
        r: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        // 0 = a joining member that does not know the cluster yet.
        let cid = r.get_ref().cluster_id;
        if cid != 0 {
            self.check_cluster(cid)?;
        }
        let m = self.server.raft_metrics().membership_config.clone();
        let nodes: std::collections::BTreeMap<u64, MemberNode> = m
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        let learners: Vec<u64> = m.membership().learner_ids().collect();
        Ok(Response::new(MembersResponse {
            cluster_id: self.server.cluster_id(),
            members: bincode::serialize(&(nodes, learners))
                .map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn timeout_now(
        &self,
        r: Request<TimeoutNowRequest>,
    ) -> Result<Response<TimeoutNowResponse>, Status> {
        let t = r.into_inner();
        self.check_cluster(t.cluster_id)?;
        self.check_member(t.from)?;
        if self.server.leader() != Some(t.from) {
            return Err(Status::failed_precondition(
                "retcd: leader transfer from a member that does not lead",
            ));
        }
        tracing::info!(from = %format!("{:x}", t.from), "leadership offered; campaigning");
        self.server
            .campaign_after(std::time::Duration::from_millis(t.delay_ms.min(60_000)));
        Ok(Response::new(TimeoutNowResponse {}))
    }

    async fn lease_renew(&self, r: Request<LeaseQuery>) -> Result<Response<LeaseAnswer>, Status> {
        self.lease_query(r.into_inner(), true)
    }

    async fn lease_time_to_live(
        &self,
        r: Request<LeaseQuery>,
    ) -> Result<Response<LeaseAnswer>, Status> {
        self.lease_query(r.into_inner(), false)
    }

    async fn hash_kv(
        &self,
        r: Request<crate::api::retcdpeerpb::HashKvQuery>,
    ) -> Result<Response<crate::api::retcdpeerpb::HashKvAnswer>, Status> {
        self.check_cluster(r.get_ref().cluster_id)?;
        let a = match self.server.hash_kv(r.get_ref().revision).await {
            Ok(h) => crate::api::retcdpeerpb::HashKvAnswer {
                hash: h.hash,
                compact_revision: h.compact_revision,
                error: Vec::new(),
            },
            Err(e) => crate::api::retcdpeerpb::HashKvAnswer {
                error: bincode::serialize(&e).unwrap_or_default(),
                ..Default::default()
            },
        };
        Ok(Response::new(a))
    }
}

impl PeerService {
    fn lease_query(&self, q: LeaseQuery, renew: bool) -> Result<Response<LeaseAnswer>, Status> {
        self.check_cluster(q.cluster_id)?;
        Ok(Response::new(
            match self.server.lease_answer_as_leader(q.id, q.keys, renew) {
                Ok((ttl, granted_ttl, keys)) => LeaseAnswer {
                    ttl,
                    granted_ttl,
                    keys,
                    error: Vec::new(),
                },
                Err(e) => LeaseAnswer {
                    ttl: 0,
                    granted_ttl: 0,
                    keys: Vec::new(),
                    error: encode_err(&e),
                },
            },
        ))
    }
}
