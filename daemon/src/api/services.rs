//! gRPC services: KV, Watch, Lease, Cluster, Maintenance, Auth (and, in `concurrency`, Lock
//! and Election). Each takes the caller's identity from its `token` metadata when auth is on
//! and checks permissions as etcd does before handing the request to the server.

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

type Ai = Option<crate::auth::AuthInfo>;

/// The caller's identity: its `token` (or `authorization`) metadata.
pub(crate) fn caller<T>(s: &EtcdServer, r: &Request<T>) -> Result<Ai, Status> {
    let md = r.metadata();
    let token = md
        .get("token")
        .or_else(|| md.get("authorization"))
        .and_then(|v| v.to_str().ok());
    Ok(s.auth_info(token)?)
}

impl Svc {
    fn ai<T>(&self, r: &Request<T>) -> Result<Ai, Status> {
        caller(&self.0, r)
    }

    /// The caller's identity, which must be an admin when auth is on.
    fn admin<T>(&self, r: &Request<T>) -> Result<Ai, Status> {
        let ai = self.ai(r)?;
        self.0.check_admin(&ai)?;
        Ok(ai)
    }
}

#[tonic::async_trait]
impl Kv for Svc {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let ai = self.ai(&r)?;
        self.0
            .check_read(&ai, &r.get_ref().key, &r.get_ref().range_end)?;
        Ok(Response::new(self.0.range(r.into_inner()).await?))
    }
    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let ai = self.ai(&r)?;
        self.0.check_put(&ai, r.get_ref())?;
        Ok(Response::new(self.0.put_as(r.into_inner(), &ai).await?))
    }
    async fn delete_range(
        &self,
        r: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let ai = self.ai(&r)?;
        self.0.check_delete(&ai, r.get_ref())?;
        Ok(Response::new(
            self.0.delete_range_as(r.into_inner(), &ai).await?,
        ))
    }
    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let ai = self.ai(&r)?;
        self.0.check_txn(&ai, r.get_ref())?;
        Ok(Response::new(self.0.txn_as(r.into_inner(), &ai).await?))
    }
    async fn compact(
        &self,
        r: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        self.ai(&r)?;
        Ok(Response::new(self.0.compact(r.into_inner()).await?))
    }
}

#[tonic::async_trait]
impl Cluster for Svc {
    async fn member_add(
        &self,
        r: Request<super::etcdserverpb::MemberAddRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberAddResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.member_add(r.into_inner()).await?))
    }
    async fn member_remove(
        &self,
        r: Request<super::etcdserverpb::MemberRemoveRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberRemoveResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.member_remove(r.into_inner()).await?))
    }
    async fn member_update(
        &self,
        r: Request<super::etcdserverpb::MemberUpdateRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberUpdateResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.member_update(r.into_inner()).await?))
    }
    async fn member_promote(
        &self,
        r: Request<super::etcdserverpb::MemberPromoteRequest>,
    ) -> Result<Response<super::etcdserverpb::MemberPromoteResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.member_promote(r.into_inner()).await?))
    }
    async fn member_list(
        &self,
        r: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        self.ai(&r)?;
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
        self.admin(&r)?;
        self.0.move_leader(r.get_ref().target_id).await?;
        Ok(Response::new(super::etcdserverpb::MoveLeaderResponse {
            header: Some(self.0.header()),
        }))
    }
    async fn snapshot(
        &self,
        r: Request<super::etcdserverpb::SnapshotRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<super::etcdserverpb::SnapshotResponse>>, Status>
    {
        self.admin(&r)?;
        Ok(Response::new(Box::pin(self.0.snapshot())))
    }
    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Ok(Response::new(self.0.alarm(r.into_inner()).await?))
    }
    async fn defragment(
        &self,
        r: Request<super::etcdserverpb::DefragmentRequest>,
    ) -> Result<Response<super::etcdserverpb::DefragmentResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.defragment().await?))
    }
    async fn hash(
        &self,
        r: Request<super::etcdserverpb::HashRequest>,
    ) -> Result<Response<super::etcdserverpb::HashResponse>, Status> {
        self.admin(&r)?;
        Ok(Response::new(self.0.hash().await?))
    }
    async fn hash_kv(
        &self,
        r: Request<super::etcdserverpb::HashKvRequest>,
    ) -> Result<Response<super::etcdserverpb::HashKvResponse>, Status> {
        self.admin(&r)?;
        let rev = r.get_ref().revision;
        // etcd refuses the compaction revision itself too (members compare hashes there
        // among themselves, over the peer API).
        if rev > 0 && rev <= self.0.store().compact_rev() {
            return Err(crate::error::EtcdError::Compacted.into());
        }
        Ok(Response::new(self.0.hash_kv(rev).await?))
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
        let ai = self.ai(&r)?;
        Ok(Response::new(super::watch::serve(
            self.0.clone(),
            r.into_inner(),
            ai,
        )))
    }
}
#[tonic::async_trait]
impl Lease for Svc {
    async fn lease_grant(
        &self,
        r: Request<super::etcdserverpb::LeaseGrantRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseGrantResponse>, Status> {
        self.ai(&r)?;
        Ok(Response::new(self.0.lease_grant(r.into_inner()).await?))
    }
    async fn lease_revoke(
        &self,
        r: Request<super::etcdserverpb::LeaseRevokeRequest>,
    ) -> Result<Response<super::etcdserverpb::LeaseRevokeResponse>, Status> {
        let ai = self.ai(&r)?;
        self.0.check_lease_keys(&ai, r.get_ref().id)?;
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
macro_rules! auth_rpcs {
    ($($name:ident: $req:ident => $resp:ident, |$s:ident, $ai:ident, $r:ident| $body:expr;)*) => {
        #[tonic::async_trait]
        impl Auth for Svc {
            $(
                async fn $name(
                    &self,
                    r: Request<super::etcdserverpb::$req>,
                ) -> Result<Response<super::etcdserverpb::$resp>, Status> {
                    let $ai = self.ai(&r)?;
                    let $r = r.into_inner();
                    let $s = &self.0;
                    Ok(Response::new($body.await?))
                }
            )*
        }
    };
}

auth_rpcs! {
    auth_enable: AuthEnableRequest => AuthEnableResponse, |s, ai, _r| s.auth_enable(&ai);
    auth_disable: AuthDisableRequest => AuthDisableResponse, |s, ai, _r| s.auth_disable(&ai);
    auth_status: AuthStatusRequest => AuthStatusResponse, |s, ai, _r| s.auth_status(&ai);
    authenticate: AuthenticateRequest => AuthenticateResponse, |s, _ai, r| s.authenticate(r);
    user_add: AuthUserAddRequest => AuthUserAddResponse, |s, ai, r| s.user_add(&ai, r);
    user_get: AuthUserGetRequest => AuthUserGetResponse, |s, ai, r| s.user_get(&ai, r);
    user_list: AuthUserListRequest => AuthUserListResponse, |s, ai, _r| s.user_list(&ai);
    user_delete: AuthUserDeleteRequest => AuthUserDeleteResponse, |s, ai, r| s.user_delete(&ai, r);
    user_change_password: AuthUserChangePasswordRequest => AuthUserChangePasswordResponse, |s, ai, r| s.user_change_password(&ai, r);
    user_grant_role: AuthUserGrantRoleRequest => AuthUserGrantRoleResponse, |s, ai, r| s.user_grant_role(&ai, r);
    user_revoke_role: AuthUserRevokeRoleRequest => AuthUserRevokeRoleResponse, |s, ai, r| s.user_revoke_role(&ai, r);
    role_add: AuthRoleAddRequest => AuthRoleAddResponse, |s, ai, r| s.role_add(&ai, r);
    role_get: AuthRoleGetRequest => AuthRoleGetResponse, |s, ai, r| s.role_get(&ai, r);
    role_list: AuthRoleListRequest => AuthRoleListResponse, |s, ai, _r| s.role_list(&ai);
    role_delete: AuthRoleDeleteRequest => AuthRoleDeleteResponse, |s, ai, r| s.role_delete(&ai, r);
    role_grant_permission: AuthRoleGrantPermissionRequest => AuthRoleGrantPermissionResponse, |s, ai, r| s.role_grant_permission(&ai, r);
    role_revoke_permission: AuthRoleRevokePermissionRequest => AuthRoleRevokePermissionResponse, |s, ai, r| s.role_revoke_permission(&ai, r);
}

/// The largest message the client gRPC services take, as etcd sizes it:
/// `--max-request-bytes` plus etcd's 512 KiB gRPC overhead allowance.
pub fn max_grpc_message(server: &EtcdServer) -> usize {
    server.max_request_bytes() + 512 * 1024
}

/// Every client gRPC service, with etcd's request size limit ([`max_grpc_message`]).
pub fn grpc_routes(server: Arc<EtcdServer>) -> tonic::service::Routes {
    let max = max_grpc_message(&server);
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
