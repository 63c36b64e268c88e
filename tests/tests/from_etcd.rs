//! Moving from etcd: this member refuses to run on a data dir a real etcd member left behind
//! (bootstrapping beside it would show clients an empty cluster) and leaves it as it was; the
//! ways over work: `etcdutl snapshot restore` of an etcd snapshot or of the member's database
//! (revisions, history, leases, users and roles come along, and read back as etcd serves
//! them), and `etcdctl make-mirror` from a running etcd cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use retcd_tests::*;

/// Every file under `dir` with its contents.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn an_etcd_data_dir_is_refused_untouched_and_make_mirror_moves_the_keys() {
    let mut m = Member::new(Flavor::RealEtcd);
    m.launch();
    for i in 0..10 {
        let o = m.etcdctl(&["put", &format!("/app/k{i}"), &format!("v{i}")]);
        assert!(o.status.success(), "{}", err_lines(&o));
    }
    let want = out(&m.etcdctl(&["get", "/app", "--prefix"]));
    assert!(m.terminate().is_some(), "etcd did not stop");
    let before = files(&m.data_dir);
    assert!(before.contains_key("member/snap/db"), "{:?}", before.keys());

    // The same member, same flags, our binary.
    m.flavor = Flavor::Retcd;
    m.launch_nowait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!m.is_running(), "started on an etcd data dir: {}", m.log());
    let dd = m.data_dir.display().to_string();
    let msg = format!(
        "etcd: data dir {dd} holds an etcd member's data ({dd}/member/snap/db, {dd}/member/wal), \
         which this etcd does not run on; nothing was changed. Start this member with an empty \
         --data-dir: restore its database into a new data dir with 'etcdutl snapshot restore \
         {dd}/member/snap/db --skip-hash-check' and this member's cluster flags, or copy the \
         keys from the old cluster with 'etcdctl make-mirror' (docs/migrating-from-etcd.md)\n"
    );
    assert!(m.log().ends_with(&msg), "{}", m.log());
    assert_eq!(files(&m.data_dir), before, "the etcd data dir was changed");

    // etcd still starts on it with every key, and the keys move over by make-mirror.
    m.flavor = Flavor::RealEtcd;
    m.launch();
    assert_eq!(out(&m.etcdctl(&["get", "/app", "--prefix"])), want);
    let ours = Member::start(Flavor::Retcd);
    let _mirror = Running::start(
        &our_etcdctl(),
        &m.endpoint(),
        &["make-mirror", &ours.endpoint()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while out(&ours.etcdctl(&["get", "/app", "--prefix"])) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(out(&ours.etcdctl(&["get", "/app", "--prefix"])), want);
}

/// Output lines that name the member, cluster or raft term (they differ between the two).
fn without_ids(o: &std::process::Output) -> String {
    out(o)
        .lines()
        .filter(|l| {
            !["\"ClusterID\"", "\"MemberID\"", "\"RaftTerm\""]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `lease timetolive` with the remaining seconds masked (they tick on each side).
fn mask_remaining(s: &str) -> String {
    match (s.find("remaining("), s.find("s), attached")) {
        (Some(a), Some(b)) if a < b => format!("{}remaining(N{}", &s[..a], &s[b..]),
        _ => s.to_string(),
    }
}

/// What a client sees of a member holding the data the steps below left: every key with its
/// revisions, history and a compacted revision, the lease and its key, users, roles and their
/// permissions at work, the KV hash.
fn view(ep: &str, lease: &str) -> Vec<String> {
    let root = ["--user", "root:rootpw"];
    let ctl = |args: &[&str], auth: bool| {
        let mut a: Vec<&str> = if auth { root.to_vec() } else { vec![] };
        a.extend_from_slice(args);
        let o = etcdctl(ep, &a, None);
        format!(
            "{:?}\n{}{}",
            o.status.code(),
            without_ids(&o),
            err_lines(&o)
        )
    };
    let hashkv = etcdctl(ep, &["--user", "root:rootpw", "endpoint", "hashkv"], None);
    vec![
        ctl(&["get", "", "--prefix", "-w", "fields"], true),
        ctl(&["get", "", "--prefix"], false),
        ctl(&["get", "k1", "--rev=4", "-w", "fields"], true),
        ctl(&["get", "k1", "--rev=2"], true),
        ctl(&["lease", "list"], true),
        mask_remaining(&ctl(&["lease", "timetolive", lease, "--keys"], true)),
        ctl(&["user", "list"], true),
        ctl(&["role", "list"], true),
        ctl(&["role", "get", "reader"], true),
        ctl(&["user", "get", "alice"], true),
        ctl(&["user", "get", "root"], true),
        ctl(&["--user", "alice:apw", "get", "/a"], false),
        ctl(&["--user", "alice:apw", "put", "/a", "no"], false),
        ctl(&["--user", "alice:wrong", "get", "/a"], false),
        out(&hashkv).split(", ").nth(1).unwrap_or("").to_string(),
    ]
}

#[test]
fn etcd_snapshots_and_databases_restore_with_revisions_leases_users_and_roles() {
    let mut etcd = Member::new(Flavor::RealEtcd);
    etcd.launch();
    let ep = etcd.endpoint();
    let ctl = |args: &[&str]| {
        let o = etcdctl(&ep, args, None);
        assert!(o.status.success(), "{args:?}: {}", err_lines(&o));
        out(&o)
    };
    for i in 1..=3 {
        ctl(&["put", &format!("k{i}"), &format!("v{i}")]);
    }
    ctl(&["put", "k1", "v1b"]);
    ctl(&["del", "k2"]);
    ctl(&["compaction", "3"]);
    let lease = ctl(&["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    ctl(&["put", "lk", "lv", "--lease", &lease]);
    ctl(&["put", "/a", "A"]);
    ctl(&["user", "add", "root:rootpw"]);
    ctl(&["user", "add", "alice:apw"]);
    ctl(&["role", "add", "reader"]);
    ctl(&["role", "grant-permission", "reader", "read", "/a", "/b"]);
    ctl(&[
        "role",
        "grant-permission",
        "--prefix",
        "reader",
        "readwrite",
        "/p/",
    ]);
    ctl(&["user", "grant-role", "alice", "reader"]);
    ctl(&["auth", "enable"]);
    ctl(&["--user", "alice:apw", "put", "/p/x", "by alice"]);
    let snap = etcd.cwd.join("etcd-snapshot.db");
    let snap_s = snap.display().to_string();
    ctl(&["--user", "root:rootpw", "snapshot", "save", &snap_s]);

    // snapshot status: what etcdctl 3.4.23 prints for its own snapshot, in every format.
    for w in ["simple", "table", "json", "fields"] {
        let args = ["snapshot", "status", &snap_s, "-w", w];
        let real = run_tool(&real_etcdctl(), &args);
        assert!(real.status.success(), "{}", err_lines(&real));
        for tool in [our_etcdctl(), our_etcdutl()] {
            let o = run_tool(&tool, &args);
            assert_eq!(out(&o), out(&real), "{tool:?} {w}: {}", err_lines(&o));
        }
    }

    // A damaged copy is refused and leaves nothing behind.
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let damaged = etcd.cwd.join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    let bad_dir = etcd.cwd.join("from-damaged");
    let o = run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "restore",
            &damaged.display().to_string(),
            "--data-dir",
            &bad_dir.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Error: expected sha256 "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!bad_dir.exists());

    let want = view(&ep, &lease);
    assert!(want[0].contains("\"Key\" : \"lk\"\n"), "{}", want[0]);

    // A retcd member restored from the snapshot serves what etcd serves.
    let restore_into = |source: &str, extra: &[&str]| -> Member {
        let mut m = Member::new(Flavor::Retcd);
        let dd = m.data_dir.display().to_string();
        let ic = format!("{}={}", m.name, m.peer_url());
        let mut args = vec![
            "snapshot",
            "restore",
            source,
            "--name",
            &m.name,
            "--data-dir",
            &dd,
            "--initial-cluster",
            &ic,
            "--initial-advertise-peer-urls",
            &ic[m.name.len() + 1..],
        ];
        args.extend_from_slice(extra);
        let o = run_tool(&our_etcdutl(), &args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        m.launch();
        m
    };
    let ours = restore_into(&snap_s, &[]);
    assert_eq!(view(&ours.endpoint(), &lease), want);
    drop(ours);

    // etcd's own database, copied out of a stopped member: a raw copy needs --skip-hash-check,
    // as with etcd; the file and the whole data dir both restore.
    assert!(etcd.terminate().is_some(), "etcd did not stop");
    let db = etcd.data_dir.join("member/snap/db").display().to_string();
    let o = run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "restore",
            &db,
            "--data-dir",
            &bad_dir.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error: snapshot missing hash but --skip-hash-check=false\n"
    );
    assert!(!bad_dir.exists());
    // Damage anywhere in a database is answered with an error (or, where bbolt's structure
    // survives, with what it holds), never a crash or a hang.
    let raw = std::fs::read(&db).unwrap();
    for at in (0..raw.len()).step_by(4096).flat_map(|p| {
        [
            0, 8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 100, 2000, 4000,
        ]
        .map(|o| p + o)
    }) {
        let mut bytes = raw.clone();
        bytes[at] ^= 0x5a;
        let file = etcd.cwd.join("damaged-db");
        std::fs::write(&file, &bytes).unwrap();
        // status reads every bucket and converts every record as a restore does.
        let (o, _) = run_measured(
            std::process::Command::new(our_etcdutl())
                .args(["snapshot", "status"])
                .arg(&file),
            Duration::from_secs(20),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || (o.status.code() == Some(1) && err.starts_with("Error: ")),
            "byte {at} damaged: {:?} {err}",
            o.status
        );
    }

    let dd = etcd.data_dir.display().to_string();
    for source in [&db, &dd] {
        let ours = restore_into(source, &["--skip-hash-check"]);
        assert_eq!(view(&ours.endpoint(), &lease), want, "{source}");
    }
}

/// A snapshot of a bigger etcd database (B+tree branch pages, a value on overflow pages, 20 000
/// revisions of 8000 keys) restores whole: the same keys, values and revisions, the same
/// HashKV, and the status etcd's etcdctl prints.
#[test]
fn a_large_etcd_snapshot_restores_whole() {
    let etcd = Member::start(Flavor::RealEtcd);
    let ep = etcd.endpoint();
    let o = run_tool(
        &our_tool("etcd-bench"),
        &[
            "--endpoints",
            &ep,
            "--conns",
            "10",
            "--clients",
            "50",
            "put",
            "--total",
            "20000",
            "--key-space-size",
            "8000",
            "--sequential-keys",
            "--val-size",
            "300",
        ],
    );
    assert!(o.status.success(), "{}", err_lines(&o));
    let big: Vec<u8> = (0..150_000u32)
        .map(|i| b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26)
        .collect();
    let o = etcdctl(&ep, &["put", "big"], Some(&big));
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    let snap = etcd.cwd.join("big.db").display().to_string();
    let o = etcdctl(&ep, &["snapshot", "save", &snap], None);
    assert!(o.status.success(), "{}", err_lines(&o));
    let args = ["snapshot", "status", &snap, "-w", "json"];
    let status = out(&run_tool(&real_etcdctl(), &args));
    assert_eq!(json_u64(&status, "revision"), Some(20_002), "{status}");
    assert_eq!(out(&run_tool(&our_etcdutl(), &args)), status);

    let mut ours = Member::new(Flavor::Retcd);
    let dd = ours.data_dir.display().to_string();
    let ic = format!("{}={}", ours.name, ours.peer_url());
    let o = run_tool(
        &our_etcdutl(),
        &[
            "snapshot",
            "restore",
            &snap,
            "--name",
            &ours.name.clone(),
            "--data-dir",
            &dd,
            "--initial-cluster",
            &ic,
            "--initial-advertise-peer-urls",
            &ours.peer_url(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ours.launch();
    let kvs = |ep: &str| {
        let s = out(&etcdctl(ep, &["get", "", "--prefix", "-w", "json"], None));
        s[s.find("\"kvs\"").unwrap_or(0)..].to_string()
    };
    let want = kvs(&ep);
    assert!(
        want.ends_with(",\"count\":8001}\n"),
        "{}",
        &want[want.len() - 40..]
    );
    assert_eq!(kvs(&ours.endpoint()), want);
    let hash = |ep: &str| {
        let o = etcdctl(ep, &["endpoint", "hashkv", "-w", "json"], None);
        json_u64(&out(&o), "hash")
    };
    assert!(hash(&ep).is_some());
    assert_eq!(hash(&ours.endpoint()), hash(&ep));
}
