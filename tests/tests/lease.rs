//! Leases through real etcdctl 3.4.23 and the etcd-client crate: outputs as etcd's, expiry
//! decided by the leader and applied at one revision on every member, leader changes.

use std::time::{Duration, Instant};

use etcd_client::{
    Client, EventType, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions, WatchOptions,
};
use retcd_tests::*;

#[test]
fn etcdctl_lease_commands_print_what_etcd_prints() {
    let m = Member::start(Flavor::Retcd);
    let o = m.etcdctl(&["lease", "grant", "100"]);
    let line = out(&o);
    let id = line.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(id.len(), 16, "lease IDs print as %016x: {line}");
    assert_eq!(line, format!("lease {id} granted with TTL(100s)\n"));
    assert!(m
        .etcdctl(&["put", "lk1", "a", &format!("--lease={id}")])
        .status
        .success());
    assert!(m
        .etcdctl(&["put", "lk2", "b", &format!("--lease={id}")])
        .status
        .success());
    assert_eq!(
        out(&m.etcdctl(&["lease", "timetolive", &id])),
        format!("lease {id} granted with TTL(100s), remaining(99s)\n")
    );
    assert_eq!(
        out(&m.etcdctl(&["lease", "timetolive", &id, "--keys"])),
        format!("lease {id} granted with TTL(100s), remaining(99s), attached keys([lk1 lk2])\n")
    );
    let j = out(&m.etcdctl(&["lease", "timetolive", &id, "-w", "json"]));
    let j = mask_json_fields(&j, &["cluster_id", "member_id", "id"]);
    assert_eq!(
        j,
        "{\"cluster_id\":N,\"member_id\":N,\"revision\":3,\"raft_term\":2,\"id\":N,\"ttl\":99,\"granted-ttl\":100,\"keys\":null}\n"
    );
    assert_eq!(
        out(&m.etcdctl(&["lease", "keep-alive", "--once", &id])),
        format!("lease {id} keepalived with TTL(100)\n")
    );
    assert_eq!(
        out(&m.etcdctl(&["lease", "list"])),
        format!("found 1 leases\n{id}\n")
    );
    assert_eq!(
        out(&m.etcdctl(&["lease", "revoke", &id])),
        format!("lease {id} revoked\n")
    );
    // The revoke deleted both keys in one revision.
    assert_eq!(out(&m.etcdctl(&["get", "lk", "--prefix"])), "");
    // (A grant creates no revision: puts at 2 and 3, the revoke at 4.)
    let o = m.etcdctl(&["get", "lk1", "--rev=3", "-w", "json"]);
    assert!(out(&o).contains("\"count\":1"), "{}", out(&o));
    let o = m.etcdctl(&["get", "lk", "--prefix", "-w", "json"]);
    assert!(
        out(&o).contains("\"revision\":4"),
        "one revision for both deletes: {}",
        out(&o)
    );
    let o = m.etcdctl(&["lease", "revoke", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err_lines(&o),
        "Error: failed to revoke lease (etcdserver: requested lease not found)\n"
    );
    assert_eq!(
        out(&m.etcdctl(&["lease", "timetolive", &id])),
        format!("lease {id} already expired\n")
    );
    let o = m.etcdctl(&["put", "q", "v", &format!("--lease={id}")]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: requested lease not found\n"
    );
    let o = m.etcdctl(&["lease", "keep-alive", "--once", "5c10a1fbbcbbce0f"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: requested lease not found\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_every_key_at_one_revision_and_keep_alive_holds_it() {
    let m = Member::start(Flavor::Retcd);
    let mut c = Client::connect([m.client_url()], None).await.unwrap();
    // The minimum TTL is 1.5 x election timeout (2 s here).
    let g = c.lease_grant(1, None).await.unwrap();
    assert_eq!(g.ttl(), 2);
    let kept = c.lease_grant(2, None).await.unwrap();
    for k in ["e/a", "e/b", "e/c"] {
        c.put(k, "v", Some(PutOptions::new().with_lease(g.id())))
            .await
            .unwrap();
    }
    c.put("e/kept", "v", Some(PutOptions::new().with_lease(kept.id())))
        .await
        .unwrap();
    let mut stream = c
        .watch("e/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(stream.message().await.unwrap().unwrap().created());
    let (mut keeper, _responses) = c.lease_keep_alive(kept.id()).await.unwrap();
    let started = Instant::now();
    let expired = loop {
        keeper.keep_alive().await.unwrap();
        if let Ok(Ok(Some(r))) =
            tokio::time::timeout(Duration::from_millis(500), stream.message()).await
        {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "lease never expired"
        );
    };
    // All three keys in one response, one revision.
    assert_eq!(expired.events().len(), 3);
    let revs: Vec<i64> = expired
        .events()
        .iter()
        .map(|e| e.kv().unwrap().mod_revision())
        .collect();
    assert!(revs.iter().all(|r| *r == revs[0]));
    assert!(expired
        .events()
        .iter()
        .all(|e| e.event_type() == EventType::Delete));
    // The kept-alive lease still holds its key.
    assert_eq!(c.get("e/kept", None).await.unwrap().kvs().len(), 1);
    let ttl = c
        .lease_time_to_live(kept.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.keys(), &[b"e/kept".to_vec()]);
    // Txn compares on LEASE (etcdctl 3.4's txn parser cannot express this one).
    let t = etcd_client::Txn::new()
        .when([etcd_client::Compare::lease(
            "e/kept",
            etcd_client::CompareOp::Equal,
            kept.id(),
        )])
        .and_then([etcd_client::TxnOp::put("hit", "yes", None)]);
    assert!(c.txn(t).await.unwrap().succeeded());
    // A client-chosen ID; a duplicate is refused.
    let mine = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
        .await
        .unwrap();
    assert_eq!(mine.id(), 4242);
    let e = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("lease already exists"), "{e}");
    let all = c.leases().await.unwrap();
    let ids: Vec<i64> = all.leases().iter().map(|l| l.id()).collect();
    assert!(ids.contains(&4242) && ids.contains(&kept.id()) && !ids.contains(&g.id()));
}

#[test]
fn leases_survive_a_leader_change_and_expire_everywhere_at_once() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let leader = c.wait_leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let ep = c.members[follower].endpoint();
    let id = out(&etcdctl(&ep, &["lease", "grant", "6"], None))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    for k in ["l/a", "l/b"] {
        assert!(
            etcdctl(&ep, &["put", k, "v", &format!("--lease={id}")], None)
                .status
                .success()
        );
    }
    // Keep-alive through a follower reaches the leader.
    let o = etcdctl(&ep, &["lease", "keep-alive", "--once", &id], None);
    assert_eq!(
        out(&o),
        format!("lease {id} keepalived with TTL(6)\n"),
        "{}",
        err_lines(&o)
    );
    // The leader dies: the new leader gives the lease a fresh TTL; keys are still there.
    c.members[leader].kill9();
    c.wait_leader(Duration::from_secs(10));
    let o = etcdctl(&ep, &["get", "l/", "--prefix", "--keys-only"], None);
    assert_eq!(out(&o), "l/a\n\nl/b\n\n");
    c.members[leader].restart();
    // Then nobody keeps it alive: it expires, and every member deletes both keys at the same
    // revision.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = etcdctl(&ep, &["get", "l/", "--prefix", "--keys-only"], None);
        if out(&o).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "lease did not expire");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut revs = Vec::new();
    for m in &c.members {
        let o = m.etcdctl(&["get", "l/a", "--rev=0", "-w", "json", "--consistency=s"]);
        assert!(!out(&o).contains("\"kvs\""), "{}", out(&o));
        let o = m.etcdctl(&["get", "l/", "--prefix", "-w", "json", "--consistency=s"]);
        revs.push(json_u64(&out(&o), "revision"));
    }
    assert!(revs.iter().all(|r| *r == revs[0]), "{revs:?}");
    for m in &c.members {
        assert_eq!(
            out(&m.etcdctl(&["lease", "timetolive", &id])),
            format!("lease {id} already expired\n")
        );
    }
}

#[test]
fn checkpointed_leases_keep_their_remaining_ttl_across_a_restart() {
    let mut m = Member::start_with(
        Flavor::Retcd,
        &[
            "--experimental-enable-lease-checkpoint",
            "--experimental-lease-checkpoint-interval",
            "500ms",
        ],
        &[],
    );
    let id = out(&m.etcdctl(&["lease", "grant", "30"]))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_secs(4));
    m.kill9();
    m.restart();
    // Without checkpoints a restarted leader would grant the full 30 s again.
    let line = out(&m.etcdctl(&["lease", "timetolive", &id]));
    let remaining: i64 = line
        .split("remaining(")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        (20..=27).contains(&remaining),
        "remaining {remaining}s after a restart: {line}"
    );
}
