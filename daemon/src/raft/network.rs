//! The peer network openraft uses to reach other members. Peer transport (AppendEntries,
//! Vote, snapshot streaming over gRPC on `listen-peer-urls`) arrives with cluster support;
//! until then a single-member cluster never calls it, and any call reports the peer
//! unreachable instead of panicking.

use std::future::Future;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{Snapshot, Vote};

use super::TypeConfig;
use crate::cluster::MemberNode;

#[derive(Clone, Default)]
pub struct PeerNetwork;

pub struct PeerClient {
    target: u64,
}

impl PeerClient {
    fn unreachable(&self) -> std::io::Error {
        std::io::Error::other(format!(
            "member {:x}: peer transport is not implemented yet",
            self.target
        ))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, _node: &MemberNode) -> PeerClient {
        PeerClient { target }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        Err(RPCError::Unreachable(Unreachable::new(&self.unreachable())))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        Err(RPCError::Unreachable(Unreachable::new(&self.unreachable())))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote<u64>,
        _snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        Err(StreamingError::Network(NetworkError::new(
            &self.unreachable(),
        )))
    }
}
