//! Clusters of real processes: static bootstrap, IDs, routing, leader loss, snapshot catch-up,
//! quorum loss.

use std::time::{Duration, Instant};

use retcd_tests::*;

#[test]
fn three_members_bootstrap_with_the_same_ids_and_listing_as_real_etcd() {
    let real = Cluster::start(Flavor::RealEtcd, 3);
    let ports: Vec<(u16, u16)> = real
        .members
        .iter()
        .map(|m| (m.client_port, m.peer_port))
        .collect();
    let real_list = out(&real.members[0].etcdctl(&["member", "list"]));
    let real_table = out(&real.members[0].etcdctl(&["member", "list", "-w", "table"]));
    let real_json = out(&real.members[1].etcdctl(&["member", "list", "-w", "json"]));
    drop(real);

    let mut members = Cluster::prepare(Flavor::Retcd, 3, &[]);
    for (m, (c, p)) in members.iter_mut().zip(ports) {
        m.client_port = c;
        m.peer_port = p;
    }
    let ours = Cluster::launch(members);
    assert_eq!(
        out(&ours.members[0].etcdctl(&["member", "list"])),
        real_list
    );
    assert_eq!(
        out(&ours.members[0].etcdctl(&["member", "list", "-w", "table"])),
        real_table
    );
    let ours_json = out(&ours.members[1].etcdctl(&["member", "list", "-w", "json"]));
    assert_eq!(
        mask_json_fields(&ours_json, &["raft_term"]),
        mask_json_fields(&real_json, &["raft_term"])
    );
}

#[test]
fn any_member_serves_reads_and_writes() {
    let c = Cluster::start(Flavor::Retcd, 3);
    for (i, m) in c.members.iter().enumerate() {
        let o = m.etcdctl(&["put", &format!("k{i}"), &format!("v{i}")]);
        assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    }
    for m in &c.members {
        // Linearizable: every member sees every write at once.
        let o = m.etcdctl(&["get", "k", "--prefix", "--print-value-only"]);
        assert_eq!(out(&o), "v0\nv1\nv2\n");
        let o = m.etcdctl(&["get", "k2", "-w", "json"]);
        assert!(out(&o).contains("\"revision\":4"), "{}", out(&o));
    }
    // Txn and compaction through a follower.
    let o =
        c.members[2].etcdctl_stdin(&["txn"], Some(b"value(\"k0\") = \"v0\"\n\nput t yes\n\n\n"));
    assert_eq!(out(&o), "SUCCESS\n\nOK\n");
    let o = c.members[1].etcdctl(&["compaction", "3"]);
    assert_eq!(out(&o), "compacted revision 3\n", "{}", err_lines(&o));
    for m in &c.members {
        let o = m.etcdctl(&["get", "k0", "--rev=2"]);
        assert_eq!(
            err_lines(&o),
            "Error: etcdserver: mvcc: required revision has been compacted\n"
        );
    }
    let o = c.members[0].etcdctl(&["endpoint", "health", "--cluster"]);
    assert!(o.status.success(), "{}", err_lines(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .matches("is healthy")
            .count(),
        3
    );
}

#[test]
fn kill9_leader_under_load_loses_no_acknowledged_write() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let leader = c.wait_leader(Duration::from_secs(10));
    let eps = c.endpoints();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let eps = eps.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && i < 400 {
                    let k = format!("load/w{w}/{i:04}");
                    let o = etcdctl(&eps, &["put", &k, "x", "--command-timeout=3s"], None);
                    if o.status.success() {
                        acked.push(k);
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let killed_at = Instant::now();
    c.members[leader].kill9();
    // A new leader within a few election timeouts.
    let new_leader = c.wait_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    let failover = killed_at.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked: Vec<String> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(acked.len() > 20, "only {} writes acknowledged", acked.len());
    c.members[leader].restart();
    for m in &c.members {
        let o = m.etcdctl(&["get", "load/", "--prefix", "--keys-only"]);
        let keys: std::collections::HashSet<String> = out(&o)
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        for k in &acked {
            assert!(keys.contains(k), "member {} lost acknowledged {k}", m.name);
        }
    }
    eprintln!(
        "failover took {failover:?}; {} writes acknowledged",
        acked.len()
    );
}

/// A write a follower passed on to its leader, when the leader dies before answering, fails
/// with etcd's message and code (the write may or may not have committed, so nothing retries
/// it): the same steps on real etcd and on retcd.
#[test]
fn a_forwarded_write_whose_leader_dies_fails_as_etcds_does() {
    for flavor in [Flavor::RealEtcd, Flavor::Retcd] {
        let mut c = Cluster::start(flavor, 3);
        let leader = c.wait_leader(Duration::from_secs(10));
        let follower = c.members[(leader + 1) % 3].endpoint();
        // A write through the follower first: its connection to the leader is up.
        assert!(etcdctl(&follower, &["put", "warm", "x"], None)
            .status
            .success());
        // The write reaches the leader's socket but no answer comes back.
        c.members[leader].pause(true);
        let put = std::thread::spawn(move || {
            etcdctl(
                &follower,
                &["put", "forwarded", "v", "--command-timeout=20s"],
                None,
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        c.members[leader].kill9();
        let o = put.join().unwrap();
        assert!(!o.status.success(), "{flavor:?}: {}", out(&o));
        assert_eq!(out(&o), "", "{flavor:?}");
        // etcd names the leader's failure when a new leader was elected within two election
        // timeouts after the request came, else it says only that the request timed out;
        // retcd sees the connection to the leader go while it waits, so always the former.
        let leader_fail =
            "Error: etcdserver: request timed out, possibly due to previous leader failure\n";
        let msg = err_lines(&o);
        match flavor {
            Flavor::RealEtcd => assert!(
                msg == leader_fail || msg == "Error: etcdserver: request timed out\n",
                "{msg}"
            ),
            Flavor::Retcd => assert_eq!(msg, leader_fail),
        }
    }
}

#[test]
fn a_lagging_member_catches_up_through_a_snapshot() {
    let mut c = Cluster::start_with(
        Flavor::Retcd,
        3,
        &[
            "--snapshot-count",
            "20",
            "--experimental-snapshot-catchup-entries",
            "5",
        ],
    );
    let leader = c.wait_leader(Duration::from_secs(10));
    let lagging = (leader + 1) % 3;
    c.members[lagging].kill9();
    let ep = c.members[leader].endpoint();
    for i in 0..120 {
        let o = etcdctl(&ep, &["put", &format!("s{i:03}"), &format!("v{i}")], None);
        assert!(o.status.success(), "{}", err_lines(&o));
    }
    assert!(etcdctl(&ep, &["del", "s000"], None).status.success());
    c.members[lagging].restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o =
            c.members[lagging].etcdctl(&["get", "s", "--prefix", "--consistency=s", "-w", "json"]);
        if out(&o).contains("\"count\":119") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lagging member did not catch up: {}",
            c.members[lagging].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        c.members[lagging]
            .log()
            .contains("installed snapshot from the leader"),
        "expected a snapshot install: {}",
        c.members[lagging].log()
    );
    let o = c.members[lagging].etcdctl(&["get", "s119", "--consistency=s", "-w", "json"]);
    assert!(out(&o).contains("\"mod_revision\":121"), "{}", out(&o));
    // History came along too.
    let o = c.members[lagging].etcdctl(&[
        "get",
        "s000",
        "--rev=2",
        "--print-value-only",
        "--consistency=s",
    ]);
    assert_eq!(out(&o), "v0\n");
}

#[test]
fn quorum_loss_fails_writes_in_time_and_recovers() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    assert!(c.members[0]
        .etcdctl(&["put", "before", "loss"])
        .status
        .success());
    c.members[1].kill9();
    c.members[2].kill9();
    let started = Instant::now();
    let o = c.members[0].etcdctl(&["put", "during", "loss", "--command-timeout=3s"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err_lines(&o), "Error: context deadline exceeded\n");
    assert!(started.elapsed() < Duration::from_secs(10));
    let o = c.members[0].etcdctl(&["get", "before", "--consistency=s"]);
    assert_eq!(out(&o), "before\nloss\n");
    let (code, body) = http_get(c.members[0].client_port, "/health").unwrap();
    assert_eq!(code, 503);
    assert!(body.starts_with("{\"health\":\"false\""), "{body}");
    c.members[1].restart();
    let o = c.members[0].etcdctl(&["put", "after", "recovery"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
}

fn member_id_of(m: &Member) -> u64 {
    json_u64(
        &out(&m.etcdctl(&["endpoint", "status", "-w", "json"])),
        "member_id",
    )
    .unwrap()
}

/// A leadership transfer to a member that cannot take over (stopped) fails as etcd's does:
/// the leader keeps leading (nobody else takes over meanwhile), and the client is told the
/// transfer took too long. etcd 3.4 answers that (with code Unknown: it has no gRPC error for
/// it) only when the client's deadline is reached, so etcdctl may give up at its own deadline
/// first; retcd gives up when the target does not take the campaign request (2 s), before
/// etcdctl's 5 s.
#[test]
fn move_leader_to_a_stopped_member_fails_as_etcds_does() {
    const TOOK_TOO_LONG: &str =
        "Error: rpc error: code = Unknown desc = etcdserver: request timed out, leader transfer took too long\n";
    for flavor in [Flavor::RealEtcd, Flavor::Retcd] {
        let mut c = Cluster::start(flavor, 3);
        let leader = c.wait_leader(Duration::from_secs(10));
        let target = (leader + 1) % 3;
        let tid = member_id_of(&c.members[target]);
        c.members[target].pause(true);
        let o = c.members[leader].etcdctl(&["move-leader", &format!("{tid:x}")]);
        c.members[target].kill9();
        assert_eq!(o.status.code(), Some(1), "{flavor:?}: {}", err_lines(&o));
        assert_eq!(out(&o), "", "{flavor:?}");
        let msg = err_lines(&o);
        match flavor {
            Flavor::RealEtcd => assert!(
                msg == TOOK_TOO_LONG || msg == "Error: context deadline exceeded\n",
                "{flavor:?}: {msg}"
            ),
            Flavor::Retcd => assert_eq!(msg, TOOK_TOO_LONG),
        }
        assert_eq!(c.leader(), Some(leader), "{flavor:?}");
        let o = c.members[leader].etcdctl(&["put", "after", "refused transfer"]);
        assert_eq!(out(&o), "OK\n", "{flavor:?}: {}", err_lines(&o));
    }
}

#[test]
fn move_leader_hands_over_to_the_named_member() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let leader = c.wait_leader(Duration::from_secs(10));
    let target = (leader + 1) % 3;
    let (lid, tid) = (
        member_id_of(&c.members[leader]),
        member_id_of(&c.members[target]),
    );
    let o = c.members[leader].etcdctl(&["move-leader", &format!("{tid:x}")]);
    assert_eq!(
        out(&o),
        format!("Leadership transferred from {lid:x} to {tid:x}\n"),
        "{}",
        err_lines(&o)
    );
    assert_eq!(c.leader(), Some(target));
    // Only the leader can hand over: etcdctl refuses a follower endpoint.
    let follower = (target + 1) % 3;
    let o = c.members[follower].etcdctl(&["move-leader", &format!("{lid:x}")]);
    assert_eq!(o.status.code(), Some(128));
    assert_eq!(
        err_lines(&o),
        format!(
            "Error: no leader endpoint given at [{}]\n",
            c.members[follower].endpoint()
        )
    );
    // Writes work right after.
    let o = c.members[follower].etcdctl(&["put", "after", "move"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
}

#[test]
fn sigterm_on_the_leader_hands_leadership_over_first() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let leader = c.wait_leader(Duration::from_secs(10));
    assert!(c.members[leader]
        .etcdctl(&["put", "k", "v"])
        .status
        .success());
    let status = c.members[leader].terminate().expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        c.members[leader]
            .log()
            .contains("handed leadership over before stopping"),
        "{}",
        c.members[leader].log()
    );
    // A new leader is already in place: a write through a survivor succeeds at once.
    let other = (leader + 1) % 3;
    let started = Instant::now();
    let o = c.members[other].etcdctl(&["put", "k", "v2"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_partitioned_leader_stops_acknowledging_and_rejoins_after_heal() {
    let mut c = Cluster::start_partitionable(Flavor::Retcd, 3, &[]);
    let old = c.wait_leader(Duration::from_secs(10));
    assert!(c.members[old]
        .etcdctl(&["put", "before", "1"])
        .status
        .success());
    c.isolate(old);
    // The old leader cannot commit any more.
    let o = c.members[old].etcdctl(&["put", "minority", "x", "--command-timeout=3s"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    // The majority elects a new leader and carries on.
    let other = (old + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = out(&c.members[other].etcdctl(&["endpoint", "status", "-w", "json"]));
        let leader = json_u64(&s, "leader");
        let old_id = json_u64(
            &out(&c.members[old].etcdctl(&["endpoint", "status", "-w", "json"])),
            "member_id",
        );
        if leader.is_some() && leader != Some(0) && leader != old_id {
            break;
        }
        assert!(Instant::now() < deadline, "majority elected no new leader");
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..20 {
        let o = c.members[other].etcdctl(&["put", &format!("majority/{i}"), "y"]);
        assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    }
    c.heal();
    // The old leader rejoins and converges: it has the majority's writes, and the write it
    // could not commit is gone everywhere.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = c.members[old].etcdctl(&[
            "get",
            "majority/",
            "--prefix",
            "--keys-only",
            "--consistency=s",
        ]);
        if out(&o).lines().filter(|l| !l.is_empty()).count() == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old leader did not converge: {}",
            c.members[old].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for m in &c.members {
        assert_eq!(out(&m.etcdctl(&["get", "minority"])), "", "on {}", m.name);
    }
    let o = c.members[old].etcdctl(&["put", "after", "heal"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    let revs: Vec<String> = c
        .members
        .iter()
        .map(|m| {
            let s = out(&m.etcdctl(&["get", "after", "-w", "json"]));
            format!("{:?}", json_u64(&s, "mod_revision"))
        })
        .collect();
    assert!(revs.iter().all(|r| *r == revs[0]), "{revs:?}");
}

#[test]
fn three_members_from_env_files_only() {
    // SCENARIOS §1: each member configured only by ETCD_* variables, two client URLs each.
    let mut members = Cluster::prepare(Flavor::Retcd, 3, &[]);
    let extra: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let ic = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    for (i, m) in members.iter_mut().enumerate() {
        m.use_base_args = false;
        m.env = vec![
            ("ETCD_NAME".into(), m.name.clone()),
            ("ETCD_DATA_DIR".into(), m.data_dir.display().to_string()),
            ("ETCD_LISTEN_PEER_URLS".into(), m.peer_url()),
            (
                "ETCD_LISTEN_CLIENT_URLS".into(),
                format!("{},http://127.0.0.1:{}", m.client_url(), extra[i]),
            ),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS".into(), m.peer_url()),
            ("ETCD_INITIAL_CLUSTER".into(), ic.clone()),
            ("ETCD_INITIAL_CLUSTER_STATE".into(), "new".into()),
            (
                "ETCD_INITIAL_CLUSTER_TOKEN".into(),
                "etcd-cluster-env".into(),
            ),
            ("ETCD_ADVERTISE_CLIENT_URLS".into(), m.client_url()),
            ("ETCD_SNAPSHOT_COUNT".into(), "10000".into()),
            ("ETCD_HEARTBEAT_INTERVAL".into(), "100".into()),
            ("ETCD_ELECTION_TIMEOUT".into(), "1000".into()),
        ];
        m.launch_nowait();
    }
    for m in &mut members {
        m.wait_ready();
    }
    let o = members[0].etcdctl(&["member", "list"]);
    let list = out(&o);
    assert_eq!(list.lines().count(), 3, "{list}");
    for m in &members {
        assert!(
            list.contains(&format!(
                ", started, {}, {}, {}, false",
                m.name,
                m.peer_url(),
                m.client_url()
            )),
            "{list}"
        );
    }
    let o = members[0].etcdctl(&["endpoint", "health", "--cluster"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .matches(" is healthy: successfully committed proposal")
            .count(),
        3
    );
    let o = members[0].etcdctl(&["endpoint", "status", "--cluster", "-w", "json"]);
    assert_eq!(out(&o).matches("\"leader\":").count(), 3);
    // The second client URL serves too.
    let o = etcdctl(
        &format!("127.0.0.1:{}", extra[2]),
        &["put", "via", "4001-style"],
        None,
    );
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
}
