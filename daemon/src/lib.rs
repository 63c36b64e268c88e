//! retcd: an etcd v3 member written in Rust.
//!
//! Data flows one way: gRPC ([`api`]) → request path ([`server`]) → consensus ([`raft`]) →
//! [`apply`] → [`mvcc`] (→ [`watch`]). See `docs/architecture.md`.

pub mod alarm;
pub mod api;
pub mod apply;
pub mod auth;
pub mod backend;
pub mod bolt;
pub mod cluster;
pub mod concurrency;
pub mod config;
pub mod error;
pub mod http;
pub mod lease;
pub mod mvcc;
pub mod raft;
pub mod restore;
pub mod server;
pub mod snapshot;
pub mod version;
pub mod watch;

use std::sync::Arc;

use tokio::sync::watch as tokio_watch;

use config::{Command, Config};

/// Entry point of the `etcd` binary; returns the process exit code.
pub fn run_main(args: Vec<String>) -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg = match Config::parse(args.get(1..).unwrap_or(&[]), &env) {
        Ok(Command::Version) => {
            println!("etcd Version: {}", version::ETCD_SERVER_VERSION);
            println!("retcd Version: {}", version::RETCD_VERSION);
            println!("API Version: {}", version::ETCD_API_VERSION);
            println!(
                "Rust OS/Arch: {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            return 0;
        }
        Ok(Command::Help) => {
            print!("{}", config::usage());
            return 0;
        }
        Ok(Command::Run(cfg)) => *cfg,
        Err(e) => {
            eprintln!("etcd: {e}");
            return 1;
        }
    };
    init_logging(&cfg);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("etcd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return 1;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("etcd: {e}");
            1
        }
    }
}

fn init_logging(cfg: &Config) {
    let level = match cfg.log_level.as_str() {
        "debug" => "debug",
        "warn" => "warn",
        "error" | "panic" | "fatal" | "dpanic" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RETCD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=warn")));
    let to_stdout = cfg.log_outputs.iter().any(|o| o == "stdout");
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter);
    let _ = if to_stdout {
        builder.with_writer(std::io::stdout).try_init()
    } else {
        builder.with_writer(std::io::stderr).try_init()
    };
}

/// Runs a member until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> Result<(), String> {
    for (name, (value, source)) in &cfg.raw {
        if *source != config::Source::Default {
            tracing::info!(setting = name, value = %value, source = ?source, "configuration");
        }
    }
    // Bind first: a port in use is reported before any state is created.
    let client_listeners = http::bind(&cfg.listen_client_urls, "client traffic").await?;
    let peer_listeners = http::bind(&cfg.listen_peer_urls, "peer traffic").await?;
    let metrics_listeners = http::bind(&cfg.listen_metrics_urls, "metrics").await?;

    let server = server::start(cfg).await?;
    let cfg = Arc::new(server.config().clone());
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let mut tasks = Vec::new();

    // Peers first: the cluster cannot elect a leader without them.
    let peer_router = server::peer::peer_routes(server.clone())
        .into_axum_router()
        .route(
            "/version",
            axum::routing::get(|| async { http::version_json() }),
        );
    let raft_streams: http::RaftStreams = {
        let server = server.clone();
        Arc::new(move |stream| Box::pin(server::peer::serve_raft_stream(server.clone(), stream)))
    };
    for (url, l) in peer_listeners {
        tracing::info!(address = %url, "serving peer traffic");
        tasks.push(tokio::spawn(http::serve(
            l,
            peer_router.clone(),
            Some(raft_streams.clone()),
            cfg.clone(),
            stop_rx.clone(),
        )));
    }

    // Then wait for a leader and publish this member, as etcd does before serving clients.
    tokio::select! {
        _ = server::wait_ready(&server) => {}
        _ = server.removed() => {
            let _ = stop_tx.send(true);
            let _ = server.raft().shutdown().await;
            return Err(removed_error(&server));
        }
        _ = wait_for_signal() => {
            tracing::info!("received shutdown signal before the member was ready; stopping");
            let _ = stop_tx.send(true);
            let _ = server.raft().shutdown().await;
            return Ok(());
        }
    }

    if cfg.initial_corrupt_check {
        if let Err(e) = server.initial_corrupt_check().await {
            let _ = stop_tx.send(true);
            let _ = server.raft().shutdown().await;
            return Err(e);
        }
    }

    let mut client_router = api::grpc_routes(server.clone())
        .into_axum_router()
        .merge(http::http_routes(server.clone()));
    if cfg.enable_grpc_gateway {
        client_router = client_router.merge(http::gateway::routes(
            api::grpc_routes(server.clone()).into_axum_router(),
            api::max_grpc_message(&server),
        ));
    }
    let client_router = client_router.fallback(http::gateway::not_found);
    for (url, l) in client_listeners {
        tracing::info!(address = %url, "serving client traffic (gRPC and HTTP)");
        tasks.push(tokio::spawn(http::serve(
            l,
            client_router.clone(),
            None,
            cfg.clone(),
            stop_rx.clone(),
        )));
    }
    let metrics_router = http::http_routes(server.clone());
    for (url, l) in metrics_listeners {
        tracing::info!(address = %url, "serving /metrics and /health");
        tasks.push(tokio::spawn(http::serve(
            l,
            metrics_router.clone(),
            None,
            cfg.clone(),
            stop_rx.clone(),
        )));
    }

    let compactor = server::compactor::spawn(server.clone());
    let lease_expiry = server::spawn_expiry(server.clone());
    let corrupt_checks = server::corrupt::spawn(server.clone());
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&service_status(&server)),
    ]);
    let notifier = spawn_service_status(server.clone());
    tracing::info!(
        name = %cfg.name,
        member_id = %format!("{:x}", server.member_id()),
        cluster_id = %format!("{:x}", server.cluster_id()),
        "ready to serve client requests"
    );

    let mut removed = false;
    tokio::select! {
        _ = wait_for_signal() => tracing::info!("received shutdown signal; stopping"),
        _ = server.removed() => removed = true,
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if !removed {
        server.hand_over_leadership().await;
    }
    let _ = stop_tx.send(true);
    if let Some(c) = compactor {
        c.abort();
    }
    lease_expiry.abort();
    notifier.abort();
    for t in corrupt_checks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Err(e) = server.raft().shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    if let Err(e) = server.store().backend().db.flush_wal(true) {
        tracing::warn!(error = %e, "final WAL sync failed");
    }
    if removed {
        return Err(removed_error(&server));
    }
    tracing::info!("stopped");
    Ok(())
}

/// systemd's STATUS= line: who leads, at which revision, with how many members.
fn service_status(server: &server::EtcdServer) -> String {
    let m = server.raft_metrics();
    let leader = match m.current_leader {
        Some(l) if l == server.member_id() => "this member is the leader".to_string(),
        Some(l) => format!("leader {l:x}"),
        None => "no leader".to_string(),
    };
    format!(
        "serving clients; {leader}; revision {}; {} members",
        server.store().current_rev(),
        m.membership_config.membership().nodes().count()
    )
}

/// Refreshes STATUS= every few seconds, and pets systemd's watchdog (WatchdogSec=) while the
/// member can answer health checks.
fn spawn_service_status(server: Arc<server::EtcdServer>) -> tokio::task::JoinHandle<()> {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog
        .map(|w| (w / 2).max(std::time::Duration::from_millis(100)))
        .unwrap_or(std::time::Duration::from_secs(5))
        .min(std::time::Duration::from_secs(5));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let status = service_status(&server);
            let mut states = vec![sd_notify::NotifyState::Status(&status)];
            // The process is alive and its runtime responsive: systemd may keep it.
            if watchdog.is_some() {
                states.push(sd_notify::NotifyState::Watchdog);
            }
            let _ = sd_notify::notify(&states);
        }
    })
}

fn removed_error(server: &server::EtcdServer) -> String {
    format!(
        "the member has been permanently removed from the cluster (member {:x}); to bring this host back, wipe {} and add it again with 'etcdctl member add'",
        server.member_id(),
        server.config().data_dir.display()
    )
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
