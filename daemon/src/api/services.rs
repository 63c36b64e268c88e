//! gRPC services: KV (complete), Cluster.MemberList, Maintenance.Status / Alarm(GET);
//! Watch, Lease, Auth and the rest answer UNIMPLEMENTED until their issues land.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::etcdserverpb::{
    auth_server::{Auth, AuthServer},
    cluster_server::{Cluster, ClusterServer},
    kv_server::{Kv, KvServer},
    lease_server::{Lease, LeaseServer},
    maintenance_server::{Maintenance, MaintenanceServer},
    watch_server::{Watch, WatchServer},
    AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, MemberListRequest, MemberListResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, StatusRequest, StatusResponse, TxnRequest, TxnResponse,
};
use crate::server::EtcdServer;

#[derive(Clone)]
struct Svc(Arc<EtcdServer>);

#[tonic::async_trait]
impl Kv for Svc {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        Ok(Response::new(self.0.range(r.into_inner()).await?))
    }
    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        Ok(Response::new(self.0.put(r.into_inner()).await?))
    }
    async fn delete_range(
        &self,
        r: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        Ok(Response::new(self.0.delete_range(r.into_inner()).await?))
    }
    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        Ok(Response::new(self.0.txn(r.into_inner()).await?))
    }
    async fn compact(
        &self,
        r: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        Ok(Response::new(self.0.compact(r.into_inner()).await?))
    }
}

#[tonic::async_trait]
impl Cluster for Svc {
    async fn member_add(
        &self,
        r: Request<super::etcdserverpb::MemberAddRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberAddResponse>, Status> {
        Ok(Response::new(self.0.member_add(r.into_inner()).await?))
    }
    async fn member_remove(
        &self,
        r: Request<super::etcdserverpb::MemberRemoveRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberRemoveResponse>, Status> {
        Ok(Response::new(self.0.member_remove(r.into_inner()).await?))
    }
    async fn member_update(
        &self,
        r: Request<super::etcdserverpb::MemberUpdateRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberUpdateResponse>, Status> {
        Ok(Response::new(self.0.member_update(r.into_inner()).await?))
    }
    async fn member_promote(
        &self,
        r: Request<super::etcdserverpb::MemberPromoteRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberPromoteResponse>, Status> {
        Ok(Response::new(self.0.member_promote(r.into_inner()).await?))
    }
    async fn member_list(
        &self,
        r: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(self.0.member_list(r.into_inner()).await?))
    }
}

#[tonic::async_trait]
impl Maintenance for Svc {
    async fn status(&self, _r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.0.status()))
    }
    async fn move_leader(
        &self,
        r: Request<super::etcdserverpb::MoveLeaderRequest>,
    ) -> Result<Response<super::etcdserverpb::MoveLeaderResponse>, Status> {
        self.0.refuse_if_learner()?;
        self.0.move_leader(r.get_ref().target_id).await?;
        Ok(Response::new(super::etcdserverpb::MoveLeaderResponse {
            header: Some(self.0.header()),
        }))
    }
    async fn snapshot(
        &self,
        _r: Request<super::etcdserverpb::SnapshotRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<super::etcdserverpb::SnapshotResponse>>, Status>
    {
        Ok(Response::new(Box::pin(self.0.snapshot())))
    }
    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Ok(Response::new(self.0.alarm(r.into_inner()).await?))
    }
    async fn defragment(
        &self,
        _r: Request<super::etcdserverpb::DefragmentRequest>,
    ) -> Result<Response<super::etcdserverpb::DefragmentResponse>, Status> {
        Ok(Response::new(self.0.defragment().await?))
    }
    async fn hash(
        &self,
        _r: Request<super::etcdserverpb::HashRequest>,
    ) -> Result<Response<super::etcdserverpb::HashResponse>, Status> {
        Ok(Response::new(self.0.hash().await?))
    }
    async fn hash_kv(
        &self,
        r: Request<super::etcdserverpb::HashKvRequest>,
    ) -> Result<Response<super::etcdserverpb::HashKvResponse>, Status> {
        Ok(Response::new(self.0.hash_kv(r.get_ref().revision).await?))
    }
}

#[tonic::async_trait]
impl Watch for Svc {
    async fn watch(
        &self,
        r: Request<tonic::Streaming<super::etcdserverpb::WatchRequest>>,
    ) -> Result<Response<tonic::codegen::BoxStream<super::etcdserverpb::WatchResponse>>, Status>
    {
        self.0.refuse_if_learner()?;
        Ok(Response::new(super::watch::serve(
            self.0.clone(),
            r.into_inner(),
        )))
    }
}
#[tonic::async_trait]
impl Lease for Svc {
    async fn lease_grant(
        &self,
        r: Request<super::etcdserverpb::LeaseGrantRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseGrantResponse>, Status> {
        Ok(Response::new(self.0.lease_grant(r.into_inner()).await?))
    }
    async fn lease_revoke(
        &self,
        r: Request<super::etcdserverpb::LeaseRevokeRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseRevokeResponse>, Status> {
        Ok(Response::new(self.0.lease_revoke(r.into_inner()).await?))
    }
    async fn lease_time_to_live(
        &self,
        r: Request<super::etcdserverpb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseTimeToLiveResponse>, Status> {
        let r = r.into_inner();
        Ok(Response::new(
            self.0.lease_time_to_live(r.id, r.keys).await?,
        ))
    }
    async fn lease_leases(
        &self,
        _r: Request<super::etcdserverpb::LeaseLeasesRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseLeasesResponse>, Status> {
        self.0.refuse_if_learner()?;
        Ok(Response::new(self.0.lease_leases()))
    }
    async fn lease_keep_alive(
        &self,
        r: Request<tonic::Streaming<super::etcdserverpb::LeaseKeepAliveRequest>>,
    ) -> Result<
        Response<tonic::codegen::BoxStream<super::etcdserverpb::LeaseKeepAliveResponse>>,
        Status,
    > {
        use tokio_stream::StreamExt;
        self.0.refuse_if_learner()?;
        let server = self.0.clone();
        let mut inbound = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                let resp = server
                    .lease_renew(req.id)
                    .await
                    .map(|ttl| super::etcdserverpb::LeaseKeepAliveResponse {
                        header: Some(server.header()),
                        id: req.id,
                        ttl,
                    })
                    .map_err(Status::from);
                let failed = resp.is_err();
                if tx.send(resp).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
#[tonic::async_trait]
impl Auth for Svc {}

/// Every client gRPC service, with etcd's request size limit
/// (`--max-request-bytes` plus etcd's 512 KiB gRPC overhead allowance).
pub fn grpc_routes(server: Arc<EtcdServer>) -> tonic::service::Routes {
    let max = server.max_request_bytes() + 512 * 1024;
    let svc = Svc(server);
    tonic::service::Routes::new(KvServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(WatchServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(LeaseServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(ClusterServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(MaintenanceServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(AuthServer::new(svc.clone()).max_decoding_message_size(max))
        .add_service(super::concurrency::lock_service(svc.0.clone()))
        .add_service(super::concurrency::election_service(svc.0))
}
