//! `etcd-bench txn-put` (txns of `--txn-ops` puts) and `txn-mixed` (each txn a read of
//! `--end-key`'s range with `--limit`, or a put, in `--rw-ratio`; separate reports).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::report::Report;
use super::{drive, put_varint, range, Ctx, Fail, Limiter, Op, Rng};
use crate::client::status_message;
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::request_op::Request;
use crate::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::flags::{flag, Kind, Spec};

pub const PUT_FLAGS: &[Spec] = &[
    flag("key-size", Kind::Value, "8"),
    flag("val-size", Kind::Value, "8"),
    flag("txn-ops", Kind::Value, "1"),
    flag("rate", Kind::Value, "0"),
    flag("total", Kind::Value, "10000"),
    flag("key-space-size", Kind::Value, "1"),
];

pub const MIXED_FLAGS: &[Spec] = &[
    flag("key-size", Kind::Value, "8"),
    flag("val-size", Kind::Value, "8"),
    flag("rate", Kind::Value, "0"),
    flag("total", Kind::Value, "10000"),
    flag("end-key", Kind::Value, ""),
    flag("limit", Kind::Value, "1000"),
    flag("key-space-size", Kind::Value, "1"),
    flag("consistency", Kind::Value, "l"),
    flag("rw-ratio", Kind::Value, "1"),
];

fn put_op(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

async fn txn(ch: super::Ch, success: Vec<RequestOp>) -> Result<(), String> {
    KvClient::new(ch)
        .max_decoding_message_size(usize::MAX)
        .txn(TxnRequest {
            compare: Vec::new(),
            success,
            failure: Vec::new(),
        })
        .await
        .map(|_| ())
        .map_err(|e| status_message(&e))
}

pub async fn put(ctx: &Ctx) -> Result<(), Fail> {
    let space = ctx.usize("key-space-size")?;
    if space == 0 {
        return Err(Fail(format!(
            "expected positive --key-space-size, got ({space})"
        )));
    }
    let ops = ctx.usize("txn-ops")?;
    if ops > space {
        return Err(Fail(format!(
            "expected --txn-ops no larger than --key-space-size, got txn-ops({ops}) key-space-size({space})"
        )));
    }
    let key_size = ctx.usize("key-size")?;
    let value = Rng::new(11).bytes(ctx.usize("val-size")?);
    let op: Op = Arc::new(move |ch, i, _: &mut Rng| {
        let success = (0..ops)
            .map(|j| {
                let mut k = vec![0u8; key_size];
                put_varint(&mut k, ((i * ops + j) % space) as i64);
                put_op(k, value.clone())
            })
            .collect();
        Box::pin(txn(ch, success))
    });
    let r = drive(ctx, ctx.usize("total")?, ctx.u64("rate")?, op).await;
    ctx.print("txn-put", "", "", r);
    ctx.say("");
    Ok(())
}

pub async fn mixed(ctx: &Ctx) -> Result<(), Fail> {
    let space = ctx.usize("key-space-size")?;
    if space == 0 {
        return Err(Fail(format!(
            "expected positive --key-space-size, got ({space})"
        )));
    }
    let serializable = range::consistency(ctx)?;
    let ratio: f64 = ctx
        .f
        .get("rw-ratio")
        .parse()
        .map_err(|_| Fail("invalid argument for \"--rw-ratio\" flag".into()))?;
    let limit = ctx.u64("limit")? as i64;
    let key_size = ctx.usize("key-size")?;
    let value = Rng::new(13).bytes(ctx.usize("val-size")?);
    let end = ctx.f.get("end-key");
    // As etcd's: from the first key (clientv3's prefix of an empty key) to --end-key, or
    // the whole key space, limited to --limit results.
    let read = RangeRequest {
        key: vec![0],
        range_end: if end.is_empty() {
            vec![0]
        } else {
            end.into_bytes()
        },
        limit,
        serializable,
        ..Default::default()
    };
    let total = ctx.usize("total")?;
    let next = Arc::new(AtomicUsize::new(0));
    let limiter = Arc::new(Limiter::new(ctx.u64("rate")?));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..ctx.clients {
        let (ch, next, limiter, read, value) = (
            ctx.conn(c),
            next.clone(),
            limiter.clone(),
            read.clone(),
            value.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut reads, mut writes) = (Report::default(), Report::default());
            let mut rng = Rng::new(c as u64 + 100);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let is_read = rng.unit() < ratio / (1.0 + ratio);
                let op = if is_read {
                    RequestOp {
                        request: Some(Request::RequestRange(read.clone())),
                    }
                } else {
                    let mut k = vec![0u8; key_size];
                    put_varint(&mut k, (i % space) as i64);
                    put_op(k, value.clone())
                };
                limiter.wait().await;
                let st = Instant::now();
                let res = txn(ch.clone(), vec![op]).await;
                let r = if is_read { &mut reads } else { &mut writes };
                r.record(st - start, st.elapsed(), res.err());
            }
            (reads, writes)
        }));
    }
    let (mut reads, mut writes) = (Report::default(), Report::default());
    for t in tasks {
        if let Ok((r, w)) = t.await {
            reads.merge(r);
            writes.merge(w);
        }
    }
    reads.total = start.elapsed();
    writes.total = reads.total;
    let (nr, nw) = (
        reads.lats.len() + reads.errors.values().sum::<usize>(),
        writes.lats.len() + writes.errors.values().sum::<usize>(),
    );
    ctx.print(
        "txn-mixed",
        "read",
        &format!("Total Read Ops: {nr}\nDetails:"),
        reads,
    );
    ctx.say("");
    ctx.print(
        "txn-mixed",
        "write",
        &format!("Total Write Ops: {nw}\nDetails:"),
        writes,
    );
    ctx.say("");
    Ok(())
}
