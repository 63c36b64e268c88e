//! Corruption checks (etcd's `corrupt.go`): members that applied the same entries must hold
//! the same KV history, so their HashKV at one revision must agree.
//!
//! * `--experimental-initial-corrupt-check`: before serving clients, a member compares its hash
//!   with every reachable peer's at its own revision, and refuses to start if one differs.
//! * `--experimental-corrupt-check-time` (periodic, on the leader) and
//!   `--experimental-compact-hash-check-enabled` (at the last compaction revision, on the
//!   leader): a follower whose hash differs gets the CORRUPT alarm, which stops every write.

use std::sync::Arc;
use std::time::Duration;

use super::EtcdServer;
use crate::api::etcdserverpb::alarm_request::AlarmAction;
use crate::api::etcdserverpb::{AlarmRequest, AlarmType};
use crate::api::retcdpeerpb::HashKvQuery;
use crate::error::EtcdError;

/// One peer's answer: its hash and compaction revision at the asked revision.
type PeerHash = (u64, Result<(u32, i64), String>);

impl EtcdServer {
    /// Every other member's hash at `rev` (members that cannot answer report why).
    pub async fn peer_hashes(&self, rev: i64) -> Vec<PeerHash> {
        let membership = self.raft_metrics().membership_config.clone();
        let mut out = Vec::new();
        for (id, node) in membership.membership().nodes() {
            if *id == self.member_id {
                continue;
            }
            let answer = async {
                let mut client = self.peers.client(*id, node)?;
                let mut req = tonic::Request::new(HashKvQuery {
                    cluster_id: self.cluster_id,
                    revision: rev,
                });
                req.set_timeout(Duration::from_secs(5));
                let a = client
                    .hash_kv(req)
                    .await
                    .map_err(|s| s.message().to_string())?
                    .into_inner();
                if !a.error.is_empty() {
                    return Err(super::decode_peer_error(&a.error).to_string());
                }
                Ok((a.hash, a.compact_revision))
            }
            .await;
            out.push((*id, answer));
        }
        out
    }

    /// The members whose hash at `rev` differs from this member's (same compaction point).
    async fn mismatches(&self, rev: i64) -> Result<(u32, Vec<(u64, u32)>), EtcdError> {
        let mine = self.hash_kv(rev).await?;
        let mut bad = Vec::new();
        for (id, answer) in self.peer_hashes(rev).await {
            match answer {
                Ok((hash, compact)) if compact == mine.compact_revision && hash != mine.hash => {
                    bad.push((id, hash))
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(peer = %format!("{id:x}"), error = %e, revision = rev, "peer could not hash; skipped")
                }
            }
        }
        Ok((mine.hash, bad))
    }

    /// `--experimental-initial-corrupt-check`: Err names the members that disagree.
    pub async fn initial_corrupt_check(&self) -> Result<(), String> {
        let rev = self.store().current_rev();
        let (mine, bad) = self
            .mismatches(rev)
            .await
            .map_err(|e| format!("initial corruption check: {e}"))?;
        if bad.is_empty() {
            tracing::info!(
                revision = rev,
                hash = mine,
                "initial corruption check passed"
            );
            return Ok(());
        }
        let list: Vec<String> = bad
            .iter()
            .map(|(id, h)| format!("{id:x} (hash {h})"))
            .collect();
        Err(format!(
            "{:x} found data inconsistency with peers: at revision {rev} this member's hash is {mine}, but {} differ; restore this member from a snapshot of a healthy one",
            self.member_id,
            list.join(", ")
        ))
    }

    /// One leader pass: followers that disagree at `rev` get the CORRUPT alarm.
    async fn corrupt_pass(&self, rev: i64, what: &str) {
        if self.leader() != Some(self.member_id) || rev <= 0 {
            return;
        }
        let bad = match self.mismatches(rev).await {
            Ok((_, bad)) => bad,
            Err(e) => {
                tracing::debug!(error = %e, "corruption check skipped");
                return;
            }
        };
        for (id, hash) in bad {
            tracing::error!(
                member_id = %format!("{id:x}"),
                revision = rev,
                peer_hash = hash,
                check = what,
                "data inconsistency: raising the CORRUPT alarm for this member"
            );
            if self.alarms.has_for(id, AlarmType::Corrupt) {
                continue;
            }
            let r = AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id: id,
                alarm: AlarmType::Corrupt as i32,
            };
            if let Err(e) = self.alarm(r).await {
                tracing::warn!(error = %e, "raising the CORRUPT alarm failed");
            }
        }
    }
}

/// Starts the periodic checks that are configured; each runs on the leader only.
pub fn spawn(server: Arc<EtcdServer>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let every = server.config().corrupt_check_time;
    if !every.is_zero() {
        let s = server.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let rev = s.store().current_rev();
                s.corrupt_pass(rev, "periodic").await;
            }
        }));
    }
    if let Some(every) = server.config().compact_hash_check {
        let s = server.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every.max(Duration::from_millis(100))).await;
                let rev = s.store().compact_rev();
                s.corrupt_pass(rev, "compaction hash").await;
            }
        }));
    }
    tasks
}
