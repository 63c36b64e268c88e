//! Snapshots and disaster recovery (SCENARIOS §5): `snapshot save` from a live member by our
//! etcdctl and real etcdctl 3.4.23, `snapshot status`, and a quorum-lost cluster rebuilt with
//! `etcdutl snapshot restore` under new member and cluster IDs — from a snapshot, or from a
//! raw copy of a dead member's database with `--skip-hash-check`.

use std::path::Path;
use std::time::Duration;

use retcd_tests::*;

fn save(bin: &Path, ep: &str, file: &Path) -> std::process::Output {
    run_ctl(
        bin,
        ep,
        &["snapshot", "save", &file.display().to_string()],
        None,
    )
}

#[test]
fn snapshot_save_by_either_etcdctl_gives_the_same_file_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    put_keys(&ep, "k", 30);
    etcdctl(&ep, &["del", "k000"], None);
    let ours = tmp.path().join("ours.db");
    let real = tmp.path().join("real.db");
    let o = save(&our_etcdctl(), &ep, &ours);
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), format!("Snapshot saved at {}\n", ours.display())),
        "{}",
        err_lines(&o)
    );
    let r = save(&real_etcdctl(), &ep, &real);
    assert_eq!(
        (r.status.code(), out(&r)),
        (Some(0), format!("Snapshot saved at {}\n", real.display()))
    );
    let a = std::fs::read(&ours).unwrap();
    assert_eq!(a, std::fs::read(&real).unwrap(), "same member, same state");
    assert_eq!(a.len() % 512, 32, "etcd's hashed-snapshot rule");
    assert!(!tmp.path().join("ours.db.part").exists());
    // 30 keys + 1 delete = revision 32; 31 KV records plus metadata.
    let st = out(&run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "status",
            &ours.display().to_string(),
            "-w",
            "json",
        ],
    ));
    assert_eq!(json_u64(&st, "revision"), Some(32), "{st}");
    assert_eq!(json_u64(&st, "totalSize"), Some(a.len() as u64), "{st}");
    let table = out(&run_tool(
        &our_etcdctl(),
        &[
            "snapshot",
            "status",
            &ours.display().to_string(),
            "-w",
            "table",
        ],
    ));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].starts_with("| ")
            && lines[1].ends_with("HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |"),
        "{table}"
    );
    assert!(lines[3].contains("|       32 |"), "{table}");
    // More than one endpoint: refused, as etcdctl does.
    let two = format!("{ep},{ep}");
    let o = run_ctl(
        &our_etcdctl(),
        &two,
        &["snapshot", "save", &ours.display().to_string()],
        None,
    );
    let r = run_ctl(
        &real_etcdctl(),
        &two,
        &["snapshot", "save", &real.display().to_string()],
        None,
    );
    assert_eq!(
        (o.status.code(), err_lines(&o)),
        (r.status.code(), err_lines(&r))
    );
}

#[test]
fn our_etcdctl_saves_real_etcds_snapshot_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::RealEtcd);
    let ep = m.endpoint();
    put_keys(&ep, "r", 20);
    let ours = tmp.path().join("ours.db");
    let real = tmp.path().join("real.db");
    let o = save(&our_etcdctl(), &ep, &ours);
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    assert_eq!(
        out(&o),
        out(&save(&real_etcdctl(), &ep, &real)).replace("real.db", "ours.db")
    );
    assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&real).unwrap());
}

fn restore(source: &Path, m: &Member, ic: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "snapshot".to_string(),
        "restore".into(),
        source.display().to_string(),
        "--name".into(),
        m.name.clone(),
        "--initial-cluster".into(),
        ic.into(),
        "--initial-cluster-token".into(),
        "restored".into(),
        "--initial-advertise-peer-urls".into(),
        m.peer_url(),
        "--data-dir".into(),
        m.data_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool(&our_etcdutl(), &a)
}

fn ids(ep: &str) -> (u64, u64) {
    let s = out(&etcdctl(ep, &["endpoint", "status", "-w", "json"], None));
    (
        json_u64(&s, "cluster_id").expect("cluster_id"),
        json_u64(&s, "member_id").expect("member_id"),
    )
}

/// Restores `source` into three fresh members and starts them as a new cluster.
fn rebuild(source: &Path, extra: &[&str]) -> Cluster {
    let members = Cluster::prepare(Flavor::Retcd, 3, &[]);
    let ic = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    for m in &members {
        let o = restore(source, m, &ic, extra);
        assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
        assert_eq!(out(&o), "");
    }
    Cluster::launch(members)
}

#[test]
fn a_quorum_lost_cluster_is_rebuilt_from_a_snapshot_with_new_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let mut old = Cluster::start(Flavor::Retcd, 3);
    let ep = old.members[0].endpoint();
    put_keys(&ep, "dr/", 50);
    let lease = out(&etcdctl(&ep, &["lease", "grant", "3600"], None));
    let lease_id = lease.split_whitespace().nth(1).unwrap().to_string();
    etcdctl(&ep, &["put", "leased", "x", "--lease", &lease_id], None);
    // Saved by real etcdctl 3.4.23: it accepts retcd's snapshot stream.
    let file = tmp.path().join("snap.db");
    let o = save(&real_etcdctl(), &ep, &file);
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    let before = out(&etcdctl(&ep, &["get", "", "--prefix", "-w", "json"], None));
    let rev = json_u64(&before, "revision").unwrap();
    let (old_cluster, _) = ids(&ep);
    let old_members: Vec<u64> = (0..3).map(|i| ids(&old.members[i].endpoint()).1).collect();
    // Quorum lost: two of three members die; writes fail.
    old.members[1].kill9();
    old.members[2].kill9();
    let w = etcdctl(&ep, &["put", "x", "y", "--command-timeout=3s"], None);
    assert!(!w.status.success());

    let new = rebuild(&file, &[]);
    let nep = new.members[1].endpoint();
    // Every key with its revisions, the lease and its key: as they were.
    let after = out(&etcdctl(&nep, &["get", "", "--prefix", "-w", "json"], None));
    assert_eq!(
        mask_json_fields(&after, &["cluster_id", "member_id", "raft_term"]),
        mask_json_fields(&before, &["cluster_id", "member_id", "raft_term"])
    );
    assert_eq!(json_u64(&after, "revision"), Some(rev));
    let ttl = out(&etcdctl(
        &nep,
        &["lease", "timetolive", &lease_id, "--keys"],
        None,
    ));
    assert!(ttl.contains("attached keys([leased])"), "{ttl}");
    // New identities: never the old cluster's.
    let (new_cluster, _) = ids(&nep);
    assert_ne!(new_cluster, old_cluster);
    for m in &new.members {
        let (c, id) = ids(&m.endpoint());
        assert_eq!(c, new_cluster);
        assert!(!old_members.contains(&id));
    }
    // The restored cluster takes writes; revisions continue from the snapshot's.
    let p = out(&etcdctl(&nep, &["put", "after", "1", "-w", "json"], None));
    assert_eq!(json_u64(&p, "revision"), Some(rev + 1));
    // Every member has the same data.
    for m in &new.members {
        let g = out(&etcdctl(
            &m.endpoint(),
            &["get", "after", "--consistency=s", "--print-value-only"],
            None,
        ));
        let g = if g.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
            out(&etcdctl(
                &m.endpoint(),
                &["get", "after", "--consistency=s", "--print-value-only"],
                None,
            ))
        } else {
            g
        };
        assert_eq!(g, "1\n");
    }
}

#[test]
fn a_raw_database_copy_restores_only_with_skip_hash_check() {
    let tmp = tempfile::tempdir().unwrap();
    let mut old = Cluster::start(Flavor::Retcd, 3);
    let ep = old.members[0].endpoint();
    put_keys(&ep, "raw/", 25);
    let before = out(&etcdctl(
        &ep,
        &["get", "raw/", "--prefix", "-w", "json"],
        None,
    ));
    // The member dies; only a copy of its database is left.
    old.members[2].kill9();
    let copy = tmp.path().join("db-copy");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(old.members[2].data_dir.join("member").join("db"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let probe = Cluster::prepare(Flavor::Retcd, 1, &[]);
    let ic = format!("{}={}", probe[0].name, probe[0].peer_url());
    let o = restore(&copy, &probe[0], &ic, &[]);
    assert_eq!(
        (o.status.code(), err_lines(&o)),
        (
            Some(1),
            format!(
                "Error: {} is a raw database copy without an integrity hash; pass --skip-hash-check to restore from it\n",
                copy.display()
            )
        )
    );
    assert!(!probe[0].data_dir.exists(), "nothing created on refusal");
    let new = rebuild(&copy, &["--skip-hash-check"]);
    let after = out(&etcdctl(
        &new.members[0].endpoint(),
        &["get", "raw/", "--prefix", "-w", "json"],
        None,
    ));
    assert_eq!(
        mask_json_fields(
            &after,
            &["cluster_id", "member_id", "raft_term", "revision"]
        ),
        mask_json_fields(
            &before,
            &["cluster_id", "member_id", "raft_term", "revision"]
        )
    );
}

#[test]
fn damaged_or_foreign_snapshots_are_refused_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::Retcd);
    put_keys(&m.endpoint(), "d", 5);
    let file = tmp.path().join("s.db");
    assert!(save(&our_etcdctl(), &m.endpoint(), &file).status.success());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    let bad = tmp.path().join("bad.db");
    std::fs::write(&bad, &bytes).unwrap();
    let target = Cluster::prepare(Flavor::Retcd, 1, &[]);
    let ic = format!("{}={}", target[0].name, target[0].peer_url());
    let o = restore(&bad, &target[0], &ic, &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = err_lines(&o);
    assert!(e.starts_with("Error: expected sha256 "), "{e}");
    assert!(!target[0].data_dir.exists());
    // A truncated file has no hash at all.
    let short = tmp.path().join("short.db");
    std::fs::write(&short, &bytes[..200]).unwrap();
    let o = restore(&short, &target[0], &ic, &[]);
    assert_eq!(
        err_lines(&o),
        "Error: snapshot missing hash but --skip-hash-check=false\n"
    );
    // A name missing from --initial-cluster: etcd's refusal.
    let o = restore(&file, &target[0], "other=http://127.0.0.1:1", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err_lines(&o).contains("couldn't find local name \"m1\""),
        "{}",
        err_lines(&o)
    );
    assert!(!target[0].data_dir.exists());
    // A data dir in use is never overwritten.
    std::fs::create_dir_all(&target[0].data_dir).unwrap();
    std::fs::write(target[0].data_dir.join("keep"), b"x").unwrap();
    let o = restore(&file, &target[0], &ic, &[]);
    assert_eq!(
        err_lines(&o),
        format!(
            "Error: data-dir {:?} not empty or could not be read\n",
            target[0].data_dir.display().to_string()
        )
    );
    assert_eq!(
        std::fs::read(target[0].data_dir.join("keep")).unwrap(),
        b"x"
    );
}

#[test]
fn a_snapshot_taken_under_writes_is_one_consistent_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (ep, stop) = (ep.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                etcdctl(&ep, &["put", &format!("w/{i:05}"), "x"], None);
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    let file = tmp.path().join("busy.db");
    let o = save(&our_etcdctl(), &ep, &file);
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    let st = out(&run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "status",
            &file.display().to_string(),
            "-w",
            "json",
        ],
    ));
    let rev = json_u64(&st, "revision").expect("revision");
    // What the live member held at that revision is exactly what the restore holds.
    let at_rev = out(&etcdctl(
        &ep,
        &[
            "get",
            "w/",
            "--prefix",
            "--keys-only",
            &format!("--rev={rev}"),
        ],
        None,
    ));
    let new = rebuild(&file, &[]);
    let restored = out(&etcdctl(
        &new.members[0].endpoint(),
        &["get", "w/", "--prefix", "--keys-only"],
        None,
    ));
    assert!(!restored.is_empty());
    assert_eq!(restored, at_rev);
}

#[test]
fn a_quorum_lost_cluster_is_rebuilt_from_its_survivor_with_force_new_cluster() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    put_keys(&ep, "fnc/", 20);
    let before = out(&etcdctl(
        &ep,
        &["get", "fnc/", "--prefix", "-w", "json"],
        None,
    ));
    let (cluster, me) = ids(&ep);
    // Two members are lost for good; the survivor alone cannot take writes.
    c.members[1].kill9();
    c.members[2].kill9();
    c.members[0].terminate();
    c.members[0].extra_args.push("--force-new-cluster".into());
    c.members[0].launch();
    // Same data, same member and cluster IDs, a cluster of one that takes writes.
    let after = out(&etcdctl(
        &ep,
        &["get", "fnc/", "--prefix", "-w", "json"],
        None,
    ));
    assert_eq!(
        mask_json_fields(&after, &["raft_term"]),
        mask_json_fields(&before, &["raft_term"])
    );
    assert_eq!(ids(&ep), (cluster, me));
    let list = out(&etcdctl(&ep, &["member", "list"], None));
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(
        list.starts_with(&format!("{me:x}, started, m1, ")),
        "{list}"
    );
    let o = etcdctl(&ep, &["put", "after", "1"], None);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    // Restarting it again (flag removed) keeps the new cluster.
    c.members[0]
        .extra_args
        .retain(|a| a != "--force-new-cluster");
    c.members[0].restart();
    assert_eq!(
        out(&etcdctl(&ep, &["get", "after", "--print-value-only"], None)),
        "1\n"
    );
    // Members are added back with empty data dirs and catch up.
    let mut m2 = Member::new(Flavor::Retcd);
    m2.name = "m2".into();
    // Right after a restart the member refuses changes until it has been up a moment
    // ("unhealthy cluster", as etcd does): retry as an operator would.
    let url = format!("--peer-urls={}", m2.peer_url());
    let mut last = String::new();
    let mut added = false;
    for _ in 0..40 {
        let o = etcdctl(&ep, &["member", "add", "m2", &url], None);
        if o.status.success() {
            added = true;
            break;
        }
        last.push_str(&err_lines(&o));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(added, "member add never succeeded: {last}");
    m2.initial_cluster = format!("m1={},m2={}", c.members[0].peer_url(), m2.peer_url());
    m2.env = vec![("ETCD_INITIAL_CLUSTER_STATE".into(), "existing".into())];
    m2.launch();
    // It joined as a learner and becomes a voter once started: then it takes writes.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let o = etcdctl(&m2.endpoint(), &["put", "via-m2", "x"], None);
        if out(&o) == "OK\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", err_lines(&o));
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = out(&etcdctl(
        &m2.endpoint(),
        &["get", "fnc/", "--prefix", "--keys-only"],
        None,
    ));
    assert_eq!(got.lines().filter(|l| !l.is_empty()).count(), 20);
    let list = out(&etcdctl(&ep, &["member", "list"], None));
    assert!(
        list.lines().count() == 2 && list.lines().all(|l| l.ends_with(", false")),
        "{list}"
    );
}

#[test]
fn restore_cluster_writes_every_member_and_offline_hashkv_matches_online() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    put_keys(&ep, "rc/", 15);
    let file = tmp.path().join("s.db");
    assert!(save(&our_etcdctl(), &ep, &file).status.success());
    let online = out(&etcdctl(&ep, &["endpoint", "hashkv", "--rev=10"], None));
    let online_hash = online.trim().rsplit(", ").next().unwrap().to_string();

    let mut members = Cluster::prepare(Flavor::Retcd, 3, &[]);
    let ic = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let outdir = tmp.path().join("out");
    let o = run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "restore-cluster",
            &file.display().to_string(),
            "--initial-cluster",
            &ic,
            "--initial-cluster-token",
            "rebuilt",
            "--output-dir",
            &outdir.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    assert!(out(&o).starts_with(&format!("Restored 3 members from {}", file.display())));
    for m in &mut members {
        let conf = std::fs::read_to_string(outdir.join(format!("{}.conf", m.name))).unwrap();
        assert!(
            conf.contains(&format!("ETCD_NAME=\"{}\"", m.name)),
            "{conf}"
        );
        assert!(
            conf.contains("ETCD_INITIAL_CLUSTER_TOKEN=\"rebuilt\""),
            "{conf}"
        );
        let restored = outdir.join(format!("{}.etcd", m.name));
        // Offline hash of a restored member: the same history as the source.
        let h = run_tool(
            &our_etcdutl(),
            &["hashkv", &restored.display().to_string(), "--rev=10"],
        );
        assert_eq!(
            out(&h).split(", ").next(),
            Some(online_hash.as_str()),
            "{}",
            err_lines(&h)
        );
        std::fs::rename(&restored, &m.data_dir).unwrap();
    }
    let c = Cluster::launch(members);
    let keys = out(&etcdctl(
        &c.members[2].endpoint(),
        &["get", "rc/", "--prefix", "--keys-only"],
        None,
    ));
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 15);
}
