//! `etcd-bench watch` (watch creation latency over many streams, then put-to-event latency
//! on every watcher) and `watch-latency` (one key watched by every client: time from a put's
//! response to each watcher's event, as etcd measures it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::report::Report;
use super::Ch;
use super::{Ctx, Fail, Limiter, Rng};
use crate::client::status_message;
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::watch_client::WatchClient;
use crate::etcdserverpb::watch_request::RequestUnion;
use crate::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest, WatchResponse};
use crate::flags::{flag, Kind, Spec};

pub const WATCH_FLAGS: &[Spec] = &[
    flag("streams", Kind::Value, "10"),
    flag("watch-per-stream", Kind::Value, "100"),
    flag("watched-key-total", Kind::Value, "1"),
    flag("put-rate", Kind::Value, "0"),
    flag("put-total", Kind::Value, "1000"),
    flag("key-size", Kind::Value, "32"),
    flag("key-space-size", Kind::Value, "1"),
    flag("sequential-keys", Kind::Bool, "false"),
];

pub const LATENCY_FLAGS: &[Spec] = &[
    flag("total", Kind::Value, "10000"),
    flag("put-rate", Kind::Value, "100"),
    flag("key-size", Kind::Value, "32"),
    flag("val-size", Kind::Value, "32"),
];

type Stream = tonic::Streaming<WatchResponse>;

/// Opens a watch stream on `ch` with `first` as its first request (etcd 3.4 sends the
/// response headers only once a request arrived); more go in through the sender.
async fn open(ch: Ch, first: WatchRequest) -> Result<(mpsc::Sender<WatchRequest>, Stream), Fail> {
    let (tx, rx) = mpsc::channel(1024);
    tx.send(first)
        .await
        .map_err(|_| Fail("watch stream closed".into()))?;
    let stream = WatchClient::new(ch)
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|e| Fail(format!("watch: {}", status_message(&e))))?
        .into_inner();
    Ok((tx, stream))
}

fn create(key: Vec<u8>) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            ..Default::default()
        })),
    }
}

async fn put(ch: Ch, key: Vec<u8>, value: Vec<u8>) -> Result<(), Fail> {
    KvClient::new(ch)
        .put(PutRequest {
            key,
            value,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| {
            Fail(format!(
                "Failed to Put for watch benchmark: {}",
                status_message(&e)
            ))
        })
}

pub async fn latency(ctx: &Ctx) -> Result<(), Fail> {
    let total = ctx.usize("total")?;
    let mut rng = Rng::new(3);
    let key = rng.bytes(ctx.usize("key-size")?);
    let value = rng.bytes(ctx.usize("val-size")?);
    // Every watcher timestamps its events; the put loop matches them to its puts.
    let (tx, mut arrivals) = mpsc::unbounded_channel::<Instant>();
    let mut watchers = Vec::new();
    for c in 0..ctx.clients {
        let (wtx, mut stream) = open(ctx.conn(c), create(key.clone())).await?;
        let created = stream
            .message()
            .await
            .map_err(|e| Fail(status_message(&e)))?;
        if !created.is_some_and(|r| r.created) {
            return Err(Fail("watch was not created".into()));
        }
        let tx = tx.clone();
        watchers.push(tokio::spawn(async move {
            let _keep = wtx;
            while let Ok(Some(r)) = stream.message().await {
                for _ in &r.events {
                    let _ = tx.send(Instant::now());
                }
            }
        }));
    }
    let put_ch = ctx.conn(ctx.clients);
    let limiter = Limiter::new(ctx.u64("put-rate")?);
    let done = Arc::new(AtomicU64::new(0));
    let progress = super::progress_bar(total as u64, done.clone());
    let start = Instant::now();
    let mut report = Report::default();
    for _ in 0..total {
        limiter.wait().await;
        put(put_ch.clone(), key.clone(), value.clone()).await?;
        let st = Instant::now();
        for _ in 0..ctx.clients {
            let at = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .ok()
                .flatten()
                .ok_or_else(|| Fail("a watcher missed an event for 10s".into()))?;
            let end = at.max(st);
            report.record(st - start, end - st, None);
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    report.total = start.elapsed();
    progress.finish();
    for w in watchers {
        w.abort();
    }
    ctx.print("watch-latency", "", "", report);
    Ok(())
}

pub async fn watch(ctx: &Ctx) -> Result<(), Fail> {
    let streams = ctx.usize("streams")?;
    let per_stream = ctx.usize("watch-per-stream")?;
    let nkeys = ctx.usize("watched-key-total")?.max(1);
    let space = ctx.usize("key-space-size")?.max(1);
    let put_total = ctx.usize("put-total")?;
    let seq = ctx.f.bool("sequential-keys");
    let key_size = ctx.usize("key-size")?;
    let mut rng = Rng::new(5);
    let keys: Vec<Vec<u8>> = (0..nkeys).map(|_| rng.bytes(key_size)).collect();
    // Watchers per key, to know how many events each put brings.
    let mut watchers_of = vec![0u64; nkeys];
    // Creation: every stream creates its watchers one after the other, streams in parallel.
    let start = Instant::now();
    let mut creating = Vec::new();
    for s in 0..streams {
        let ch = ctx.conn(s);
        let mine: Vec<usize> = (0..per_stream)
            .map(|j| (s * per_stream + j) % nkeys)
            .collect();
        for k in &mine {
            watchers_of[*k] += 1;
        }
        let keys = keys.clone();
        creating.push(tokio::spawn(async move {
            let mut r = Report::default();
            let mut live: Option<(mpsc::Sender<WatchRequest>, Stream)> = None;
            for k in mine {
                let st = Instant::now();
                let stream = match live.as_mut() {
                    Some((tx, stream)) => {
                        tx.send(create(keys[k].clone()))
                            .await
                            .map_err(|_| Fail("watch stream closed".into()))?;
                        stream
                    }
                    None => {
                        &mut live
                            .insert(open(ch.clone(), create(keys[k].clone())).await?)
                            .1
                    }
                };
                loop {
                    match stream.message().await {
                        Ok(Some(m)) if m.created => break,
                        Ok(Some(_)) => continue,
                        Ok(None) => return Err(Fail("watch stream closed".into())),
                        Err(e) => return Err(Fail(status_message(&e))),
                    }
                }
                r.record(st - start, st.elapsed(), None);
            }
            let (tx, stream) = live.ok_or_else(|| Fail("--watch-per-stream is 0".into()))?;
            Ok::<_, Fail>((r, tx, stream))
        }));
    }
    let mut created = Report::default();
    let mut live = Vec::new();
    for c in creating {
        let (r, tx, stream) = c.await.map_err(|e| Fail(e.to_string()))??;
        created.merge(r);
        live.push((tx, stream));
    }
    created.total = start.elapsed();
    ctx.print("watch", "creation", "Watch creation summary:\n", created);

    // Events: each put's value carries its index; its start time is set before it is sent.
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..put_total).map(|_| AtomicU64::new(0)).collect());
    let put_keys: Vec<usize> = (0..put_total)
        .map(|i| {
            if seq {
                i % space % nkeys
            } else {
                rng.below(space) % nkeys
            }
        })
        .collect();
    let expected: u64 = put_keys.iter().map(|k| watchers_of[*k]).sum();
    let (etx, mut events) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut readers = Vec::new();
    for (tx, mut stream) in live {
        let etx = etx.clone();
        readers.push(tokio::spawn(async move {
            let _keep = tx;
            while let Ok(Some(r)) = stream.message().await {
                let at = Instant::now();
                for e in &r.events {
                    let v = e.kv.as_ref().map(|kv| kv.value.as_slice()).unwrap_or(&[]);
                    if let Some(b) = v.get(..8) {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        let _ = etx.send((u64::from_be_bytes(a) as usize, at));
                    }
                }
            }
        }));
    }
    drop(etx);
    let limiter = Limiter::new(ctx.u64("put-rate")?);
    let t0 = Instant::now();
    let put_ch = ctx.conn(0);
    let (starts2, keys2) = (starts.clone(), keys.clone());
    let putter = tokio::spawn(async move {
        for (i, k) in put_keys.into_iter().enumerate() {
            limiter.wait().await;
            let mut value = vec![0u8; 8];
            value.copy_from_slice(&(i as u64).to_be_bytes());
            starts2[i].store(t0.elapsed().as_nanos() as u64, Ordering::SeqCst);
            put(put_ch.clone(), keys2[k].clone(), value).await?;
        }
        Ok::<(), Fail>(())
    });
    let done = Arc::new(AtomicU64::new(0));
    let progress = super::progress_bar(expected, done.clone());
    let mut received = Report::default();
    let mut got = 0u64;
    while got < expected {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some((i, at))) => {
                let st = t0
                    + Duration::from_nanos(
                        starts.get(i).map(|s| s.load(Ordering::SeqCst)).unwrap_or(0),
                    );
                received.record(st - t0, at.saturating_duration_since(st), None);
                got += 1;
                done.store(got, Ordering::Relaxed);
            }
            _ => break,
        }
    }
    received.total = t0.elapsed();
    progress.finish();
    putter.await.map_err(|e| Fail(e.to_string()))??;
    for r in readers {
        r.abort();
    }
    if got < expected {
        received.errors.insert(
            "watch event not received within 10s".into(),
            (expected - got) as usize,
        );
    }
    ctx.print(
        "watch",
        "events",
        "Watch events received summary:\n",
        received,
    );
    Ok(())
}
