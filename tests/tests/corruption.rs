//! Corruption checks: a member whose stored history differs from the others' is found by the
//! leader's periodic hash check (CORRUPT alarm, writes refused) and refuses to start with
//! `--experimental-initial-corrupt-check`.

use std::time::{Duration, Instant};

use retcd_tests::*;

/// Flips a byte inside the newest stored value of a stopped member's database.
fn corrupt(data_dir: &std::path::Path) {
    let b = retcd::backend::Backend::open(data_dir, None, true).expect("open stopped member");
    let cf = b.cf(retcd::backend::CF_KV).expect("kv");
    let (k, mut v) =
        b.db.iterator_cf(cf, rocksdb::IteratorMode::End)
            .next()
            .expect("a record")
            .expect("readable");
    let last = v.len() - 1;
    v[last] ^= 0x01;
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(cf, &k, &v);
    b.write(batch, true).expect("write");
}

#[test]
fn a_corrupted_member_is_found_by_the_leader_and_refused_at_start() {
    let mut c = Cluster::start_with(
        Flavor::Retcd,
        3,
        &["--experimental-corrupt-check-time=500ms"],
    );
    let ep = c.members[0].endpoint();
    for i in 0..10 {
        etcdctl(&ep, &["put", &format!("c{i}"), "value"], None);
    }
    // Every member has everything; then a follower's disk goes bad while it is down.
    std::thread::sleep(Duration::from_millis(500));
    let leader = c.wait_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    let victim_id = json_u64(
        &out(&etcdctl(
            &c.members[victim].endpoint(),
            &["endpoint", "status", "-w", "json"],
            None,
        )),
        "member_id",
    )
    .unwrap();
    c.members[victim].terminate();
    corrupt(&c.members[victim].data_dir);
    c.members[victim].restart();

    let deadline = Instant::now() + Duration::from_secs(20);
    let want = format!("memberID:{victim_id} alarm:CORRUPT \n");
    loop {
        let alarms = out(&etcdctl(&ep, &["alarm", "list"], None));
        if alarms == want {
            break;
        }
        assert!(Instant::now() < deadline, "no CORRUPT alarm: {alarms:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = etcdctl(&ep, &["put", "x", "y"], None);
    assert_eq!(err_lines(&o), "Error: etcdserver: corrupt cluster\n");

    // With the initial check, the damaged member refuses to start.
    c.members[victim].terminate();
    c.members[victim]
        .extra_args
        .push("--experimental-initial-corrupt-check=true".into());
    c.members[victim].launch_nowait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.members[victim].is_running() {
        assert!(
            Instant::now() < deadline,
            "the corrupted member kept running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&c.members[victim].log_path).unwrap_or_default();
    assert!(log.contains("found data inconsistency with peers"), "{log}");
}

#[test]
fn healthy_members_pass_the_initial_check() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    etcdctl(&c.members[0].endpoint(), &["put", "a", "1"], None);
    std::thread::sleep(Duration::from_millis(300));
    c.members[2].terminate();
    c.members[2]
        .extra_args
        .push("--experimental-initial-corrupt-check=true".into());
    c.members[2].launch();
    let o = etcdctl(
        &c.members[2].endpoint(),
        &["get", "a", "--print-value-only"],
        None,
    );
    assert_eq!(out(&o), "1\n");
}
