//! Many concurrent writers on a 3-member cluster: the leader puts queued writes into one raft
//! entry, and each request of a batch must behave as if it were an entry of its own — its own
//! revision, in order, seeing the writes before it (a compare-and-swap loses to an earlier
//! one in the same batch).

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use retcd_tests::*;

const PUTS: usize = 400;
const INCREMENTERS: usize = 40;
const INCREMENTS_EACH: usize = 5;

/// A counter from the member's `/metrics`.
fn counter(m: &Member, name: &str) -> u64 {
    let (_, body) = http_get(m.client_port, "/metrics").expect("metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn batched(m: &Member) -> u64 {
    counter(m, "retcd_server_proposals_batched_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_batched_on_the_leader_keep_per_request_semantics() {
    let mut cluster = Cluster::start(Flavor::Retcd, 3);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut clients = Vec::new();
    for m in &cluster.members {
        for _ in 0..4 {
            clients.push(
                Client::connect([m.client_url()], None)
                    .await
                    .expect("connect"),
            );
        }
    }

    // Distinct keys from every member at once: every write gets its own revision, the
    // revisions are exactly the next PUTS ones, and each key holds its value at its revision.
    let start = clients[0]
        .get("nothing", None)
        .await
        .expect("get")
        .header()
        .expect("header")
        .revision();
    let streamed = |m: &Member| counter(m, "retcd_peer_stream_proposals_received_total");
    let streamed_before = streamed(&cluster.members[leader]);
    let mut tasks = Vec::new();
    let mut forwarded = 0;
    for i in 0..PUTS {
        if (i % clients.len()) / 4 != leader {
            forwarded += 1;
        }
        let mut c = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let r = c
                .put(format!("b/{i:04}"), format!("v{i}"), None)
                .await
                .expect("put");
            (i, r.header().expect("header").revision())
        }));
    }
    let mut rev_of = BTreeMap::new();
    for t in tasks {
        let (i, rev) = t.await.expect("task");
        rev_of.insert(i, rev);
    }
    // The followers forwarded their writes to the leader over raft streams, every one once.
    assert_eq!(
        streamed(&cluster.members[leader]) - streamed_before,
        forwarded
    );
    let mut revs: Vec<i64> = rev_of.values().copied().collect();
    revs.sort_unstable();
    let expected: Vec<i64> = (start + 1..=start + PUTS as i64).collect();
    assert_eq!(revs, expected);
    let g = clients[0]
        .get("b/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("get");
    assert_eq!(g.kvs().len(), PUTS);
    for kv in g.kvs() {
        let i: usize = kv.key_str().expect("utf8")[2..].parse().expect("index");
        assert_eq!(kv.value_str().expect("utf8"), format!("v{i}"));
        assert_eq!(kv.mod_revision(), rev_of[&i], "key b/{i:04}");
        assert_eq!((kv.version(), kv.create_revision()), (1, rev_of[&i]));
    }

    // Compare-and-swap increments of one counter: requests in one batch see the writes
    // before them, so exactly one of two increments from the same value wins and none is lost.
    clients[0].put("ctr", "0", None).await.expect("put ctr");
    let mut tasks = Vec::new();
    for w in 0..INCREMENTERS {
        let mut c = clients[w % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            while wins.len() < INCREMENTS_EACH {
                let g = c.get("ctr", None).await.expect("get ctr");
                let cur: u64 = g.kvs()[0].value_str().expect("utf8").parse().expect("n");
                let t = Txn::new()
                    .when([Compare::value("ctr", CompareOp::Equal, cur.to_string())])
                    .and_then([TxnOp::put("ctr", (cur + 1).to_string(), None)]);
                let r = c.txn(t).await.expect("txn");
                if r.succeeded() {
                    wins.push((cur + 1, r.header().expect("header").revision()));
                }
            }
            wins
        }))
    }
    let mut wins = Vec::new();
    for t in tasks {
        wins.extend(t.await.expect("task"));
    }
    let total = (INCREMENTERS * INCREMENTS_EACH) as u64;
    let mut values: Vec<u64> = wins.iter().map(|w| w.0).collect();
    values.sort_unstable();
    assert_eq!(values, (1..=total).collect::<Vec<_>>());
    // Each winning increment's revision follows the one before it.
    wins.sort_unstable();
    assert!(wins.windows(2).all(|w| w[0].1 < w[1].1), "{wins:?}");
    let g = clients[0].get("ctr", None).await.expect("get ctr");
    assert_eq!(g.kvs()[0].value_str().expect("utf8"), total.to_string());

    // The writes above did travel in batches, the followers received their log over raft
    // streams, and every member holds the same history.
    assert!(
        batched(&cluster.members[leader]) > 0,
        "no write was batched on the leader"
    );
    for (i, m) in cluster
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
    {
        let appends = counter(m, "retcd_peer_stream_appends_received_total");
        assert!(
            appends > 0,
            "follower {i} received no AppendEntries over a raft stream"
        );
    }
    let rev = g.header().expect("header").revision().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let hashes: Vec<Option<u64>> = cluster
            .members
            .iter()
            .map(|m| {
                let o = m.etcdctl(&["endpoint", "hashkv", "--rev", &rev, "-w", "json"]);
                json_u64(&out(&o), "hash")
            })
            .collect();
        if hashes[0].is_some() && hashes.windows(2).all(|h| h[0] == h[1]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "members disagree at revision {rev}: {hashes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// etcd takes a snapshot (and compacts its raft log) every `--snapshot-count` applied
/// requests; a batch entry counts each request it carries, so batching does not stretch the
/// log between purges.
#[test]
fn snapshots_come_every_snapshot_count_requests_however_they_were_batched() {
    let m = Member::start_with(Flavor::Retcd, &["--snapshot-count", "100"], &[]);
    let o = std::process::Command::new("timeout")
        .arg("120")
        .arg(our_tool("etcd-bench"))
        .args([
            "--endpoints",
            &m.endpoint(),
            "--conns",
            "10",
            "--clients",
            "100",
        ])
        .args(["put", "--total", "2000", "--key-space-size", "2000"])
        .output()
        .expect("run etcd-bench");
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    let batched = batched(&m);
    assert!(batched > 0, "no write was batched");
    // 2000 requests: 20 snapshots by request count (a few fewer when one is still being
    // taken as the next falls due); counting entries would give 2000 - batched + a few.
    let snapshots = m.log().matches("triggering snapshot").count();
    assert!(
        snapshots >= 10,
        "{snapshots} snapshots for 2000 requests with --snapshot-count 100 ({batched} batched)"
    );
}
