//! `etcdctl make-mirror [options] <destination>`: copies the source's keys (under `--prefix`)
//! at one revision, then follows its watch and applies each source revision's changes to the
//! destination in one transaction. Prints the number of keys synced every 30 seconds, as
//! etcd's does.
//!
//! Beyond etcd's: the last mirrored source revision is kept in the destination, in a state key
//! (`__make_mirror/<source cluster ID>...`) written in the same transaction as the changes it
//! covers. So a restarted mirror resumes where it stopped, without a full copy and without
//! applying a change twice, and a source or destination restart only pauses the mirror (it
//! reconnects and resumes). Only a compaction past the last mirrored revision forces a full
//! resync, reported on stderr.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, WatchCreateRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};

pub const FLAGS: &[Spec] = &[
    flag("prefix", Kind::Value, ""),
    flag("dest-prefix", Kind::Value, ""),
    flag("no-dest-prefix", Kind::Bool, "false"),
    flag("max-txn-ops", Kind::Value, "128"),
    flag("state-key", Kind::Value, ""),
    flag("dest-cert", Kind::Value, ""),
    flag("dest-key", Kind::Value, ""),
    flag("dest-cacert", Kind::Value, ""),
    flag("dest-insecure-transport", Kind::Bool, "true"),
    flag("dest-user", Kind::Value, ""),
    flag("dest-password", Kind::Value, ""),
];

/// Where mirrors keep their progress in the destination; never mirrored themselves.
pub const STATE_PREFIX: &str = "__make_mirror/";

/// Keys per Range page of the initial copy (clientv3 mirror's batch limit).
const PAGE: i64 = 1000;

enum Stop {
    /// Worth retrying after a pause: a member restarting, a leader election, a lost link.
    Transient(String),
    Fatal(Failure),
}

impl From<tonic::Status> for Stop {
    fn from(s: tonic::Status) -> Stop {
        use tonic::Code::*;
        let msg = status_message(&s);
        match s.code() {
            Unavailable | DeadlineExceeded | Unknown | Cancelled | Aborted | Internal => {
                Stop::Transient(msg)
            }
            _ if msg.contains("leader") || msg.contains("timed out") => Stop::Transient(msg),
            _ => Stop::Fatal(Failure::error(msg)),
        }
    }
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Transient(f.message)
    }
}

struct Mirror<'a> {
    f: &'a Parsed,
    dest: String,
    prefix: Vec<u8>,
    dest_prefix: Vec<u8>,
    max_ops: usize,
    state_key: Option<Vec<u8>>,
    /// Last source revision applied to the destination (0: none yet).
    rev: i64,
    total: Arc<AtomicI64>,
}

pub async fn run(f: &Parsed) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args(
            "make-mirror takes one destination argument",
        ));
    }
    let prefix = f.get("prefix");
    let dest_prefix = f.get("dest-prefix");
    if f.bool("no-dest-prefix") && !dest_prefix.is_empty() {
        return Err(Failure::bad_args(
            "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one",
        ));
    }
    let dest_prefix = if f.bool("no-dest-prefix") {
        String::new()
    } else if dest_prefix.is_empty() {
        prefix.clone()
    } else {
        dest_prefix
    };
    let max_ops: usize = match f.get("max-txn-ops").parse() {
        Ok(n) if n >= 2 => n,
        _ => {
            return Err(Failure::bad_args(format!(
                "--max-txn-ops must be a number of at least 2 (got {:?})",
                f.get("max-txn-ops")
            )))
        }
    };
    let total = Arc::new(AtomicI64::new(0));
    {
        let total = total.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                super::print_now(&format!("{}\n", total.load(Ordering::SeqCst)));
            }
        });
    }
    let mut m = Mirror {
        f,
        dest: f.args[0].clone(),
        prefix: prefix.into_bytes(),
        dest_prefix: dest_prefix.into_bytes(),
        max_ops,
        state_key: None,
        rev: 0,
        total,
    };
    let mut pause = Duration::from_millis(200);
    loop {
        match m.run_once().await {
            Ok(()) => pause = Duration::from_millis(200),
            Err(Stop::Fatal(f)) => return Err(f),
            Err(Stop::Transient(e)) => {
                eprintln!(
                    "make-mirror: {e}; retrying from revision {} in {:?}",
                    m.rev + 1,
                    pause
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn put(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

fn delete(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key,
                ..Default::default()
            },
        )),
    }
}

/// The source revision the destination's state key says was mirrored last (0: none).
async fn mirrored_revision(dst: &Conn, key: &[u8]) -> Result<i64, Stop> {
    let r = dst
        .kv()
        .range(dst.req(RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    Ok(r.kvs
        .first()
        .and_then(|kv| String::from_utf8_lossy(&kv.value).parse().ok())
        .unwrap_or(0))
}

impl Mirror<'_> {
    /// etcd's `modifyPrefix`: the first occurrence of the prefix becomes the destination's.
    fn dest_key(&self, key: &[u8]) -> Vec<u8> {
        if self.prefix.is_empty() {
            return [self.dest_prefix.as_slice(), key].concat();
        }
        match key
            .windows(self.prefix.len())
            .position(|w| w == self.prefix.as_slice())
        {
            Some(i) => [
                &key[..i],
                self.dest_prefix.as_slice(),
                &key[i + self.prefix.len()..],
            ]
            .concat(),
            None => key.to_vec(),
        }
    }

    fn mirrored(key: &[u8]) -> bool {
        !key.starts_with(STATE_PREFIX.as_bytes())
    }

    fn source_range(&self) -> (Vec<u8>, Vec<u8>) {
        if self.prefix.is_empty() {
            (vec![0], vec![0])
        } else {
            (self.prefix.clone(), super::prefix_end(&self.prefix))
        }
    }

    async fn run_once(&mut self) -> Result<(), Stop> {
        let src = Conn::open(self.f).await?;
        let dst = Conn::open_dest(self.f, &self.dest).await?;
        let (key, end) = self.source_range();
        let probe = src
            .kv()
            .range(src.req(RangeRequest {
                key: key.clone(),
                range_end: end.clone(),
                limit: 1,
                keys_only: true,
                ..Default::default()
            }))
            .await?
            .into_inner();
        let header = probe.header.unwrap_or_default();
        let state_key = self.state_key_for(header.cluster_id);
        if self.rev == 0 {
            if let Some(k) = &state_key {
                self.rev = mirrored_revision(&dst, k).await?;
            }
        }
        if self.rev == 0 {
            self.copy_base(&src, &dst, header.revision, &state_key)
                .await?;
        }
        self.follow(&src, &dst, &state_key).await
    }

    fn state_key_for(&mut self, cluster_id: u64) -> Option<Vec<u8>> {
        if self.state_key.is_none() {
            let given = self.f.get("state-key");
            self.state_key = Some(if given.is_empty() {
                let mut k = format!("{STATE_PREFIX}{cluster_id:x}").into_bytes();
                if !self.prefix.is_empty() || !self.dest_prefix.is_empty() {
                    k.push(b'/');
                    k.extend_from_slice(&self.prefix);
                    k.push(b'>');
                    k.extend_from_slice(&self.dest_prefix);
                }
                k
            } else {
                given.into_bytes()
            });
        }
        self.state_key.clone()
    }

    /// Copies every key at `rev` in pages, then records `rev` as mirrored.
    async fn copy_base(
        &mut self,
        src: &Conn,
        dst: &Conn,
        rev: i64,
        state_key: &Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        let (mut key, end) = self.source_range();
        loop {
            let r = src
                .kv()
                .range(src.req(RangeRequest {
                    key: key.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    revision: rev,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            let ops: Vec<RequestOp> = r
                .kvs
                .iter()
                .filter(|kv| Self::mirrored(&kv.key))
                .map(|kv| put(self.dest_key(&kv.key), kv.value.clone()))
                .collect();
            for chunk in ops.chunks(self.max_ops) {
                self.txn(dst, Vec::new(), chunk.to_vec()).await?;
                self.total.fetch_add(chunk.len() as i64, Ordering::SeqCst);
            }
            match (r.more, r.kvs.last()) {
                (true, Some(last)) => {
                    key = last.key.clone();
                    key.push(0);
                }
                _ => break,
            }
        }
        if let Some(k) = state_key {
            self.txn(
                dst,
                Vec::new(),
                vec![put(k.clone(), rev.to_string().into_bytes())],
            )
            .await?;
        }
        self.rev = rev;
        Ok(())
    }

    async fn txn(
        &self,
        dst: &Conn,
        compare: Vec<Compare>,
        success: Vec<RequestOp>,
    ) -> Result<bool, Stop> {
        let r = dst
            .kv()
            .txn(dst.req(TxnRequest {
                compare,
                success,
                failure: Vec::new(),
            }))
            .await?
            .into_inner();
        Ok(r.succeeded)
    }

    /// Follows the source's watch from the revision after the last mirrored one.
    async fn follow(
        &mut self,
        src: &Conn,
        dst: &Conn,
        state_key: &Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        let (key, end) = self.source_range();
        let create = WatchCreateRequest {
            key,
            range_end: end,
            start_revision: self.rev + 1,
            ..Default::default()
        };
        let (_tx, mut stream) = src.watch(create, 1).await?;
        while let Some(item) = stream.next().await {
            let r = item?;
            if r.compact_revision != 0 {
                eprintln!(
                    "make-mirror: the source compacted its history past revision {} (now at {}): changes in between are gone, starting a full resync (keys deleted in that gap stay in the destination)",
                    self.rev + 1,
                    r.compact_revision
                );
                self.rev = 0;
                return Ok(());
            }
            if r.canceled {
                return Err(Stop::Transient(format!(
                    "watch canceled by the source: {}",
                    r.cancel_reason
                )));
            }
            let mut i = 0;
            while i < r.events.len() {
                let rev = r.events[i].kv.as_ref().map(|k| k.mod_revision).unwrap_or(0);
                let mut ops = Vec::new();
                while i < r.events.len()
                    && r.events[i].kv.as_ref().map(|k| k.mod_revision).unwrap_or(0) == rev
                {
                    if let Some(kv) = &r.events[i].kv {
                        if Self::mirrored(&kv.key) {
                            let k = self.dest_key(&kv.key);
                            ops.push(if r.events[i].r#type == 1 {
                                delete(k)
                            } else {
                                put(k, kv.value.clone())
                            });
                        }
                    }
                    i += 1;
                }
                self.apply_revision(dst, rev, ops, state_key).await?;
            }
        }
        Err(Stop::Transient("watch stream ended".into()))
    }

    /// Applies one source revision's changes, with the state key moved from the previous
    /// revision to this one in the same transaction (so it applies exactly once).
    async fn apply_revision(
        &mut self,
        dst: &Conn,
        rev: i64,
        mut ops: Vec<RequestOp>,
        state_key: &Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        let n = ops.len() as i64;
        let Some(k) = state_key else {
            for chunk in ops.chunks(self.max_ops) {
                self.txn(dst, Vec::new(), chunk.to_vec()).await?;
            }
            self.rev = rev;
            self.total.fetch_add(n, Ordering::SeqCst);
            return Ok(());
        };
        // A revision larger than one transaction: all but the last part go first (puts and
        // deletes are idempotent, so a retry of them is harmless).
        while ops.len() > self.max_ops - 1 {
            let rest = ops.split_off(self.max_ops - 1);
            self.txn(dst, Vec::new(), std::mem::replace(&mut ops, rest))
                .await?;
        }
        ops.push(put(k.clone(), rev.to_string().into_bytes()));
        let cmp = Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Value as i32,
            key: k.clone(),
            target_union: Some(compare::TargetUnion::Value(
                self.rev.to_string().into_bytes(),
            )),
            ..Default::default()
        };
        if !self.txn(dst, vec![cmp], ops).await? {
            let at = mirrored_revision(dst, k).await?;
            if at < rev {
                return Err(Stop::Fatal(Failure::error(format!(
                    "make-mirror: state key {} says revision {at}, expected {}: is another make-mirror with the same source and prefixes running? (use --state-key to tell them apart)",
                    String::from_utf8_lossy(k),
                    self.rev
                ))));
            }
            // Already applied (a retry after a lost answer).
        }
        self.rev = rev;
        self.total.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
}
