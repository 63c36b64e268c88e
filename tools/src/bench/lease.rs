//! `etcd-bench lease-keepalive`: each client grants a lease (TTL 100) and sends keep-alives,
//! one round trip at a time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::report::Report;
use super::{progress_bar, Ctx, Fail};
use crate::client::status_message;
use crate::etcdserverpb::lease_client::LeaseClient;
use crate::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest};
use crate::flags::{flag, Kind, Spec};

pub const FLAGS: &[Spec] = &[flag("total", Kind::Value, "10000")];

pub async fn run(ctx: &Ctx) -> Result<(), Fail> {
    let total = ctx.usize("total")?;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let progress = progress_bar(total as u64, done.clone());
    let mut tasks = Vec::new();
    for c in 0..ctx.clients {
        let (ch, next, done) = (ctx.conn(c), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = LeaseClient::new(ch);
            let id = client
                .lease_grant(LeaseGrantRequest { ttl: 100, id: 0 })
                .await
                .map_err(|e| status_message(&e))?
                .into_inner()
                .id;
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            // A first keep-alive before the stream opens: etcd 3.4 answers the stream's
            // headers only once a request arrived.
            tx.send(LeaseKeepAliveRequest { id })
                .await
                .map_err(|_| "keep-alive stream closed".to_string())?;
            let mut stream = client
                .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|e| status_message(&e))?
                .into_inner();
            stream.message().await.map_err(|e| status_message(&e))?;
            let mut r = Report::default();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let st = Instant::now();
                let err = if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                    Some("keep-alive stream closed".to_string())
                } else {
                    match stream.message().await {
                        Ok(Some(_)) => None,
                        Ok(None) => Some("keep-alive stream closed".to_string()),
                        Err(e) => Some(status_message(&e)),
                    }
                };
                r.record(st - start, st.elapsed(), err);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<Report, String>(r)
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => report.merge(r),
            Ok(Err(e)) => return Err(Fail(e)),
            Err(e) => return Err(Fail(e.to_string())),
        }
    }
    report.total = start.elapsed();
    progress.finish();
    ctx.print("lease-keepalive", "", "", report);
    Ok(())
}
