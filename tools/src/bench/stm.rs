//! `etcd-bench stm`: clientv3's software transactional memory: read `--keys-per-txn` keys,
//! overwrite `--txn-wr-percent` of them, commit with the isolation's conflict checks, retry
//! on conflict; one latency per committed transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Ch;
use super::{drive, put_varint, Ctx, Fail, Op, Rng};
use crate::client::status_message;
use crate::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::request_op::Request;
use crate::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::flags::{flag, Kind, Spec};

pub const FLAGS: &[Spec] = &[
    flag("isolation", Kind::Value, "r"),
    flag("keys", Kind::Value, "1"),
    flag("total", Kind::Value, "10000"),
    flag("keys-per-txn", Kind::Value, "1"),
    flag("txn-wr-percent", Kind::Value, "50"),
    flag("stm-locker", Kind::Value, "stm"),
    flag("val-size", Kind::Value, "8"),
    flag("rate", Kind::Value, "0"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Iso {
    ReadCommitted,
    RepeatableReads,
    Serializable,
    SerializableSnapshot,
}

fn cmp_mod_rev_below(key: &[u8], rev: i64) -> Compare {
    Compare {
        result: CompareResult::Less as i32,
        target: CompareTarget::Mod as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::ModRevision(rev)),
    }
}

/// One STM transaction, retried until it commits.
async fn apply(
    ch: Ch,
    iso: Iso,
    keys: Vec<Vec<u8>>,
    writes: usize,
    vals: Vec<Vec<u8>>,
) -> Result<(), String> {
    let mut kv = KvClient::new(ch).max_decoding_message_size(usize::MAX);
    loop {
        // key -> mod revision when read
        let mut rset: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut first_rev = 0i64;
        let mut puts = Vec::new();
        let mut wrs = writes;
        for (i, k) in keys.iter().enumerate() {
            let serial =
                matches!(iso, Iso::Serializable | Iso::SerializableSnapshot) && first_rev > 0;
            let r = kv
                .range(RangeRequest {
                    key: k.clone(),
                    revision: if serial { first_rev } else { 0 },
                    serializable: serial,
                    ..Default::default()
                })
                .await
                .map_err(|e| status_message(&e))?
                .into_inner();
            let rev = r.header.map(|h| h.revision).unwrap_or(0);
            if first_rev == 0 {
                first_rev = rev;
            }
            rset.insert(
                k.clone(),
                r.kvs.first().map(|kv| kv.mod_revision).unwrap_or(0).max(0),
            );
            if wrs > 0 {
                puts.push(RequestOp {
                    request: Some(Request::RequestPut(PutRequest {
                        key: k.clone(),
                        value: vals[i % vals.len()].clone(),
                        ..Default::default()
                    })),
                });
                wrs -= 1;
            }
        }
        // Conflicts: a read key changed since it was read (etcd: mod revision < read rev + 1).
        let mut compare: Vec<Compare> = match iso {
            Iso::ReadCommitted => Vec::new(),
            _ => rset
                .keys()
                .map(|k| cmp_mod_rev_below(k, first_rev + 1))
                .collect(),
        };
        if iso == Iso::SerializableSnapshot {
            for p in &puts {
                if let Some(Request::RequestPut(p)) = &p.request {
                    compare.push(cmp_mod_rev_below(&p.key, first_rev + 1));
                }
            }
        }
        let r = kv
            .txn(TxnRequest {
                compare,
                success: puts,
                failure: Vec::new(),
            })
            .await
            .map_err(|e| status_message(&e))?
            .into_inner();
        if r.succeeded {
            return Ok(());
        }
    }
}

pub async fn run(ctx: &Ctx) -> Result<(), Fail> {
    let nkeys = ctx.usize("keys")?;
    if nkeys == 0 {
        return Err(Fail(format!("expected positive --keys, got ({nkeys})")));
    }
    let pct = ctx.usize("txn-wr-percent")?;
    if pct > 100 {
        return Err(Fail(format!(
            "expected [0, 100] --txn-wr-percent, got ({pct})"
        )));
    }
    let per = ctx.usize("keys-per-txn")?;
    if per > nkeys {
        return Err(Fail(format!(
            "expected --keys-per-txn between 0 and {nkeys}, got ({per})"
        )));
    }
    let iso = match ctx.f.get("isolation").as_str() {
        "c" => Iso::ReadCommitted,
        "r" => Iso::RepeatableReads,
        "s" => Iso::Serializable,
        "ss" => Iso::SerializableSnapshot,
        other => {
            return Err(Fail(format!(
                "--isolation {other}: Read Committed (c), Repeatable Reads (r), Serializable (s), or Snapshot (ss)"
            )))
        }
    };
    if ctx.f.get("stm-locker") != "stm" {
        return Err(Fail(format!(
            "--stm-locker {}: only \"stm\" is supported yet by retcd's etcd-bench",
            ctx.f.get("stm-locker")
        )));
    }
    let val_size = ctx.usize("val-size")?;
    let writes = per * pct / 100;
    let op: Op = Arc::new(move |ch, _, rng: &mut Rng| {
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < per {
            let k = rng.below(nkeys);
            if !picked.contains(&k) {
                picked.push(k);
            }
        }
        let keys: Vec<Vec<u8>> = picked
            .into_iter()
            .map(|n| {
                let mut k = vec![0u8; 16];
                put_varint(&mut k, n as i64);
                k
            })
            .collect();
        let vals: Vec<Vec<u8>> = (0..writes.max(1)).map(|_| rng.bytes(val_size)).collect();
        Box::pin(apply(ch, iso, keys, writes, vals))
    });
    let r = drive(ctx, ctx.usize("total")?, ctx.u64("rate")?, op).await;
    ctx.print("stm", "", "", r);
    Ok(())
}
