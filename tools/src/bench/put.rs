//! `etcd-bench put`: puts of `--val-size` bytes to keys from `--key-space-size` (random, or
//! `--sequential-keys`), optionally compacting every `--compact-interval`.

use std::sync::Arc;

use super::{drive, put_varint, Ctx, Fail, Op, Rng};
use crate::client::status_message;
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::{CompactionRequest, PutRequest, RangeRequest};
use crate::flags::{flag, Kind, Spec};

pub const FLAGS: &[Spec] = &[
    flag("key-size", Kind::Value, "8"),
    flag("val-size", Kind::Value, "8"),
    flag("rate", Kind::Value, "0"),
    flag("total", Kind::Value, "10000"),
    flag("key-space-size", Kind::Value, "1"),
    flag("sequential-keys", Kind::Bool, "false"),
    flag("compact-interval", Kind::Value, "0s"),
    flag("compact-index-delta", Kind::Value, "1000"),
];

pub async fn run(ctx: &Ctx) -> Result<(), Fail> {
    let space = ctx.usize("key-space-size")?;
    if space == 0 {
        return Err(Fail(format!(
            "expected positive --key-space-size, got ({space})"
        )));
    }
    let key_size = ctx.usize("key-size")?;
    let value = Rng::new(7).bytes(ctx.usize("val-size")?);
    let seq = ctx.f.bool("sequential-keys");
    let op: Op = Arc::new(move |ch, i, rng: &mut Rng| {
        let mut k = vec![0u8; key_size];
        let n = if seq { i % space } else { rng.below(space) };
        put_varint(&mut k, n as i64);
        let req = PutRequest {
            key: k,
            value: value.clone(),
            ..Default::default()
        };
        Box::pin(async move {
            KvClient::new(ch)
                .put(req)
                .await
                .map(|_| ())
                .map_err(|e| status_message(&e))
        })
    });
    let compactor = match crate::flags::duration(&ctx.f.get("compact-interval")) {
        Some(iv) if !iv.is_zero() => {
            let (ch, delta) = (ctx.conn(0), ctx.u64("compact-index-delta")? as i64);
            Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(iv).await;
                    let mut kv = KvClient::new(ch.clone());
                    let Ok(r) = kv
                        .range(RangeRequest {
                            key: b"foo".to_vec(),
                            ..Default::default()
                        })
                        .await
                    else {
                        continue;
                    };
                    let rev = r.into_inner().header.map(|h| h.revision).unwrap_or(0);
                    let _ = kv
                        .compact(CompactionRequest {
                            revision: (rev - delta).max(0),
                            physical: false,
                        })
                        .await;
                }
            }))
        }
        _ => None,
    };
    let r = drive(ctx, ctx.usize("total")?, ctx.u64("rate")?, op).await;
    if let Some(c) = compactor {
        c.abort();
    }
    ctx.print("put", "", "", r);
    ctx.say("");
    Ok(())
}
