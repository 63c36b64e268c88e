//! Concurrent clients record histories of get / put / compare-and-swap while members are
//! killed, paused and restarted; the histories must be linearizable (zero violations).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use retcd_tests::linearizability::{check, Event, Op};
use retcd_tests::*;

const KEYS: usize = 4;
const CLIENTS: usize = 5;
const OP_TIMEOUT: Duration = Duration::from_secs(3);

async fn worker(
    id: usize,
    endpoints: Vec<String>,
    start: Instant,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Event>>>,
) -> (usize, usize) {
    let mut client = loop {
        match Client::connect(endpoints.clone(), None).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let now = |start: Instant| start.elapsed().as_micros() as u64;
    let (mut ok, mut failed) = (0, 0);
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("lin/{}", (n as usize * 7 + id) % KEYS);
        let value = format!("c{id}-{n}");
        let invoke = now(start);
        let kind = (n as usize + id) % 10;
        let (op, ret) = if kind < 4 {
            match tokio::time::timeout(OP_TIMEOUT, client.get(key.as_str(), None)).await {
                Ok(Ok(r)) => (
                    Some(Op::Get(
                        r.kvs()
                            .first()
                            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                    )),
                    Some(now(start)),
                ),
                // A failed read has no effect: leave it out.
                _ => (None, None),
            }
        } else if kind < 7 {
            let r =
                tokio::time::timeout(OP_TIMEOUT, client.put(key.as_str(), value.as_str(), None))
                    .await;
            let done = matches!(r, Ok(Ok(_)));
            (Some(Op::Put(value.clone())), done.then(|| now(start)))
        } else {
            // CAS from the value this client expects most recently written by client id-1.
            let expect = format!("c{}-{}", (id + 1) % CLIENTS, n.saturating_sub(3));
            let txn = Txn::new()
                .when([Compare::value(
                    key.as_str(),
                    CompareOp::Equal,
                    expect.as_str(),
                )])
                .and_then([TxnOp::put(key.as_str(), value.as_str(), None)]);
            match tokio::time::timeout(OP_TIMEOUT, client.txn(txn)).await {
                Ok(Ok(r)) => (
                    Some(Op::Cas {
                        expect,
                        new: value.clone(),
                        ok: Some(r.succeeded()),
                    }),
                    Some(now(start)),
                ),
                _ => (
                    Some(Op::Cas {
                        expect,
                        new: value.clone(),
                        ok: None,
                    }),
                    None,
                ),
            }
        };
        if ret.is_some() {
            ok += 1;
        } else {
            failed += 1;
        }
        if let Some(op) = op {
            history.lock().unwrap().push(Event {
                key,
                invoke,
                ret,
                op,
            });
        }
        if ret.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_stay_linearizable_under_kills_pauses_partitions_and_restarts() {
    let mut c = Cluster::start_partitionable(Flavor::Retcd, 3, &[]);
    let endpoints: Vec<String> = c.members.iter().map(|m| m.client_url()).collect();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            tokio::spawn(worker(
                id,
                endpoints.clone(),
                start,
                stop.clone(),
                history.clone(),
            ))
        })
        .collect();

    let pause = |d: u64| std::thread::sleep(Duration::from_millis(d));
    tokio::task::block_in_place(|| {
        pause(1500);
        // 1. kill -9 the leader, bring it back.
        let l = c.wait_leader(Duration::from_secs(10));
        c.members[l].kill9();
        pause(2500);
        c.members[l].restart();
        pause(1000);
        // 2. Pause the leader (SIGSTOP): the others elect; resume it.
        let l = c.wait_leader(Duration::from_secs(10));
        c.members[l].pause(true);
        pause(3000);
        c.members[l].pause(false);
        pause(1000);
        // 3. Partition the leader away from the others, then heal.
        let l = c.wait_leader(Duration::from_secs(10));
        c.isolate(l);
        pause(3000);
        c.heal();
        pause(1500);
        // 4. Restart every member, one by one.
        for i in 0..3 {
            c.members[i].restart();
            pause(500);
        }
        pause(1000);
    });
    stop.store(true, Ordering::SeqCst);
    let mut ok = 0;
    let mut failed = 0;
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    let events = history.lock().unwrap().clone();
    let bad = check(&events);
    eprintln!(
        "{} operations recorded: {ok} completed, {failed} failed or timed out",
        events.len()
    );
    assert!(ok > 100, "too few operations completed: {ok}");
    assert!(bad.is_empty(), "non-linearizable history on keys {bad:?}");

    // The checker is not vacuous on this history: one read corrupted is caught.
    let mut corrupted = events.clone();
    let i = corrupted
        .iter()
        .position(|e| e.ret.is_some() && matches!(e.op, Op::Get(Some(_))))
        .expect("a completed read");
    corrupted[i].op = Op::Get(Some("never-written".into()));
    assert_eq!(check(&corrupted), vec![corrupted[i].key.clone()]);
}
