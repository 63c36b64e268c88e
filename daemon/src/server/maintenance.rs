//! Maintenance requests served by this member alone: snapshot streaming (and, in later
//! steps, hashes, defragmentation and alarms).

use std::sync::Arc;

use tokio_stream::StreamExt;

use super::EtcdServer;
use crate::api::etcdserverpb::SnapshotResponse;
use crate::version::ETCD_SERVER_VERSION;

impl EtcdServer {
    /// A consistent snapshot of this member's state, in chunks; the last chunk ends with the
    /// sha256 of everything before it (docs/snapshot-format.md). Writes go on meanwhile.
    pub fn snapshot(
        self: &Arc<Self>,
    ) -> impl tokio_stream::Stream<Item = Result<SnapshotResponse, tonic::Status>> + Send + 'static
    {
        let backend = self.store().backend().clone();
        let estimate = backend.size_in_use();
        let header = self.header();
        tracing::info!(member_id = %format!("{:x}", self.member_id()), "sending database snapshot to a client");
        let rx = crate::snapshot::stream(backend, self.cluster_id(), self.member_id());
        let mut sent = 0u64;
        let mut first = true;
        tokio_stream::wrappers::ReceiverStream::new(rx).map(move |chunk| match chunk {
            Ok(blob) => {
                sent += blob.len() as u64;
                let last = blob.len() < crate::snapshot::CHUNK;
                let r = SnapshotResponse {
                    header: first.then_some(header),
                    remaining_bytes: if last {
                        0
                    } else {
                        estimate.saturating_sub(sent).max(1)
                    },
                    blob,
                    version: ETCD_SERVER_VERSION.to_string(),
                };
                first = false;
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot failed");
                Err(tonic::Status::internal(format!(
                    "etcdserver: snapshot failed: {e}"
                )))
            }
        })
    }
}
