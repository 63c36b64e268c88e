//! The client port: gRPC (HTTP/2) and plain HTTP/1.1 on the same listener, as etcd serves
//! them. HTTP paths: `/health`, `/version`, `/metrics`, and the JSON gateway (`gateway`:
//! `/v3/...`, `/v3beta/...`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod gateway;
mod h2fix;

use crate::config::{Config, Url};
use crate::server::{EtcdServer, Metrics};
use crate::version::{ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION, RETCD_VERSION};

/// Binds every URL; `localhost` binds the loopback address, as Go's listener does.
pub async fn bind(urls: &[Url], what: &str) -> Result<Vec<(Url, TcpListener)>, String> {
    let mut out = Vec::new();
    for u in urls {
        let host = if u.host == "localhost" {
            "127.0.0.1"
        } else {
            u.host.as_str()
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{}", u.port)
        } else {
            format!("{host}:{}", u.port)
        };
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for {what} on {u}: {e}"))?;
        out.push((u.clone(), l));
    }
    Ok(out)
}

/// The HTTP routes of the client and metrics ports.
pub fn http_routes(server: Arc<EtcdServer>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(server)
}

async fn health(State(s): State<Arc<EtcdServer>>) -> impl IntoResponse {
    let (code, body) = match s.health().await {
        Ok(()) => (StatusCode::OK, r#"{"health":"true"}"#.to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"health": "false", "reason": reason}).to_string(),
        ),
    };
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

/// `/version` body: the etcd versions we are compatible with, and our own.
pub fn version_json() -> String {
    serde_json::json!({
        "etcdserver": ETCD_SERVER_VERSION,
        "etcdcluster": ETCD_CLUSTER_VERSION,
        "retcd": RETCD_VERSION,
    })
    .to_string()
}

async fn version() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], version_json())
}

async fn metrics(State(s): State<Arc<EtcdServer>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&s),
    )
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, value: u64) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
    ));
}

fn render_metrics(s: &EtcdServer) -> String {
    let m = s.raft_metrics();
    let b = s.store().backend();
    let mut o = String::new();
    let leader = m.current_leader;
    metric(
        &mut o,
        "etcd_server_has_leader",
        "gauge",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        "",
        leader.is_some() as u64,
    );
    metric(
        &mut o,
        "etcd_server_is_leader",
        "gauge",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        "",
        (leader == Some(s.member_id())) as u64,
    );
    metric(
        &mut o,
        "etcd_server_proposals_committed_total",
        "gauge",
        "The total number of consensus proposals committed.",
        "",
        m.last_log_index.unwrap_or(0),
    );
    metric(
        &mut o,
        "etcd_server_proposals_applied_total",
        "gauge",
        "The total number of consensus proposals applied.",
        "",
        m.last_applied.map(|l| l.index).unwrap_or(0),
    );
    metric(
        &mut o,
        "etcd_server_proposals_pending",
        "gauge",
        "The current number of pending proposals to commit.",
        "",
        Metrics::get(&s.metrics.proposals_pending),
    );
    metric(
        &mut o,
        "etcd_server_proposals_failed_total",
        "counter",
        "The total number of failed proposals seen.",
        "",
        Metrics::get(&s.metrics.proposals_failed),
    );
    metric(
        &mut o,
        "retcd_server_proposals_batched_total",
        "counter",
        "The total number of writes proposed as part of a batch raft entry (retcd only).",
        "",
        s.proposals_batched(),
    );
    metric(
        &mut o,
        "retcd_peer_stream_appends_received_total",
        "counter",
        "The total number of AppendEntries received over raft streams (retcd only).",
        "",
        Metrics::get(&s.metrics.stream_appends_received),
    );
    metric(
        &mut o,
        "retcd_peer_stream_proposals_received_total",
        "counter",
        "The total number of forwarded writes received over raft streams (retcd only).",
        "",
        Metrics::get(&s.metrics.stream_proposals_received),
    );
    metric(
        &mut o,
        "etcd_server_id",
        "gauge",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        &format!("{{server_id=\"{:x}\"}}", s.member_id()),
        1,
    );
    metric(
        &mut o,
        "etcd_server_version",
        "gauge",
        "Which version is running. 1 for 'server_version' label with current version.",
        &format!("{{server_version=\"{ETCD_SERVER_VERSION}\"}}"),
        1,
    );
    metric(
        &mut o,
        "etcd_cluster_version",
        "gauge",
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        &format!("{{cluster_version=\"{ETCD_CLUSTER_VERSION}\"}}"),
        1,
    );
    metric(
        &mut o,
        "etcd_mvcc_db_total_size_in_bytes",
        "gauge",
        "Total size of the underlying database physically allocated in bytes.",
        "",
        b.size_on_disk(),
    );
    metric(
        &mut o,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "gauge",
        "Total size of the underlying database logically in use in bytes.",
        "",
        b.size_in_use(),
    );
    metric(
        &mut o,
        "etcd_debugging_mvcc_keys_total",
        "gauge",
        "Total number of keys.",
        "",
        s.store().key_count() as u64,
    );
    metric(
        &mut o,
        "etcd_debugging_mvcc_current_revision",
        "gauge",
        "The current revision of store.",
        "",
        s.store().current_rev() as u64,
    );
    metric(
        &mut o,
        "etcd_debugging_mvcc_compact_revision",
        "gauge",
        "The revision of the last compaction in store.",
        "",
        s.store().compact_rev() as u64,
    );
    metric(
        &mut o,
        "etcd_debugging_mvcc_watcher_total",
        "gauge",
        "Total number of watchers.",
        "",
        s.watch.len() as u64,
    );
    metric(
        &mut o,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        "",
        resident_memory_bytes(),
    );
    metric(
        &mut o,
        "etcd_mvcc_range_total",
        "counter",
        "Total number of ranges seen by this member.",
        "",
        Metrics::get(&s.metrics.range_total),
    );
    metric(
        &mut o,
        "etcd_mvcc_put_total",
        "counter",
        "Total number of puts seen by this member.",
        "",
        Metrics::get(&s.metrics.put_total),
    );
    metric(
        &mut o,
        "etcd_mvcc_delete_total",
        "counter",
        "Total number of deletes seen by this member.",
        "",
        Metrics::get(&s.metrics.delete_total),
    );
    metric(
        &mut o,
        "etcd_mvcc_txn_total",
        "counter",
        "Total number of txns seen by this member.",
        "",
        Metrics::get(&s.metrics.txn_total),
    );
    o
}

/// What serves connections that start with the raft stream preface (peer listeners only).
pub type RaftStreams = Arc<
    dyn Fn(tokio::net::TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Whether a connection starts as a raft stream: its first byte, without taking it. A
/// connection that sends nothing for 10 s is dropped.
async fn is_raft_stream(stream: &tokio::net::TcpStream) -> Option<bool> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(10), stream.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0] == crate::raft::stream::MAGIC[0]),
        _ => None,
    }
}

/// Serves `router` on `listener` until `shutdown` flips to true; HTTP/1.1 and HTTP/2 (h2c,
/// which gRPC uses) are told apart per connection, and with `raft_streams` (peer listeners)
/// raft streams too.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    raft_streams: Option<RaftStreams>,
    cfg: Arc<Config>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    {
        let mut h2 = builder.http2();
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(cfg.max_concurrent_streams);
        if !cfg.grpc_keepalive_interval.is_zero() {
            h2.keep_alive_interval(cfg.grpc_keepalive_interval);
            h2.keep_alive_timeout(cfg.grpc_keepalive_timeout.max(Duration::from_secs(1)));
        }
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(router.clone());
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let raft_streams = raft_streams.clone();
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    if let Some(raft) = raft_streams {
                        match is_raft_stream(&stream).await {
                            Some(true) => {
                                tokio::select! {
                                    _ = raft(stream) => {}
                                    _ = stop.changed() => {}
                                }
                                return;
                            }
                            Some(false) => {}
                            None => return,
                        }
                    }
                    let io = h2fix::H2Fix::new(stream);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "client connection ended");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Give in-flight requests a moment; long-lived streams are cut after it.
    let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
}

/// This process's resident set size, from /proc (0 where unavailable).
fn resident_memory_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}
