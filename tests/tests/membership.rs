//! Membership changes at run time, driven by real etcdctl 3.4.23 (SCENARIOS §2).

use std::time::{Duration, Instant};

use retcd_tests::*;

/// (id, name, peer url, is learner) of every member, from `member list -w json`.
fn members(ep: &str) -> Vec<(u64, String, String, bool)> {
    let o = etcdctl(ep, &["member", "list", "-w", "json"], None);
    let s = out(&o);
    let mut v = Vec::new();
    for part in s.split("{\"ID\":").skip(1) {
        let id: u64 = part
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let name = part
            .split("\"name\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        let url = part
            .split("\"peerURLs\":[\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        v.push((id, name, url, part.contains("\"isLearner\":true")));
    }
    v
}

/// `member add <name> --learner` for `m` (retried while the cluster settles).
fn add_learner(ep: &str, m: &Member) -> std::process::Output {
    let urls = format!("--peer-urls={}", m.peer_url());
    let o = retry_until_ok(
        ep,
        &["member", "add", &m.name, "--learner", &urls],
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", err_lines(&o));
    o
}

fn retry_until_ok(ep: &str, args: &[&str], within: Duration) -> std::process::Output {
    let deadline = Instant::now() + within;
    loop {
        let o = etcdctl(ep, args, None);
        if o.status.success() || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn add_learner_start_existing_promote_update_remove() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    let cluster_hex = {
        let o = c.members[0].etcdctl(&["endpoint", "status", "-w", "json"]);
        format!("{:16x}", json_u64(&out(&o), "cluster_id").unwrap())
    };

    // Add a learner: etcdctl prints the env lines to start it with.
    let mut m4 = Member::new(Flavor::Retcd);
    m4.name = "m4".into();
    let o = add_learner(&ep, &m4);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    let id4 = members(&ep)
        .into_iter()
        .find(|m| m.2 == m4.peer_url())
        .expect("m4 listed")
        .0;
    assert_eq!(
        lines[0],
        format!("Member {id4:16x} added to cluster {cluster_hex}")
    );
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "ETCD_NAME=\"m4\"");
    let initial_cluster = lines[3]
        .strip_prefix("ETCD_INITIAL_CLUSTER=\"")
        .and_then(|l| l.strip_suffix('"'))
        .expect("ETCD_INITIAL_CLUSTER line")
        .to_string();
    for m in &c.members {
        assert!(
            initial_cluster.contains(&format!("{}={}", m.name, m.peer_url())),
            "{initial_cluster}"
        );
    }
    assert!(initial_cluster.contains(&format!("m4={}", m4.peer_url())));
    assert_eq!(
        lines[4],
        format!("ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{}\"", m4.peer_url())
    );
    assert_eq!(lines[5], "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
    assert_eq!(lines.len(), 6);

    // Listed as unstarted.
    let o = c.members[0].etcdctl(&["member", "list"]);
    assert!(
        out(&o).contains(&format!(
            "{id4:x}, unstarted, , {}, , true\n",
            m4.peer_url()
        )),
        "{}",
        out(&o)
    );

    // A second learner is refused.
    let o = c.members[0].etcdctl(&[
        "member",
        "add",
        "m5",
        "--learner",
        "--peer-urls=http://127.0.0.1:1",
    ]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: too many learner members in cluster\n"
    );
    // A peer URL already in use is refused.
    let o = c.members[0].etcdctl(&[
        "member",
        "add",
        "dup",
        &format!("--peer-urls={}", c.members[1].peer_url()),
    ]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: Peer URLs already exists\n"
    );

    // Started with `new` instead of `existing`: refused, no second cluster.
    let mut wrong = Member::new(Flavor::Retcd);
    wrong.name = "m4".into();
    wrong.client_port = m4.client_port;
    wrong.peer_port = m4.peer_port;
    wrong.initial_cluster = initial_cluster.clone();
    wrong.launch_nowait();
    let deadline = Instant::now() + Duration::from_secs(15);
    while wrong.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!wrong.is_running(), "a member started with 'new' must exit");
    assert!(
        wrong.log().contains("member ID mismatch"),
        "{}",
        wrong.log()
    );
    drop(wrong);

    // Start it the right way.
    m4.initial_cluster = initial_cluster;
    m4.env = vec![("ETCD_INITIAL_CLUSTER_STATE".into(), "existing".into())];
    m4.launch();
    let o = m4.etcdctl(&["endpoint", "status", "-w", "json"]);
    assert!(out(&o).contains("\"isLearner\":true"), "{}", out(&o));
    let o = m4.etcdctl(&["put", "viaLearner", "x"]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: rpc not supported for learner\n"
    );
    assert_eq!(o.status.code(), Some(1));
    // Serializable reads are served by a learner.
    assert!(c.members[0]
        .etcdctl(&["put", "seen", "by-learner"])
        .status
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = m4.etcdctl(&["get", "seen", "--consistency=s", "--print-value-only"]);
        if out(&o) == "by-learner\n" {
            break;
        }
        assert!(Instant::now() < deadline, "learner did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Promote once in sync; a second promote is refused.
    let o = retry_until_ok(
        &ep,
        &["member", "promote", &format!("{id4:x}")],
        Duration::from_secs(15),
    );
    assert_eq!(
        out(&o),
        format!("Member {id4:16x} promoted in cluster {cluster_hex}\n"),
        "{}",
        err_lines(&o)
    );
    let o = c.members[0].etcdctl(&["member", "promote", &format!("{id4:x}")]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: can only promote a learner member\n"
    );
    let o = m4.etcdctl(&["put", "viaPromoted", "x"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    let list = members(&ep);
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|m| !m.3));
    assert!(list.iter().any(|m| m.0 == id4 && m.1 == "m4"));

    // Update a follower's peer URLs (a leader given an address it does not listen on would
    // become unreachable for its followers, in etcd as here).
    let leader_id = json_u64(
        &out(&c.members[0].etcdctl(&["endpoint", "status", "-w", "json"])),
        "leader",
    )
    .unwrap();
    let upd = (0..3)
        .find(|i| {
            list.iter()
                .any(|m| m.1 == c.members[*i].name && m.0 != leader_id)
        })
        .unwrap();
    let id2 = list.iter().find(|m| m.1 == c.members[upd].name).unwrap().0;
    // Ask through another member: the updated one is cut off until its URL is put back.
    let via = (0..3).find(|i| *i != upd).unwrap();
    let new_url = format!("http://127.0.0.1:{}", free_port());
    let o = c.members[via].etcdctl(&[
        "member",
        "update",
        &format!("{id2:x}"),
        &format!("--peer-urls={new_url}"),
    ]);
    assert_eq!(
        out(&o),
        format!("Member {id2:16x} updated in cluster {cluster_hex}\n"),
        "{}\n{}",
        err_lines(&o),
        c.members
            .iter()
            .map(|m| format!("--- {}\n{}", m.name, m.log()))
            .collect::<String>()
    );
    assert!(members(&c.members[via].endpoint())
        .iter()
        .any(|m| m.0 == id2 && m.2 == new_url));
    // Put it back so the member stays reachable.
    let o = c.members[via].etcdctl(&[
        "member",
        "update",
        &format!("{id2:x}"),
        &format!("--peer-urls={}", c.members[upd].peer_url()),
    ]);
    assert!(o.status.success(), "{}", err_lines(&o));

    // Remove a member; it exits, and can never come back with its old data.
    let id3 = list.iter().find(|m| m.1 == "m3").unwrap().0;
    let o = retry_until_ok(
        &ep,
        &["member", "remove", &format!("{id3:x}")],
        Duration::from_secs(10),
    );
    assert_eq!(
        out(&o),
        format!("Member {id3:16x} removed from cluster {cluster_hex}\n"),
        "{}",
        err_lines(&o)
    );
    assert_eq!(members(&ep).len(), 3);
    let o = c.members[0].etcdctl(&["member", "remove", &format!("{id3:x}")]);
    assert_eq!(err_lines(&o), "Error: etcdserver: member not found\n");
    c.members[2].kill9();
    c.members[2].launch_nowait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.members[2].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!c.members[2].is_running(), "a removed member must exit");
    assert!(
        c.members[2]
            .log()
            .contains("permanently removed from the cluster"),
        "{}",
        c.members[2].log()
    );
    // The rest carries on.
    let o = m4.etcdctl(&["put", "after-remove", "ok"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
}

#[test]
fn strict_reconfig_check_refuses_losing_quorum() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    c.members[2].kill9();
    let ep = c.members[0].endpoint();
    c.wait_leader(Duration::from_secs(10));
    // Long enough for the dead member to count as disconnected.
    std::thread::sleep(Duration::from_secs(3));
    // 2 of 3 up: removing another healthy voter would leave 1 healthy of 2 voters.
    let list = members(&ep);
    let id2 = list.iter().find(|m| m.1 == "m2").unwrap().0;
    let o = c.members[0].etcdctl(&["member", "remove", &format!("{id2:x}")]);
    assert_eq!(err_lines(&o), "Error: etcdserver: unhealthy cluster\n");
    // Adding a voter (4 voters, quorum 3, 2 healthy) is refused too.
    let o = c.members[0].etcdctl(&["member", "add", "m9", "--peer-urls=http://127.0.0.1:9"]);
    assert_eq!(err_lines(&o), "Error: etcdserver: unhealthy cluster\n");
    // Removing the dead member is fine.
    let id3 = list.iter().find(|m| m.1 == "m3").unwrap().0;
    let o = c.members[0].etcdctl(&["member", "remove", &format!("{id3:x}")]);
    assert!(o.status.success(), "{}", err_lines(&o));
}

#[test]
fn an_added_member_catches_up_through_a_snapshot_then_replaces_another() {
    let c = Cluster::start_with(
        Flavor::Retcd,
        3,
        &[
            "--snapshot-count",
            "10",
            "--experimental-snapshot-catchup-entries",
            "2",
        ],
    );
    let ep = c.members[0].endpoint();
    for i in 0..60 {
        let o = etcdctl(&ep, &["put", &format!("data/{i:02}"), &i.to_string()], None);
        assert!(o.status.success(), "{}", err_lines(&o));
    }
    let mut m4 = Member::new(Flavor::Retcd);
    m4.name = "m4".into();
    m4.extra_args = vec!["--snapshot-count".into(), "10".into()];
    let o = add_learner(&ep, &m4);
    let ic = out(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("ETCD_INITIAL_CLUSTER=\"")
                .and_then(|l| l.strip_suffix('"'))
                .map(String::from)
        })
        .unwrap();
    m4.initial_cluster = ic;
    m4.env = vec![("ETCD_INITIAL_CLUSTER_STATE".into(), "existing".into())];
    m4.launch();
    assert!(
        m4.log().contains("installed snapshot from the leader"),
        "{}",
        m4.log()
    );
    let o = m4.etcdctl(&["get", "data/", "--prefix", "--consistency=s", "--keys-only"]);
    assert_eq!(out(&o).lines().filter(|l| !l.is_empty()).count(), 60);
    let id4 = members(&ep).into_iter().find(|m| m.1 == "m4").unwrap().0;
    let o = retry_until_ok(
        &ep,
        &["member", "promote", &format!("{id4:x}")],
        Duration::from_secs(15),
    );
    assert!(o.status.success(), "{}", err_lines(&o));
    let id2 = members(&ep).into_iter().find(|m| m.1 == "m2").unwrap().0;
    let o = retry_until_ok(
        &ep,
        &["member", "remove", &format!("{id2:x}")],
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", err_lines(&o));
    let names: Vec<String> = members(&ep).into_iter().map(|m| m.1).collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"m4".to_string()) && !names.contains(&"m2".to_string()));
    let o = m4.etcdctl(&["put", "by-m4", "ok"]);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
}
