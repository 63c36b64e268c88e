//! The peer network, client side: gRPC channels to other members' `listen-peer-urls`, used by
//! openraft (AppendEntries, Vote, snapshot streaming) and by the request path (forwarding
//! writes and read-index requests to the leader). Channels connect lazily and reconnect on
//! their own; every call is bounded by a timeout, so a dead peer never blocks another.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{Snapshot, Vote};
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};

use super::stream::{plain_authority, RaftStream, KIND_APPEND, KIND_PROPOSE};
use super::TypeConfig;
use crate::api::retcdpeerpb::peer_client::PeerClient as GrpcPeerClient;
use crate::api::retcdpeerpb::{ProposeBatchRequest, RaftMessage, SnapshotChunk};
use crate::cluster::MemberNode;

/// Largest peer message (a batch of log entries or a snapshot chunk).
pub const MAX_PEER_MESSAGE: usize = 256 * 1024 * 1024;
const SNAPSHOT_CHUNK: usize = 1024 * 1024;
/// Entries one AppendEntries carries at most (bytes, encoded), whatever openraft's entry
/// count: with batch entries of several MiB a full payload would pass `MAX_PEER_MESSAGE`.
const APPEND_BYTES: u64 = 32 * 1024 * 1024;

/// About what an entry takes encoded: a request's protobuf length (computed, not encoded)
/// plus the entry's frame; membership and blank entries are small.
fn entry_bytes(e: &openraft::Entry<TypeConfig>) -> u64 {
    use prost::Message;
    match &e.payload {
        openraft::EntryPayload::Normal(req) => req.0.encoded_len() as u64 + 64,
        _ => bincode::serialized_size(e).unwrap_or(0),
    }
}

/// Keeps the longest prefix of `rpc`'s entries within `APPEND_BYTES` (at least one entry);
/// returns the last entry kept when some were left for the next request.
fn limit_append(rpc: &mut AppendEntriesRequest<TypeConfig>) -> Option<super::LogId> {
    let mut bytes = 0u64;
    let mut keep = 0;
    for e in &rpc.entries {
        bytes += entry_bytes(e);
        if keep > 0 && bytes > APPEND_BYTES {
            break;
        }
        keep += 1;
    }
    if keep == rpc.entries.len() {
        return None;
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(|e| e.log_id)?;
    // The follower must not learn a commit point beyond what it holds from this leader.
    rpc.leader_commit = rpc.leader_commit.min(Some(last));
    Some(last)
}

/// The commit index an AppendEntries may carry. The leader's own entries count as flushed
/// before they are (see `log_store`): a follower learns a commit index only once the leader's
/// log holds it too, so an entry a follower applies is on the disks of a majority even if the
/// leader loses power. On a disk slower than `wait` the request goes without a commit index
/// (the follower keeps its own; a later request brings it), so heartbeats still go out.
async fn commit_to_send(
    durable: &mut tokio::sync::watch::Receiver<u64>,
    commit: Option<super::LogId>,
    wait: Duration,
) -> Result<Option<super::LogId>, String> {
    let Some(c) = commit else {
        return Ok(None);
    };
    match tokio::time::timeout(wait, super::log_store::wait_durable(durable, c.index)).await {
        Ok(Ok(())) => Ok(Some(c)),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Idle raft streams by peer ID and URL.
type IdleStreams = HashMap<(u64, String), Vec<RaftStream>>;

/// gRPC clients to peers, by member ID, reused across calls.
#[derive(Clone)]
pub struct Peers {
    pub cluster_id: u64,
    pub self_id: u64,
    channels: Arc<Mutex<HashMap<u64, (String, Channel)>>>,
    /// Source address for peer connections (see [`Peers::with_local_ip`]).
    local_ip: Option<std::net::IpAddr>,
    /// When each peer last answered a raft message.
    last_contact: Arc<Mutex<HashMap<u64, std::time::Instant>>>,
    /// Set when peers refuse this member as not (or no longer) in the cluster.
    removed: Arc<tokio::sync::Notify>,
    removed_flag: Arc<std::sync::atomic::AtomicBool>,
    /// Peers that refused a raft stream (a member that does not speak it): messages to them
    /// go over gRPC until the time given.
    no_stream_until: Arc<Mutex<HashMap<u64, std::time::Instant>>>,
    /// Idle raft streams for forwarded writes, by peer and URL.
    idle_streams: Arc<Mutex<IdleStreams>>,
}

impl Peers {
    pub fn new(cluster_id: u64, self_id: u64) -> Peers {
        Peers {
            cluster_id,
            self_id,
            channels: Arc::default(),
            local_ip: None,
            last_contact: Arc::default(),
            removed: Arc::default(),
            removed_flag: Arc::default(),
            no_stream_until: Arc::default(),
            idle_streams: Arc::default(),
        }
    }

    /// Peer traffic originates from the member's own peer listen address when that is a
    /// loopback address (members on one host, each on its own 127.x address), so that
    /// every connection shows which member it comes from.
    pub fn with_local_ip(mut self, listen_host: &str) -> Peers {
        self.local_ip = listen_host
            .parse::<std::net::IpAddr>()
            .ok()
            .filter(|ip| ip.is_loopback());
        self
    }

    fn contacted(&self, id: u64) {
        self.last_contact
            .lock()
            .insert(id, std::time::Instant::now());
    }

    /// Whether member `id` answered within `within`.
    pub fn is_active(&self, id: u64, within: Duration) -> bool {
        id == self.self_id
            || self
                .last_contact
                .lock()
                .get(&id)
                .is_some_and(|t| t.elapsed() <= within)
    }

    fn mark_removed(&self) {
        if !self
            .removed_flag
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.removed.notify_waiters();
        }
        self.removed.notify_one();
    }

    /// Resolves once peers have refused this member as removed from the cluster.
    pub async fn wait_removed(&self) {
        loop {
            if self.removed_flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            self.removed.notified().await;
        }
    }

    /// Where a raft stream to member `id` at `url` connects: `None` for a TLS URL or a member
    /// that refused raft streams lately.
    fn stream_authority<'a>(&self, id: u64, url: &'a str) -> Option<&'a str> {
        let authority = plain_authority(url)?;
        match self.no_stream_until.lock().get(&id) {
            Some(until) if std::time::Instant::now() < *until => None,
            _ => Some(authority),
        }
    }

    fn refuse_streams(&self, id: u64) {
        tracing::info!(
            peer = %format!("{id:x}"),
            "peer does not speak raft streams; using gRPC to it for a while"
        );
        self.no_stream_until
            .lock()
            .insert(id, std::time::Instant::now() + NO_STREAM_FOR);
    }

    /// Forwards writes to member `id` (the leader) over a raft stream: the encoded
    /// `ProposeBatchResponse` or the status the peer gave; `None` when the peer takes them
    /// over gRPC only. A failure to connect says "tcp connect error" (the writes never
    /// reached the peer), as gRPC's does.
    pub async fn propose_over_stream(
        &self,
        id: u64,
        node: &MemberNode,
        req: &ProposeBatchRequest,
        timeout: Duration,
    ) -> Option<Result<Vec<u8>, tonic::Status>> {
        let url = node.peer_urls.first()?;
        let authority = self.stream_authority(id, url)?;
        let pool_key = (id, url.clone());
        let idle = {
            let mut pool = self.idle_streams.lock();
            let list = pool.entry(pool_key.clone()).or_default();
            std::iter::from_fn(|| list.pop()).find(|s| !s.closed_while_idle())
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stream = match idle {
            Some(s) => s,
            None => {
                match tokio::time::timeout_at(
                    deadline,
                    RaftStream::connect(authority, self.local_ip),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                        self.refuse_streams(id);
                        return None;
                    }
                    Ok(Err(e)) => {
                        return Some(Err(tonic::Status::unavailable(format!(
                            "tcp connect error: raft stream to {url}: {e}"
                        ))))
                    }
                    Err(_) => {
                        return Some(Err(tonic::Status::unavailable(format!(
                            "tcp connect error: raft stream to {url}: timed out"
                        ))))
                    }
                }
            }
        };
        match tokio::time::timeout_at(deadline, stream.call(KIND_PROPOSE, req, MAX_PEER_MESSAGE))
            .await
        {
            Ok(Ok(answer)) => {
                let mut pool = self.idle_streams.lock();
                let list = pool.entry(pool_key).or_default();
                if list.len() < IDLE_STREAMS {
                    list.push(stream);
                }
                Some(answer)
            }
            Ok(Err(e)) => Some(Err(tonic::Status::unavailable(format!(
                "raft stream to {url}: {e}"
            )))),
            Err(_) => Some(Err(tonic::Status::deadline_exceeded(format!(
                "raft stream to {url}: no answer within {timeout:?}"
            )))),
        }
    }

    /// A client for member `id` at the first of its peer URLs.
    pub fn client(&self, id: u64, node: &MemberNode) -> Result<GrpcPeerClient<Channel>, String> {
        let url = node
            .peer_urls
            .first()
            .cloned()
            .ok_or_else(|| format!("member {id:x} has no peer URL"))?;
        let mut map = self.channels.lock();
        let channel = match map.get(&id) {
            Some((u, ch)) if *u == url => ch.clone(),
            _ => {
                let ch = Endpoint::from_shared(url.clone())
                    .map_err(|e| format!("bad peer URL {url}: {e}"))?
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(5))
                    .local_address(self.local_ip)
                    .connect_lazy();
                map.insert(id, (url, ch.clone()));
                ch
            }
        };
        Ok(GrpcPeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE))
    }
}

/// How long messages to a peer that refused a raft stream go over gRPC before the stream is
/// tried again.
const NO_STREAM_FOR: Duration = Duration::from_secs(60);
/// Idle raft streams kept per peer for forwarded writes.
const IDLE_STREAMS: usize = 8;

/// openraft's network factory.
#[derive(Clone)]
pub struct PeerNetwork {
    pub peers: Peers,
    /// How far this member's raft log is durable (`LogStore::durable`).
    pub durable: tokio::sync::watch::Receiver<u64>,
}

/// openraft's connection to one peer (one per replication stream or vote).
pub struct PeerConn {
    peers: Peers,
    target: u64,
    node: MemberNode,
    /// The raft stream AppendEntries go over, connected on first use.
    stream: Option<RaftStream>,
    durable: tokio::sync::watch::Receiver<u64>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConn;

    async fn new_client(&mut self, target: u64, node: &MemberNode) -> PeerConn {
        PeerConn {
            peers: self.peers.clone(),
            target,
            node: node.clone(),
            stream: None,
            durable: self.durable.clone(),
        }
    }
}

type RpcErr<E> = RPCError<u64, MemberNode, E>;

fn status_to_rpc<E: std::error::Error>(s: tonic::Status, target: u64, ttl: Duration) -> RpcErr<E> {
    match s.code() {
        tonic::Code::PermissionDenied => {
            RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
                "peer {target:x} refused this member: {}",
                s.message()
            ))))
        }
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => RPCError::Timeout(Timeout {
            action: openraft::RPCTypes::AppendEntries,
            id: 0,
            target,
            timeout: ttl,
        }),
        tonic::Code::Unavailable | tonic::Code::Unknown => RPCError::Unreachable(Unreachable::new(
            &std::io::Error::other(s.message().to_string()),
        )),
        _ => RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
            "peer {target:x}: {}",
            s.message()
        )))),
    }
}

impl PeerConn {
    fn message(&self, data: Vec<u8>) -> tonic::Request<RaftMessage> {
        tonic::Request::new(RaftMessage {
            cluster_id: self.peers.cluster_id,
            from: self.peers.self_id,
            to: self.target,
            data,
        })
    }

    /// Maps a failed call; a peer refusing this member as removed is remembered.
    fn failed<E: std::error::Error>(&self, s: tonic::Status, ttl: Duration) -> RpcErr<E> {
        if s.code() == tonic::Code::PermissionDenied {
            tracing::error!(peer = %format!("{:x}", self.target), "{}", s.message());
            self.peers.mark_removed();
        }
        if s.code() == tonic::Code::FailedPrecondition
            && s.message().contains("cluster ID mismatch")
        {
            tracing::error!(
                peer = %format!("{:x}", self.target),
                "{}: this member's data dir belongs to another cluster than the member at that peer URL; check --initial-cluster and the data dir (a data dir from another cluster cannot join this one)",
                s.message()
            );
        }
        status_to_rpc(s, self.target, ttl)
    }

    /// AppendEntries `msg` over the raft stream: the answer's data or the status the peer
    /// gave; `None` when the peer takes it over gRPC only.
    async fn call_stream(
        &mut self,
        msg: &RaftMessage,
        ttl: Duration,
    ) -> Option<Result<Vec<u8>, tonic::Status>> {
        let url = self.node.peer_urls.first()?.clone();
        let authority = self.peers.stream_authority(self.target, &url)?;
        // A connection that served before may have been closed since (a peer restart): the
        // request goes once more on a new one (AppendEntries can be repeated safely). The
        // connection is taken out while a request is on it: if this call is dropped half-way
        // (openraft gives up on it), the connection goes with it, and no later request can
        // read this one's answer.
        for _ in 0..2 {
            let held = self.stream.take();
            let reused = held.is_some();
            let local_ip = self.peers.local_ip;
            let result = tokio::time::timeout(ttl, async move {
                let mut s = match held {
                    Some(s) => s,
                    None => RaftStream::connect(authority, local_ip).await?,
                };
                let answer = s.call(KIND_APPEND, msg, MAX_PEER_MESSAGE).await?;
                Ok::<_, std::io::Error>((s, answer))
            })
            .await;
            match result {
                Ok(Ok((s, answer))) => {
                    self.stream = Some(s);
                    return Some(answer);
                }
                Ok(Err(e)) => {
                    if e.kind() == std::io::ErrorKind::Unsupported {
                        self.peers.refuse_streams(self.target);
                        return None;
                    }
                    if !reused {
                        return Some(Err(tonic::Status::unavailable(format!(
                            "raft stream to {url}: {e}"
                        ))));
                    }
                }
                Err(_) => {
                    return Some(Err(tonic::Status::deadline_exceeded(format!(
                        "raft stream to {url}: no answer within {ttl:?}"
                    ))));
                }
            }
        }
        Some(Err(tonic::Status::unavailable(format!(
            "raft stream to {url}: connection lost"
        ))))
    }

    fn client<E: std::error::Error>(&self) -> Result<GrpcPeerClient<Channel>, RpcErr<E>> {
        self.peers
            .client(self.target, &self.node)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e))))
    }
}

fn encode<T: serde::Serialize, E: std::error::Error>(v: &T) -> Result<Vec<u8>, RpcErr<E>> {
    bincode::serialize(v)
        .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string()))))
}

fn decode<T: serde::de::DeserializeOwned, E: std::error::Error>(b: &[u8]) -> Result<T, RpcErr<E>> {
    bincode::deserialize(b)
        .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string()))))
}

impl RaftNetwork<TypeConfig> for PeerConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr<RaftError<u64>>> {
        let ttl = option.hard_ttl();
        let mut rpc = rpc;
        let partial = limit_append(&mut rpc);
        let wanted = rpc.leader_commit;
        rpc.leader_commit = commit_to_send(&mut self.durable, wanted, ttl / 2)
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e))))?;
        if rpc.leader_commit != wanted {
            tracing::debug!(
                peer = %format!("{:x}", self.target),
                "the raft log is not yet durable up to the commit index; sending without it"
            );
        }
        let mut req = self.message(encode(&rpc)?);
        let data = match self.call_stream(req.get_ref(), ttl).await {
            Some(answer) => answer.map_err(|s| self.failed(s, ttl))?,
            None => {
                req.set_timeout(ttl);
                let resp = self
                    .client()?
                    .append_entries(req)
                    .await
                    .map_err(|s| self.failed(s, ttl))?;
                resp.into_inner().data
            }
        };
        self.peers.contacted(self.target);
        let r: Result<AppendEntriesResponse<u64>, RaftError<u64>> = decode(&data)?;
        match r {
            // openraft sends the rest next.
            Ok(AppendEntriesResponse::Success) if partial.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(partial))
            }
            Ok(r) => Ok(r),
            Err(e) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr<RaftError<u64>>> {
        let ttl = option.hard_ttl();
        let mut req = self.message(encode(&rpc)?);
        req.set_timeout(ttl);
        let resp = self
            .client()?
            .vote(req)
            .await
            .map_err(|s| self.failed(s, ttl))?;
        self.peers.contacted(self.target);
        let r: Result<VoteResponse<u64>, RaftError<u64>> = decode(&resp.get_ref().data)?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let net = |e: String| StreamingError::Network(NetworkError::new(&std::io::Error::other(e)));
        let header = bincode::serialize(&(vote, &snapshot.meta)).map_err(|e| net(e.to_string()))?;
        let dir = snapshot
            .snapshot
            .dir
            .clone()
            .ok_or_else(|| net("snapshot has no checkpoint to send".into()))?;
        let mut client = self.peers.client(self.target, &self.node).map_err(|e| {
            StreamingError::Unreachable(Unreachable::new(&std::io::Error::other(e)))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let (cluster_id, from) = (self.peers.cluster_id, self.peers.self_id);
        let reader = tokio::spawn(stream_checkpoint(dir, header, cluster_id, from, tx));
        let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let resp = tokio::select! {
            r = call => r,
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
        };
        let read_result = reader.await.map_err(|e| net(e.to_string()))?;
        read_result.map_err(net)?;
        let resp = resp.map_err(|s| net(format!("peer {:x}: {}", self.target, s.message())))?;
        let r: Result<SnapshotResponse<u64>, Fatal<u64>> =
            bincode::deserialize(&resp.get_ref().data).map_err(|e| net(e.to_string()))?;
        r.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Sends every file of checkpoint `dir` in chunks; the first chunk carries `header`.
async fn stream_checkpoint(
    dir: PathBuf,
    header: Vec<u8>,
    cluster_id: u64,
    from: u64,
    tx: tokio::sync::mpsc::Sender<SnapshotChunk>,
) -> Result<(), String> {
    let mut header = Some(header);
    let mut names = Vec::new();
    let mut rd = tokio::fs::read_dir(&dir)
        .await
        .map_err(|e| format!("read snapshot dir {}: {e}", dir.display()))?;
    while let Some(e) = rd.next_entry().await.map_err(|e| e.to_string())? {
        if e.file_type().await.map(|t| t.is_file()).unwrap_or(false) {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for name in names {
        let mut f = tokio::fs::File::open(dir.join(&name))
            .await
            .map_err(|e| format!("open {name}: {e}"))?;
        let mut offset = 0u64;
        loop {
            let mut buf = vec![0u8; SNAPSHOT_CHUNK];
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| format!("read {name}: {e}"))?;
            buf.truncate(n);
            // Empty files are sent once so they exist on the other side.
            if n == 0 && offset > 0 {
                break;
            }
            let chunk = SnapshotChunk {
                cluster_id,
                from,
                header: header.take().unwrap_or_default(),
                file: name.clone(),
                offset,
                data: buf,
            };
            if tx.send(chunk).await.is_err() {
                return Err("snapshot receiver went away".into());
            }
            offset += n as u64;
            if n == 0 {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::etcdserverpb::PutRequest;
    use crate::api::retcdpb::{internal_request, InternalRequest};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    fn entry(index: u64, value_len: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Normal(super::super::Pb(InternalRequest {
                request: Some(internal_request::Request::Put(PutRequest {
                    key: b"k".to_vec(),
                    value: vec![0; value_len],
                    ..Default::default()
                })),
                auth_revision: 0,
            })),
        }
    }

    fn request(sizes: &[usize]) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(2, 1),
            prev_log_id: None,
            entries: sizes
                .iter()
                .enumerate()
                .map(|(i, s)| entry(i as u64 + 1, *s))
                .collect(),
            leader_commit: Some(LogId::new(CommittedLeaderId::new(2, 1), sizes.len() as u64)),
        }
    }

    #[tokio::test]
    async fn a_commit_index_goes_out_only_once_the_leaders_log_holds_it() {
        let id = |i| LogId::new(CommittedLeaderId::new(2, 1), i);
        let wait = Duration::from_millis(200);
        let (tx, mut rx) = tokio::sync::watch::channel(5u64);
        assert_eq!(commit_to_send(&mut rx, None, wait).await, Ok(None));
        assert_eq!(
            commit_to_send(&mut rx, Some(id(5)), wait).await,
            Ok(Some(id(5)))
        );
        // Durable a moment later: it waits.
        let later = tokio::spawn({
            let tx = tx.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send_replace(7);
            }
        });
        assert_eq!(
            commit_to_send(&mut rx, Some(id(7)), wait).await,
            Ok(Some(id(7)))
        );
        later.await.unwrap();
        // Not durable within the wait: the request goes without a commit index.
        assert_eq!(commit_to_send(&mut rx, Some(id(9)), wait).await, Ok(None));
        drop(tx);
        assert!(commit_to_send(&mut rx, Some(id(9)), wait).await.is_err());
    }

    #[test]
    fn append_requests_stay_within_their_byte_budget() {
        let mut small = request(&[100; 1000]);
        assert_eq!(limit_append(&mut small), None);
        assert_eq!(small.entries.len(), 1000);

        let mb = 1 << 20;
        let mut big = request(&[12 * mb, 12 * mb, 12 * mb, 1]);
        let last = limit_append(&mut big);
        assert_eq!(big.entries.len(), 2);
        assert_eq!(last.map(|l| l.index), Some(2));
        assert_eq!(big.leader_commit.map(|l| l.index), Some(2));

        // One entry alone above the budget still goes.
        let mut huge = request(&[40 * mb, 1]);
        assert_eq!(limit_append(&mut huge).map(|l| l.index), Some(1));
        assert_eq!(huge.entries.len(), 1);
    }
}
