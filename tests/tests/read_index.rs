//! Linearizable reads share read-index rounds (daemon/src/server/reads.rs). Hundreds of
//! concurrent reads on every member, while one writer advances a counter: no read may return a
//! value older than the last write acknowledged before the read started, and none may fail
//! (they used to time out when each read ran its own leader confirmation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use retcd_tests::*;

const READERS: usize = 300;
const WRITES: u64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_linearizable_reads_never_go_back_in_time() {
    let c = Cluster::start(Flavor::Retcd, 3);
    let eps: Vec<String> = c.members.iter().map(|m| m.client_url()).collect();
    let mut writer = Client::connect([eps[0].clone()], None).await.unwrap();
    writer.put("counter", "0", None).await.unwrap();
    // acked[i] = when write i was acknowledged (micros since start; u64::MAX: not yet).
    let start = Instant::now();
    let acked: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..=WRITES)
            .map(|_| std::sync::atomic::AtomicU64::new(u64::MAX))
            .collect(),
    );
    acked[0].store(0, std::sync::atomic::Ordering::SeqCst);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (ep, acked, done) = (eps[r % eps.len()].clone(), acked.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut cl = Client::connect([ep], None).await.unwrap();
            let (mut reads, mut errors, mut stale) = (0u64, Vec::new(), Vec::new());
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let began = start.elapsed().as_micros() as u64;
                // The newest write acknowledged before this read began.
                let floor = (0..=WRITES)
                    .rev()
                    .find(|i| acked[*i as usize].load(std::sync::atomic::Ordering::SeqCst) <= began)
                    .unwrap_or(0);
                match cl.get("counter", Some(GetOptions::new())).await {
                    Ok(g) => {
                        reads += 1;
                        let v: u64 = g
                            .kvs()
                            .first()
                            .and_then(|kv| kv.value_str().ok())
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        if v < floor {
                            stale.push((floor, v));
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (reads, errors, stale)
        }));
    }
    for i in 1..=WRITES {
        writer.put("counter", i.to_string(), None).await.unwrap();
        acked[i as usize].store(
            start.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut reads, mut errors, mut stale) = (0, Vec::new(), Vec::new());
    for r in readers {
        let (n, e, s) = r.await.unwrap();
        reads += n;
        errors.extend(e);
        stale.extend(s);
    }
    println!("{reads} linearizable reads by {READERS} clients during {WRITES} writes");
    assert!(
        errors.is_empty(),
        "{} reads failed, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        stale.is_empty(),
        "stale reads (expected at least, got): {stale:?}"
    );
    assert!(
        reads > READERS as u64 * 2,
        "too few reads to mean anything: {reads}"
    );
}
