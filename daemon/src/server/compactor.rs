//! Auto-compaction, as etcd's `--auto-compaction-mode` / `--auto-compaction-retention`:
//! only the leader proposes compactions (through raft, like a client's Compact).
//!
//! * `revision` mode, retention N: every check interval (5 minutes), compact to current - N.
//! * `periodic` mode, retention D (hours, or a Go duration): keep revision samples and, every
//!   min(D, 1h), compact to the newest revision that is at least D old.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EtcdServer;
use crate::api::etcdserverpb::CompactionRequest;
use crate::config::AutoCompaction;

/// Starts the compactor if auto-compaction is enabled.
pub fn spawn(server: Arc<EtcdServer>) -> Option<tokio::task::JoinHandle<()>> {
    let mode = server.config().auto_compaction?;
    Some(tokio::spawn(run(server, mode)))
}

/// How often the revision-mode compactor checks (etcd: 5 minutes). `RETCD_COMPACTOR_CHECK_MS`
/// shortens it for tests.
fn revision_check_interval() -> Duration {
    std::env::var("RETCD_COMPACTOR_CHECK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(300))
}

async fn run(server: Arc<EtcdServer>, mode: AutoCompaction) {
    let (interval, sample_every) = match mode {
        AutoCompaction::Revision(_) => {
            let i = revision_check_interval();
            (i, i)
        }
        AutoCompaction::Periodic(d) => {
            let i = d.min(Duration::from_secs(3600));
            (i, (i / 10).max(Duration::from_millis(100)))
        }
    };
    tracing::info!(?mode, ?interval, "auto-compaction enabled");
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut last_run = Instant::now();
    loop {
        tokio::time::sleep(sample_every).await;
        let now = Instant::now();
        let rev = server.store().current_rev();
        samples.push_back((now, rev));
        if let AutoCompaction::Periodic(d) = mode {
            // Keep one sample older than the window, drop anything older.
            while samples.len() > 1 && now.duration_since(samples[1].0) >= d {
                samples.pop_front();
            }
        }
        if now.duration_since(last_run) < interval {
            continue;
        }
        last_run = now;
        if server.leader() != Some(server.member_id()) {
            continue;
        }
        let target = match mode {
            AutoCompaction::Revision(keep) => rev - keep as i64,
            AutoCompaction::Periodic(d) => match samples.front() {
                Some((t, r)) if now.duration_since(*t) >= d => *r,
                _ => continue,
            },
        };
        if target <= server.store().compact_rev() || target <= 0 {
            continue;
        }
        match server
            .compact(CompactionRequest {
                revision: target,
                physical: false,
            })
            .await
        {
            Ok(_) => tracing::info!(revision = target, "auto-compacted"),
            Err(e) => tracing::warn!(revision = target, error = %e, "auto-compaction failed"),
        }
    }
}
