//! The client wire protocol: generated protobuf types and the gRPC service implementations.
//! Services turn requests into calls on [`crate::server::EtcdServer`]; RPCs not built yet
//! answer `UNIMPLEMENTED` (tonic's default stubs).

#[allow(clippy::all)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}
#[allow(clippy::all)]
pub mod authpb {
    tonic::include_proto!("authpb");
}
#[allow(clippy::all)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
#[allow(clippy::all)]
pub mod retcdpb {
    tonic::include_proto!("retcdpb");
}
#[allow(clippy::all)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}
#[allow(clippy::all)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}
#[allow(clippy::all)]
pub mod retcdpeerpb {
    tonic::include_proto!("retcdpeerpb");
}

mod concurrency;
mod services;
mod watch;

pub use services::{grpc_routes, max_grpc_message};
