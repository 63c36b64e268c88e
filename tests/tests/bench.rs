//! `etcd-bench`: every workload of etcd's `benchmark` runs against retcd and against real etcd
//! 3.4.23 (plain v3 gRPC), counts what it did, and reports as etcd's tool reports. Figures are
//! never asserted here: speed is measured by tools/bench/compare.py, not by tests.

use std::process::{Command, Output};

use retcd_tests::*;

fn bench(ep: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(retcd_bin().with_file_name("etcd-bench"))
        .arg("--endpoints")
        .arg(ep)
        .args(args)
        .output()
        .expect("run etcd-bench")
}

/// The JSON reports a run printed (one per line).
fn reports(o: &Output) -> Vec<serde_json::Value> {
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(o));
    out(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(ep: &str) -> u64 {
    let o = etcdctl(
        ep,
        &["get", "", "--prefix", "--limit", "1", "-w", "json"],
        None,
    );
    json_u64(&out(&o), "count").unwrap_or(0)
}

fn every_workload(flavor: Flavor) {
    let m = Member::start(flavor);
    let ep = m.endpoint();
    let j = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend_from_slice(&["-w", "json"]);
        let r = reports(&bench(&ep, &v));
        for x in &r {
            assert_eq!(x["errors"], 0, "{args:?}: {x}");
        }
        r
    };
    let r = j(&[
        "put",
        "--total",
        "100",
        "--clients",
        "4",
        "--conns",
        "2",
        "--sequential-keys",
        "--key-space-size",
        "50",
        "--val-size",
        "64",
    ]);
    assert_eq!(
        (r.len(), r[0]["op"].as_str(), r[0]["requests"].as_u64()),
        (1, Some("put"), Some(100))
    );
    assert_eq!(count(&ep), 50, "sequential keys 0..49");
    let r = j(&[
        "txn-put",
        "--total",
        "20",
        "--txn-ops",
        "2",
        "--key-space-size",
        "10",
    ]);
    assert_eq!(r[0]["requests"], 20);
    assert_eq!(count(&ep), 50, "the same 8-byte varint keys");
    for c in ["l", "s"] {
        let r = j(&[
            "range",
            "a",
            "z",
            "--total",
            "50",
            "--consistency",
            c,
            "--clients",
            "5",
        ]);
        assert_eq!(r[0]["requests"], 50);
    }
    let r = j(&[
        "txn-mixed",
        "--total",
        "40",
        "--key-space-size",
        "5",
        "--limit",
        "3",
    ]);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0]["part"].as_str(), r[1]["part"].as_str()),
        (Some("read"), Some("write"))
    );
    assert_eq!(
        r[0]["requests"].as_u64().unwrap_or(0) + r[1]["requests"].as_u64().unwrap_or(0),
        40
    );
    let r = j(&[
        "watch-latency",
        "--total",
        "20",
        "--clients",
        "3",
        "--put-rate",
        "100",
    ]);
    assert_eq!(r[0]["requests"], 60, "every watcher saw every put");
    let r = j(&[
        "watch",
        "--streams",
        "2",
        "--watch-per-stream",
        "3",
        "--watched-key-total",
        "2",
        "--put-total",
        "10",
        "--sequential-keys",
        "--key-space-size",
        "2",
    ]);
    assert_eq!(
        (r[0]["part"].as_str(), r[0]["requests"].as_u64()),
        (Some("creation"), Some(6))
    );
    // keys 0 and 1 are watched 3 times each; 10 puts alternate between them.
    assert_eq!(
        (r[1]["part"].as_str(), r[1]["requests"].as_u64()),
        (Some("events"), Some(30))
    );
    let r = j(&["lease-keepalive", "--total", "30", "--clients", "3"]);
    assert_eq!(r[0]["requests"], 30);
    let r = j(&[
        "stm",
        "--total",
        "30",
        "--keys",
        "4",
        "--keys-per-txn",
        "2",
        "--clients",
        "3",
    ]);
    assert_eq!(r[0]["requests"], 30);
}

#[test]
fn every_workload_runs_against_retcd() {
    every_workload(Flavor::Retcd);
}

#[test]
fn every_workload_runs_against_real_etcd() {
    every_workload(Flavor::RealEtcd);
}

#[test]
fn reports_read_like_etcds_benchmark_tool() {
    let m = Member::start(Flavor::Retcd);
    let o = bench(&m.endpoint(), &["put", "--total", "20"]);
    let text = out(&o);
    assert!(text.starts_with("\nSummary:\n  Total:\t"), "{text}");
    for part in [
        "  Requests/sec:\t",
        "\nResponse time histogram:\n",
        "\nLatency distribution:\n  10% in ",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    assert!(text.ends_with(" secs.\n\n"), "{text:?}");
    // 11 histogram lines, bars of ∎.
    let hist = text
        .split("Response time histogram:\n")
        .nth(1)
        .unwrap_or("")
        .split("\n\n")
        .next()
        .unwrap_or("");
    assert_eq!(hist.lines().count(), 11, "{hist}");
    let o = bench(
        &m.endpoint(),
        &["range", "k", "--total", "5", "--consistency", "s"],
    );
    assert!(
        out(&o).starts_with("bench with serializable range\n\nSummary:\n"),
        "{}",
        out(&o)
    );
    let o = bench(&m.endpoint(), &["range", "k", "--consistency", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = bench(&m.endpoint(), &["put", "--key-space-size", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err_lines(&o),
        "expected positive --key-space-size, got (0)\n"
    );
    let o = bench(&m.endpoint(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(1));
}

/// A member killed and restarted under load: the load generator's requests fail while it is
/// down and go through again once it is back (its connection is made anew), as etcd's
/// benchmark tool's do.
#[test]
fn load_goes_on_after_a_member_restarts() {
    let mut m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    let child = Command::new("timeout")
        .arg("120")
        .arg(retcd_bin().with_file_name("etcd-bench"))
        .args([
            "--endpoints",
            &ep,
            "--clients",
            "2",
            "--conns",
            "1",
            "-w",
            "json",
        ])
        .args([
            "put",
            "--total",
            "600",
            "--rate",
            "100",
            "--sequential-keys",
            "--key-space-size",
            "100000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run etcd-bench");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    m.restart();
    // Every acknowledged put survived the kill (distinct keys: one per successful put).
    let before = count(&ep);
    assert!(before > 0, "no put went through before the restart");
    let r = reports(&child.wait_with_output().expect("wait for etcd-bench"));
    let ok = r[0]["requests"].as_u64().unwrap_or(0);
    let errors = r[0]["errors"].as_u64().unwrap_or(u64::MAX);
    assert_eq!(ok + errors, 600, "{}", r[0]);
    // Every acknowledged put is there. A put whose connection broke after it reached the
    // member counts as an error yet may have been committed (its outcome is unknown to the
    // client, as with etcd): the count lies between the two.
    let after = count(&ep);
    assert!(
        (ok..=ok + errors).contains(&after),
        "{after} keys for {ok} acknowledged puts and {errors} errors: {}",
        r[0]
    );
    assert!(
        after > before + 100,
        "puts after the restart: {before} -> {after}"
    );
}
