//! The member process: configuration sources, HTTP endpoints, restart, kill -9 durability,
//! graceful shutdown.

use std::process::Command;

use retcd_tests::*;

#[test]
fn flag_wins_over_env_var_with_a_warning() {
    let m = Member::start_with(
        Flavor::Retcd,
        &[],
        &[("ETCD_NAME", "env-name"), ("ETCD_SNAPSHOT_COUNT", "500")],
    );
    // base_args passes --name m1: the flag wins.
    let o = m.etcdctl(&["member", "list"]);
    let line = out(&o);
    assert!(line.contains(", started, m1, "), "{line}");
    let log = m.log();
    assert!(
        log.contains("flag --name overrides environment variable ETCD_NAME"),
        "{log}"
    );
    // The env var that no flag shadows is used.
    assert!(
        log.contains("\"setting\":\"snapshot-count\",\"value\":\"500\""),
        "{log}"
    );
}

#[test]
fn env_file_only_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Member::new(Flavor::Retcd);
    let (cp, pp) = (m.client_port, m.peer_port);
    let client = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let data = tmp.path().join("env.etcd");
    let env = [
        ("ETCD_NAME", "etcd1".to_string()),
        ("ETCD_DATA_DIR", data.display().to_string()),
        ("ETCD_LISTEN_CLIENT_URLS", client.clone()),
        ("ETCD_ADVERTISE_CLIENT_URLS", client.clone()),
        ("ETCD_LISTEN_PEER_URLS", peer.clone()),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", peer.clone()),
        ("ETCD_INITIAL_CLUSTER", format!("etcd1={peer}")),
        ("ETCD_INITIAL_CLUSTER_STATE", "new".into()),
        ("ETCD_INITIAL_CLUSTER_TOKEN", "env-token".into()),
        ("ETCD_HEARTBEAT_INTERVAL", "100".into()),
        ("ETCD_ELECTION_TIMEOUT", "1000".into()),
    ];
    // No flags at all: only the environment, as an EnvironmentFile gives it.
    m.use_base_args = false;
    m.env = env
        .iter()
        .map(|(a, b)| (a.to_string(), b.clone()))
        .collect();
    m.launch();
    let o = etcdctl(
        &format!("127.0.0.1:{cp}"),
        &["member", "list", "-w", "json"],
        None,
    );
    let s = out(&o);
    assert!(s.contains("\"name\":\"etcd1\""), "{s}");
    assert!(s.contains(&format!("\"peerURLs\":[\"{peer}\"]")), "{s}");
    assert!(data.join("member").join("db").exists());
    drop(m);
}

#[test]
fn config_file_is_used_and_flags_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Member::new(Flavor::Retcd);
    let (cp, pp) = (m.client_port, m.peer_port);
    let yaml = format!(
        "name: yaml1\ndata-dir: {}\nlisten-client-urls: http://127.0.0.1:{cp}\nadvertise-client-urls: http://127.0.0.1:{cp}\nlisten-peer-urls: http://127.0.0.1:{pp}\ninitial-advertise-peer-urls: http://127.0.0.1:{pp}\ninitial-cluster: yaml1=http://127.0.0.1:{pp}\ninitial-cluster-token: yaml-token\n",
        tmp.path().join("y.etcd").display()
    );
    let path = tmp.path().join("etcd.yaml");
    std::fs::write(&path, yaml).unwrap();
    let p = path.display().to_string();
    m.use_base_args = false;
    m.extra_args = vec!["--config-file".into(), p];
    m.env = vec![("ETCD_NAME".into(), "ignored".into())];
    m.launch();
    let o = m.etcdctl(&["member", "list"]);
    assert!(out(&o).contains(", started, yaml1, "), "{}", out(&o));
    assert!(m
        .log()
        .contains("other configuration command line flags and environment variables are ignored"));
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let bin = retcd_bin();
    let o = Command::new(&bin).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("flag provided but not defined: -bogus"), "{e}");

    let o = Command::new(&bin)
        .args([
            "--name",
            "a",
            "--initial-cluster",
            "b=http://127.0.0.1:1",
            "--data-dir",
        ])
        .arg(tempfile::tempdir().unwrap().path())
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .args(["--advertise-client-urls", "http://127.0.0.1:1"])
        .args([
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("couldn't find local name \"a\" in the initial cluster configuration"),
        "{e}"
    );

    let o = Command::new(&bin).args(["--enable-v2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--enable-v2=true is not supported yet"));

    let o = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(v.starts_with("etcd Version: 3.5."), "{v}");
    assert!(v.contains("API Version: 3.5\n"), "{v}");
}

#[test]
fn http_endpoints_on_the_client_port() {
    let m = Member::start(Flavor::Retcd);
    assert_eq!(
        http_get(m.client_port, "/health").unwrap(),
        (200, "{\"health\":\"true\"}".into())
    );
    let (code, v) = http_get(m.client_port, "/version").unwrap();
    assert_eq!(code, 200);
    assert!(
        v.starts_with("{\"etcdcluster\":\"3.5.0\",\"etcdserver\":\"3.5."),
        "{v}"
    );
    assert!(m.etcdctl(&["put", "a", "b"]).status.success());
    let (code, metrics) = http_get(m.client_port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for line in [
        "etcd_server_has_leader 1\n",
        "etcd_server_is_leader 1\n",
        "etcd_debugging_mvcc_keys_total 1\n",
        "etcd_debugging_mvcc_current_revision 2\n",
        "etcd_debugging_mvcc_watcher_total 0\n",
        "etcd_mvcc_put_total 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    // etcdctl with scheme-qualified endpoints (SCENARIOS §1) dials `endpoint status` with
    // the full URL as HTTP/2 :authority; it must work as against etcd.
    let o = etcdctl(&m.client_url(), &["endpoint", "status"], None);
    assert!(
        out(&o).starts_with(&format!("{}, ", m.client_url())),
        "{}{}",
        out(&o),
        err_lines(&o)
    );
    let o = etcdctl(
        &m.client_url(),
        &["endpoint", "status", "--cluster", "-w", "json"],
        None,
    );
    assert!(
        out(&o).contains("\"leader\":"),
        "{}{}",
        out(&o),
        err_lines(&o)
    );
    // The peer port answers /version too, as etcd's does.
    let (code, _) = http_get(m.peer_port, "/version").unwrap();
    assert_eq!(code, 200);
}

#[test]
fn kill9_then_restart_keeps_every_acknowledged_write() {
    let mut m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    // Four concurrent writers; every acknowledged put is recorded.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let ep = ep.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..25 {
                    let k = format!("w{w}/k{i:03}");
                    let o = etcdctl(&ep, &["put", &k, &format!("v{i}")], None);
                    if o.status.success() {
                        acked.push(k);
                    }
                }
                acked
            })
        })
        .collect();
    let acked: Vec<String> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(acked.len(), 100);
    let before = out(&m.etcdctl(&["get", "w", "--prefix", "-w", "json"]));
    m.kill9();
    m.restart();
    let after = out(&m.etcdctl(&["get", "w", "--prefix", "-w", "json"]));
    let strip = |s: &str| mask_json_fields(s, &["raft_term"]);
    assert_eq!(strip(&before), strip(&after));
    let o = m.etcdctl(&["get", "w", "--prefix", "--limit=1", "-w", "fields"]);
    assert!(out(&o).contains("\"Count\" : 100\n"));
    assert!(out(&o).contains("\"Revision\" : 101\n"), "{}", out(&o));
    // And the store keeps counting from there.
    let o = m.etcdctl(&["put", "after", "restart", "-w", "json"]);
    assert!(out(&o).contains("\"revision\":102"), "{}", out(&o));
}

#[test]
fn sigterm_is_a_clean_shutdown_and_restart_keeps_history() {
    let mut m = Member::start(Flavor::Retcd);
    assert!(m.etcdctl(&["put", "h", "1"]).status.success());
    assert!(m.etcdctl(&["put", "h", "2"]).status.success());
    assert!(m.etcdctl(&["del", "h"]).status.success());
    assert!(m.etcdctl(&["put", "h", "3"]).status.success());
    let status = m.terminate().expect("exits within 20s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    m.restart();
    assert_eq!(
        out(&m.etcdctl(&["get", "h", "--rev=2", "--print-value-only"])),
        "1\n"
    );
    assert_eq!(out(&m.etcdctl(&["get", "h", "--rev=4"])), "");
    let o = out(&m.etcdctl(&["get", "h", "-w", "json"]));
    assert!(
        o.contains("\"create_revision\":5,\"mod_revision\":5,\"version\":1"),
        "{o}"
    );
    // Compaction survives a restart too.
    assert!(m.etcdctl(&["compaction", "3"]).status.success());
    m.restart();
    let o = m.etcdctl(&["get", "h", "--rev=2"]);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: mvcc: required revision has been compacted\n"
    );
    assert_eq!(
        out(&m.etcdctl(&["get", "h", "--rev=3", "--print-value-only"])),
        "2\n"
    );
}

#[test]
fn ids_match_real_etcd_for_the_same_settings() {
    let real = Member::start(Flavor::RealEtcd);
    let real_json = out(&real.etcdctl(&["member", "list", "-w", "json"]));
    let (cp, pp, data) = (real.client_port, real.peer_port, real.data_dir.clone());
    drop(real);
    let _ = std::fs::remove_dir_all(&data);
    // Same name, URLs and token: same member and cluster IDs.
    let mut ours = Member::new(Flavor::Retcd);
    ours.client_port = cp;
    ours.peer_port = pp;
    ours.launch();
    let our_json = out(&ours.etcdctl(&["member", "list", "-w", "json"]));
    assert_eq!(our_json, real_json);
}

#[test]
fn several_client_urls_all_serve() {
    let second = free_port();
    let mut m = Member::new(Flavor::Retcd);
    let urls = format!("{},http://127.0.0.1:{second}", m.client_url());
    m.extra_args = vec!["--listen-client-urls".into(), urls];
    m.launch();
    assert!(m.etcdctl(&["put", "x", "1"]).status.success());
    let o = etcdctl(
        &format!("127.0.0.1:{second}"),
        &["get", "x", "--print-value-only"],
        None,
    );
    assert_eq!(out(&o), "1\n");
    assert_eq!(http_get(second, "/health").unwrap().0, 200);
}

#[test]
fn auto_compaction_revision_mode() {
    let m = Member::start_with(
        Flavor::Retcd,
        &[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "3",
        ],
        &[("RETCD_COMPACTOR_CHECK_MS", "200")],
    );
    for i in 0..10 {
        assert!(m.etcdctl(&["put", "k", &i.to_string()]).status.success());
    }
    // Revision 11 now; the compactor keeps the last 3 revisions: compacted to 8.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let o = m.etcdctl(&["get", "k", "--rev=7"]);
        if err_lines(&o) == "Error: etcdserver: mvcc: required revision has been compacted\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not compacted in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        out(&m.etcdctl(&["get", "k", "--rev=8", "--print-value-only"])),
        "6\n"
    );
}

#[test]
fn auto_compaction_periodic_mode() {
    let m = Member::start_with(Flavor::Retcd, &["--auto-compaction-retention", "1s"], &[]);
    assert!(m.etcdctl(&["put", "p", "1"]).status.success());
    assert!(m.etcdctl(&["put", "p", "2"]).status.success());
    // After the retention window, revisions older than one second are compacted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let o = m.etcdctl(&["get", "p", "--rev=2"]);
        if err_lines(&o) == "Error: etcdserver: mvcc: required revision has been compacted\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not compacted in time: {}",
            m.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(out(&m.etcdctl(&["get", "p", "--print-value-only"])), "2\n");
}

#[test]
fn no_arguments_means_etcds_defaults() {
    // Only when the default ports are free on this machine; the test never touches a member
    // it did not start.
    if std::net::TcpListener::bind(("127.0.0.1", 2379)).is_err()
        || std::net::TcpListener::bind(("127.0.0.1", 2380)).is_err()
    {
        eprintln!("skipping: 127.0.0.1:2379 or :2380 is in use");
        return;
    }
    let mut m = Member::new(Flavor::Retcd);
    m.use_base_args = false;
    m.client_port = 2379;
    m.peer_port = 2380;
    m.launch();
    let o = m.etcdctl(&["member", "list"]);
    assert_eq!(
        out(&o),
        "8e9e05c52164694d, started, default, http://localhost:2380, http://localhost:2379, false\n"
    );
    assert!(m
        .cwd
        .join("default.etcd")
        .join("member")
        .join("db")
        .is_dir());
}

#[test]
fn ready_is_notified_to_systemd_once_serving() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let p = sock_path.display().to_string();
    let m = Member::start_with(Flavor::Retcd, &[], &[("NOTIFY_SOCKET", &p)]);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification");
    // READY=1 with the STATUS= line systemctl status shows.
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap().trim(),
        "READY=1\nSTATUS=serving clients; this member is the leader; revision 1; 1 members"
    );
    // It was sent once the member served: a request works now.
    assert!(m.etcdctl(&["put", "a", "b"]).status.success());
}

#[test]
fn wal_dir_holds_the_write_ahead_log() {
    let wal = tempfile::tempdir().unwrap();
    let w = wal.path().join("wal");
    let ws = w.display().to_string();
    let mut m = Member::start_with(Flavor::Retcd, &["--wal-dir", &ws], &[]);
    assert!(m.etcdctl(&["put", "a", "b"]).status.success());
    let logs: Vec<_> = std::fs::read_dir(&w)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .collect();
    assert!(!logs.is_empty(), "no WAL files in {}", w.display());
    m.kill9();
    m.restart();
    assert_eq!(out(&m.etcdctl(&["get", "a", "--print-value-only"])), "b\n");
}

/// A second member started on a running member's data dir stops at once and says why (etcd
/// 3.4 waits forever for the database's lock); the running member is untouched.
#[test]
fn a_data_dir_in_use_is_refused_with_a_clear_error() {
    let m = Member::start(Flavor::Retcd);
    assert!(m.etcdctl(&["put", "a", "1"]).status.success());
    let o = run_measured(
        Command::new(retcd_bin())
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{}", free_port()),
                "--advertise-client-urls",
                "http://127.0.0.1:1",
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", free_port()),
            ]),
        std::time::Duration::from_secs(30),
    )
    .0;
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    let want = format!(
        "etcd: cannot open data dir {}: database {}/member/db is in use by another process \
         (is another member running with this data dir?)",
        m.data_dir.display(),
        m.data_dir.display()
    );
    assert!(e.contains(&want), "{e}");
    assert_eq!(out(&m.etcdctl(&["get", "a", "--print-value-only"])), "1\n");
    assert!(m.etcdctl(&["put", "a", "2"]).status.success());
}
