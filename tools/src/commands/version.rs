//! `etcdctl version`

/// The etcd version this etcdctl speaks (the server API retcd implements).
pub const ETCDCTL_VERSION: &str = "3.5.17";
pub const API_VERSION: &str = "3.5";

pub fn run() -> String {
    format!("etcdctl version: {ETCDCTL_VERSION}\nAPI version: {API_VERSION}\n")
}
