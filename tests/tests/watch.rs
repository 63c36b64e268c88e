//! Watch through real etcdctl 3.4.23: the same scenario against real etcd and retcd, every
//! watcher's output compared byte for byte (IDs masked), plus etcd's guarantees.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use retcd_tests::*;

fn spawn_watch(bin: &std::path::Path, ep: &str, args: &[&str]) -> Child {
    Command::new(bin)
        .arg(format!("--endpoints={ep}"))
        .arg("watch")
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn etcdctl watch")
}

/// SIGINT, then (code, stdout, stderr without JSON log lines).
fn finish(mut c: Child) -> (i32, String, String) {
    unsafe {
        libc::kill(c.id() as i32, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let o = c.wait_with_output().expect("watch output");
    let mask = |s: &str| mask_json_fields(s, &["cluster_id", "member_id"]);
    (o.status.code().unwrap_or(-1), mask(&out(&o)), err_lines(&o))
}

fn scenario(flavor: Flavor, bin: &std::path::Path) -> Vec<(String, (i32, String, String))> {
    let m = Member::start(flavor);
    let ep = m.endpoint();
    let live: Vec<(&str, Vec<&str>)> = vec![
        ("key", vec!["w1"]),
        ("prefix prev-kv", vec!["--prefix", "w", "--prev-kv"]),
        ("json", vec!["w1", "-w", "json"]),
        ("prefix json", vec!["--prefix", "t", "-w", "json"]),
        ("range", vec!["w1", "w3"]),
    ];
    let watchers: Vec<(String, Child)> = live
        .iter()
        .map(|(n, a)| (n.to_string(), spawn_watch(bin, &ep, a)))
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    for args in [
        vec!["put", "w1", "a"],
        vec!["put", "w1", "b"],
        vec!["put", "w2", "c"],
        vec!["del", "w1"],
        vec!["put", "w3", "out-of-range"],
    ] {
        assert!(m.etcdctl(&args).status.success());
    }
    // One txn, one revision, three events: delivered together.
    let o = m.etcdctl_stdin(&["txn"], Some(b"\nput t1 x\nput t2 y\nput t3 z\n\n\n"));
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(800));
    let mut results: Vec<(String, (i32, String, String))> =
        watchers.into_iter().map(|(n, c)| (n, finish(c))).collect();
    // Replay history from a revision.
    let c = spawn_watch(bin, &ep, &["--prefix", "w", "--rev=2", "-w", "json"]);
    std::thread::sleep(Duration::from_millis(800));
    results.push(("replay json".into(), finish(c)));
    let c = spawn_watch(bin, &ep, &["w1", "--rev=3", "--prev-kv"]);
    std::thread::sleep(Duration::from_millis(800));
    results.push(("replay prev-kv".into(), finish(c)));
    // A compacted start revision cancels the watch: exit code 5.
    assert!(m.etcdctl(&["compaction", "5"]).status.success());
    let c = spawn_watch(bin, &ep, &["--prefix", "w", "--rev=2"]);
    std::thread::sleep(Duration::from_millis(800));
    results.push(("compacted".into(), finish(c)));
    results
}

#[test]
fn watch_output_matches_real_etcd() {
    let expected = scenario(Flavor::RealEtcd, &real_etcdctl());
    let got = scenario(Flavor::Retcd, &real_etcdctl());
    let mut failures = Vec::new();
    for (e, g) in expected.iter().zip(got.iter()) {
        if e != g {
            failures.push(format!(
                "{}:\n  real etcd: {:?}\n  retcd:     {:?}",
                e.0, e.1, g.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // And the reference outputs, literally.
    assert_eq!(got[0].1 .1, "PUT\nw1\na\nPUT\nw1\nb\nDELETE\nw1\n\n");
    assert_eq!(got[7].1 .0, 5);
    assert_eq!(
        got[7].1 .2,
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
}

#[test]
fn our_etcdctl_watch_matches_real_etcdctl() {
    let expected = scenario(Flavor::Retcd, &real_etcdctl());
    let got = scenario(Flavor::Retcd, &our_etcdctl());
    let mut failures = Vec::new();
    for (e, g) in expected.iter().zip(got.iter()) {
        if e != g {
            failures.push(format!(
                "{}:\n  real etcdctl: {:?}\n  our etcdctl:  {:?}",
                e.0, e.1, g.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
