//! openraft glue: the type configuration, the raft log on RocksDB, the state machine that
//! applies committed entries to MVCC, and the peer network.

// openraft's `StorageError` is what its storage traits return; our helpers return it too.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod stream;

use std::fmt;
use std::sync::Arc;

use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::retcdpb::{InternalRequest, InternalResponse};
use crate::cluster::MemberNode;
use crate::error::EtcdError;

/// A protobuf message carried through openraft's serde bounds as its wire bytes.
#[derive(Clone, Default, PartialEq)]
pub struct Pb<T: Message + Default>(pub T);

impl<T: Message + Default + fmt::Debug> fmt::Debug for Pb<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<T: Message + Default> Serialize for Pb<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.encode_to_vec())
    }
}

impl<'de, T: Message + Default> Deserialize<'de> for Pb<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde::de::Deserialize::deserialize(d)?;
        T::decode(bytes.as_slice())
            .map(Pb)
            .map_err(serde::de::Error::custom)
    }
}

/// What a member proposes.
pub type Request = Pb<InternalRequest>;
/// What applying an entry returned: the response or etcd's error — one for each request of a
/// batch entry (`InternalBatch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    One(Result<Pb<InternalResponse>, EtcdError>),
    Batch(Vec<Result<Pb<InternalResponse>, EtcdError>>),
}

/// A snapshot handle. The state machine is persistent in RocksDB, so the snapshot openraft
/// builds for log compaction records only the applied point (`dir` is None). A snapshot sent
/// to a lagging or new member is a RocksDB checkpoint (hard links, taken when needed) in
/// `dir`, streamed file by file; the receiver collects the files into its own `dir`.
/// The directory is removed when the handle is dropped.
#[derive(Debug, Default)]
pub struct SnapshotData {
    pub dir: Option<std::path::PathBuf>,
}

impl Drop for SnapshotData {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

openraft::declare_raft_types!(
    /// retcd's raft types: member IDs are etcd member IDs.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = MemberNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;

/// Raft timing and log compaction from the member's configuration.
pub fn raft_config(cfg: &crate::config::Config) -> Result<Arc<openraft::Config>, String> {
    let c = openraft::Config {
        cluster_name: "retcd".into(),
        heartbeat_interval: cfg.heartbeat_interval_ms,
        // A follower campaigns after openraft's leader lease (= election_timeout_max) plus a
        // random election timeout: with [ET/2, ET) that is 1.5-2 x ET after the last
        // heartbeat, close to etcd's [ET, 2 x ET).
        election_timeout_min: (cfg.election_timeout_ms / 2).max(cfg.heartbeat_interval_ms + 1),
        election_timeout_max: cfg.election_timeout_ms.max(cfg.heartbeat_interval_ms + 2),
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snapshot_count),
        max_in_snapshot_log_to_keep: cfg.snapshot_catchup_entries,
        purge_batch_size: cfg.snapshot_count.clamp(1, 1024),
        max_payload_entries: 1000,
        ..Default::default()
    };
    c.validate()
        .map(Arc::new)
        .map_err(|e| format!("raft configuration: {e}"))
}

/// Turns any error into an openraft storage error with context.
pub(crate) fn io_err(
    subject: openraft::ErrorSubject<u64>,
    verb: openraft::ErrorVerb,
    e: impl fmt::Display,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}
