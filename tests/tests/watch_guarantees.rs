//! etcd's watch guarantees through the etcd-client crate: ordered, unique, reliable, atomic,
//! resumable, bookmarkable — on one member and on a 3-member cluster under faults.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use retcd_tests::*;

async fn client(urls: Vec<String>) -> Client {
    Client::connect(urls, None).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_requests_and_many_watchers() {
    let m = Member::start(Flavor::Retcd);
    let mut c = client(vec![m.client_url()]).await;
    c.put("p/a", "1", None).await.unwrap();
    let mut stream = c
        .watch("p/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created());
    // Bookmark: a progress request answers with the current revision.
    stream.request_progress().await.unwrap();
    let p = stream.message().await.unwrap().unwrap();
    assert!(p.events().is_empty());
    assert_eq!(p.header().unwrap().revision(), 2);
    // 2000 more watchers on the same stream, client-chosen IDs.
    for i in 1..=2000i64 {
        stream
            .watch(
                "p/",
                Some(WatchOptions::new().with_prefix().with_watch_id(i)),
            )
            .await
            .unwrap();
    }
    let mut created = 0;
    while created < 2000 {
        let r = stream.message().await.unwrap().unwrap();
        if r.created() {
            created += 1;
        }
    }
    c.put("p/b", "2", None).await.unwrap();
    let mut got = BTreeSet::new();
    while got.len() < 2001 {
        let r = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        assert_eq!(r.events().len(), 1);
        assert_eq!(r.events()[0].kv().unwrap().mod_revision(), 3);
        assert!(
            got.insert(r.watch_id()),
            "event twice for watcher {}",
            r.watch_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_never_blocks_writes_and_misses_nothing() {
    let m = Member::start(Flavor::Retcd);
    let mut c = client(vec![m.client_url()]).await;
    let mut stream = c
        .watch("s/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(stream.message().await.unwrap().unwrap().created());
    // The watcher reads nothing while 1500 writes go through (far more than its buffer).
    let mut w = client(vec![m.client_url()]).await;
    for i in 0..1500 {
        w.put(format!("s/{i:04}"), "v", None).await.unwrap();
    }
    // Now it reads: every revision once, in order, no gap.
    let mut next = 2;
    while next < 1502 {
        let r = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        for e in r.events() {
            assert_eq!(e.kv().unwrap().mod_revision(), next, "gap or duplicate");
            next += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_follower_watcher_resumes_through_leader_kill_and_its_own_restart() {
    let mut cl = Cluster::start(Flavor::Retcd, 3);
    let leader = cl.wait_leader(Duration::from_secs(10));
    let watched = (leader + 1) % 3;
    let writer_member = (leader + 2) % 3;
    let watch_url = cl.members[watched].client_url();
    // The watcher resumes from the last revision it saw + 1 whenever its stream breaks.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, st2) = (seen.clone(), stop.clone());
    let watch_task = tokio::spawn(async move {
        let mut next = 1i64;
        while !st2.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok(mut c) = Client::connect([watch_url.clone()], None).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let opts = WatchOptions::new().with_prefix().with_start_revision(next);
            let Ok(mut stream) = c.watch("f/", Some(opts)).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            loop {
                match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
                    Err(_) => {
                        if st2.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                    }
                    Ok(Ok(Some(r))) => {
                        assert!(!r.canceled() || r.compact_revision() == 0, "compacted");
                        for e in r.events() {
                            assert_eq!(e.event_type(), EventType::Put);
                            let rev = e.kv().unwrap().mod_revision();
                            s2.lock().unwrap().push(rev);
                            next = rev + 1;
                        }
                    }
                    _ => break,
                }
            }
        }
    });
    let writer_url = cl.members[writer_member].client_url();
    let mut acked = Vec::new();
    let mut w = client(vec![writer_url]).await;
    let started = Instant::now();
    for i in 0..300 {
        if i == 100 {
            tokio::task::block_in_place(|| cl.members[leader].kill9());
        }
        if i == 200 {
            tokio::task::block_in_place(|| {
                cl.members[leader].restart();
                cl.members[watched].restart();
            });
        }
        for _ in 0..20 {
            match tokio::time::timeout(
                Duration::from_secs(3),
                w.put(format!("f/{i:03}"), "v", None),
            )
            .await
            {
                Ok(Ok(r)) => {
                    acked.push(r.header().unwrap().revision());
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    assert_eq!(acked.len(), 300, "writes failed");
    // Let the watcher drain, then stop it.
    let last = *acked.iter().max().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().last().copied().unwrap_or(0) < last {
        assert!(
            Instant::now() < deadline,
            "watcher did not reach revision {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watch_task.await;
    let seen = seen.lock().unwrap().clone();
    // Ordered and unique...
    assert!(
        seen.windows(2).all(|p| p[0] < p[1]),
        "out of order or duplicate: {seen:?}"
    );
    // ... and reliable: every acknowledged write was seen.
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    for r in &acked {
        assert!(seen.contains(r), "missed revision {r}");
    }
    eprintln!("300 writes in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_revisions_are_fragmented_when_asked() {
    let m = Member::start_with(Flavor::Retcd, &["--max-request-bytes", "4096"], &[]);
    let mut c = client(vec![m.client_url()]).await;
    let big = "x".repeat(1200);
    let puts = |v: &str| {
        etcd_client::Txn::new()
            .and_then(["g/a", "g/b", "g/c"].map(|k| etcd_client::TxnOp::put(k, v, None)))
    };
    c.txn(puts(&big)).await.unwrap();
    let mut stream = c
        .watch(
            "g/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_prev_key()
                    .with_fragment(),
            ),
        )
        .await
        .unwrap();
    assert!(stream.message().await.unwrap().unwrap().created());
    // One revision whose events (with previous values) exceed the 4 KiB limit.
    c.txn(puts(&big.replace('x', "y"))).await.unwrap();
    let mut events = 0;
    let mut parts = 0;
    loop {
        let r = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        parts += 1;
        events += r.events().len();
        // (etcd-client does not expose the fragment flag: count the events instead.)
        if events >= 3 {
            break;
        }
    }
    assert_eq!(events, 3);
    assert!(parts > 1, "expected fragments");
}
