//! `etcd-bench range KEY [END]`: linearizable (`--consistency l`) or serializable (`s`)
//! ranges.

use std::sync::Arc;

use super::{drive, Ctx, Fail, Op, Rng};
use crate::client::status_message;
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::RangeRequest;
use crate::flags::{flag, Kind, Spec};

pub const FLAGS: &[Spec] = &[
    flag("rate", Kind::Value, "0"),
    flag("total", Kind::Value, "10000"),
    flag("consistency", Kind::Value, "l"),
];

/// etcd's announcement of the consistency, or an error for anything but l and s.
pub fn consistency(ctx: &Ctx) -> Result<bool, Fail> {
    match ctx.f.get("consistency").as_str() {
        "l" => {
            ctx.say("bench with linearizable range");
            Ok(false)
        }
        "s" => {
            ctx.say("bench with serializable range");
            Ok(true)
        }
        other => Err(Fail(format!(
            "--consistency {other}: Linearizable(l) or Serializable(s)"
        ))),
    }
}

pub async fn run(ctx: &Ctx) -> Result<(), Fail> {
    let (key, end) = match ctx.f.args.as_slice() {
        [k] => (k.clone(), String::new()),
        [k, e] => (k.clone(), e.clone()),
        _ => return Err(Fail("usage: etcd-bench range key [end-range]".into())),
    };
    let serializable = consistency(ctx)?;
    let req = RangeRequest {
        key: key.into_bytes(),
        range_end: end.into_bytes(),
        serializable,
        ..Default::default()
    };
    let op: Op = Arc::new(move |ch, _, _: &mut Rng| {
        let req = req.clone();
        Box::pin(async move {
            KvClient::new(ch)
                .max_decoding_message_size(usize::MAX)
                .range(req)
                .await
                .map(|_| ())
                .map_err(|e| status_message(&e))
        })
    });
    let r = drive(ctx, ctx.usize("total")?, ctx.u64("rate")?, op).await;
    ctx.print("range", "", "", r);
    Ok(())
}
