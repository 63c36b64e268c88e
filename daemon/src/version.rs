//! Versions we report: our own, and the etcd server and cluster versions we are compatible with.

/// retcd's own version.
pub const RETCD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The etcd server version whose API we implement (what `/version` and `Status` report).
pub const ETCD_SERVER_VERSION: &str = "3.5.17";
/// The etcd cluster version we speak.
pub const ETCD_CLUSTER_VERSION: &str = "3.5.0";
/// The etcd API version.
pub const ETCD_API_VERSION: &str = "3.5";
