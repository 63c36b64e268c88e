//! retcd's client tools. `etcdctl` lives in [`etcdctl`]: one file per command under
//! `commands/`, flags in [`flags`], the gRPC connection in [`client`], and every output format
//! in one place, [`printer`].

pub mod backup;
pub mod bench;
pub mod client;
pub mod commands;
pub mod concurrency;
pub mod etcdctl;
pub mod etcdutl;
pub mod flags;
pub mod printer;
pub mod srv;
pub mod tls;

// The wire types and gRPC clients are the daemon's, generated once from its proto files.
pub use retcd::api::{authpb, etcdserverpb, mvccpb};
