//! gRPC front of [`crate::concurrency`]: `v3lockpb.Lock` and `v3electionpb.Election`.

use std::sync::Arc;

use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::services::caller;
use super::v3electionpb::election_server::{Election, ElectionServer};
use super::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use super::v3lockpb::lock_server::{Lock, LockServer};
use super::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use crate::concurrency;
use crate::error::EtcdError;
use crate::server::EtcdServer;

#[derive(Clone)]
pub struct Concurrency(pub Arc<EtcdServer>);

/// etcd's lock and election services act through an in-process client with the caller's
/// token, and hand its errors back as they got them: gRPC code Unknown with etcd's message
/// (`etcdserver: permission denied`, `etcdserver: user name is empty`, ...).
fn as_etcd(e: EtcdError) -> Status {
    Status::unknown(Status::from(e).message())
}

impl Concurrency {
    /// The caller's identity; a bad or missing token is refused as etcd's client refuses it.
    fn ai<T>(&self, r: &Request<T>) -> Result<Option<crate::auth::AuthInfo>, Status> {
        caller(&self.0, r).map_err(|s| Status::unknown(s.message()))
    }
}

#[tonic::async_trait]
impl Lock for Concurrency {
    async fn lock(&self, r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        let r = r.into_inner();
        let key = concurrency::lock(&self.0, &ai, &r.name, r.lease)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(LockResponse {
            header: Some(self.0.header()),
            key,
        }))
    }

    async fn unlock(&self, r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        concurrency::unlock(&self.0, &ai, &r.get_ref().key)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(UnlockResponse {
            header: Some(self.0.header()),
        }))
    }
}

fn leader_key(
    k: Option<super::v3electionpb::LeaderKey>,
) -> Result<super::v3electionpb::LeaderKey, Status> {
    k.ok_or_else(|| Status::invalid_argument("a leader key is required"))
}

#[tonic::async_trait]
impl Election for Concurrency {
    async fn campaign(
        &self,
        r: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        let r = r.into_inner();
        let leader = concurrency::campaign(&self.0, &ai, &r.name, r.lease, &r.value)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(CampaignResponse {
            header: Some(self.0.header()),
            leader: Some(leader),
        }))
    }

    async fn proclaim(
        &self,
        r: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        let r = r.into_inner();
        concurrency::proclaim(&self.0, &ai, &leader_key(r.leader)?, &r.value)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(ProclaimResponse {
            header: Some(self.0.header()),
        }))
    }

    async fn leader(&self, r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        let kv = concurrency::leader(&self.0, &ai, &r.get_ref().name)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(LeaderResponse {
            header: Some(self.0.header()),
            kv: Some(kv),
        }))
    }

    async fn observe(
        &self,
        r: Request<LeaderRequest>,
    ) -> Result<Response<BoxStream<LeaderResponse>>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        concurrency::observe(self.0.clone(), ai, r.into_inner().name, tx);
        let server = self.0.clone();
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            move |r| {
                r.map(|kv| LeaderResponse {
                    header: Some(server.header()),
                    kv: Some(kv),
                })
                .map_err(as_etcd)
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn resign(&self, r: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        self.0.refuse_if_learner()?;
        let ai = self.ai(&r)?;
        concurrency::resign(&self.0, &ai, &leader_key(r.into_inner().leader)?)
            .await
            .map_err(as_etcd)?;
        Ok(Response::new(ResignResponse {
            header: Some(self.0.header()),
        }))
    }
}

pub fn lock_service(s: Arc<EtcdServer>) -> LockServer<Concurrency> {
    LockServer::new(Concurrency(s))
}

pub fn election_service(s: Arc<EtcdServer>) -> ElectionServer<Concurrency> {
    ElectionServer::new(Concurrency(s))
}
