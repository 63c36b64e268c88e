//! retcd's client tools. `etcdctl` lives in [`etcdctl`]: one file per command under
//! `commands/`, flags in [`flags`], the gRPC connection in [`client`], and every output format
//! in one place, [`printer`].

pub mod client;
pub mod commands;
pub mod concurrency;
pub mod etcdctl;
pub mod etcdutl;
pub mod flags;
pub mod printer;

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
