//! Moving from etcd: this member refuses a data dir a real etcd member left behind (it cannot
//! read it, and bootstrapping beside it would show clients an empty cluster), leaves it as it
//! was; its tools refuse etcd's snapshots by name; and the documented way over — a new data dir filled by `etcdctl make-mirror` — works.

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
         which this etcd cannot read; nothing was changed. Start this member with an empty \
         --data-dir and copy the keys from the old cluster with 'etcdctl make-mirror' \
         (docs/migrating-from-etcd.md)\n"
    );
    assert!(m.log().ends_with(&msg), "{}", m.log());
    assert_eq!(files(&m.data_dir), before, "the etcd data dir was changed");

    // etcd still starts on it with every key, and the keys move over by make-mirror.
    m.flavor = Flavor::RealEtcd;
    m.launch();
    assert_eq!(out(&m.etcdctl(&["get", "/app", "--prefix"])), want);
    // etcd's snapshots are refused by name, with the way over.
    let snap = m.cwd.join("etcd-snapshot.db");
    let snap_s = snap.display().to_string();
    let o = m.etcdctl(&["snapshot", "save", &snap_s]);
    assert!(o.status.success(), "{}", err_lines(&o));
    let refused = format!(
        "Error: {snap_s}: an etcd (bbolt) snapshot, which retcd's tools cannot read: restore it \
         with etcd's own etcdutl, or copy the keys from a running etcd cluster with 'etcdctl \
         make-mirror' (docs/migrating-from-etcd.md)\n"
    );
    let restored = m.cwd.join("restored");
    let restored_s = restored.display().to_string();
    for args in [
        vec!["snapshot", "status", &snap_s],
        vec!["snapshot", "restore", &snap_s, "--data-dir", &restored_s],
    ] {
        let o = run_tool(&our_etcdutl(), &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), refused, "{args:?}");
        assert_eq!(out(&o), "", "{args:?}");
    }
    assert!(!restored.exists());

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
