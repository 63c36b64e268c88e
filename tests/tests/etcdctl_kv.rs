//! Real etcdctl 3.4.23 drives real etcd 3.4.23 and retcd through the same script; every
//! output (stdout, the `Error:` lines of stderr, exit code) must be byte-identical, with only
//! cluster and member IDs masked.

use retcd_tests::*;

const SCRIPT: &[Step] = &[
    (&["put", "foo", "bar"], None),
    (&["get", "foo"], None),
    (&["put", "foo", "bar2"], None),
    (&["get", "nosuchkey"], None),
    (&["put", "k/a", "1"], None),
    (&["put", "k/b", "1"], None),
    (&["put", "k/c", "2"], None),
    (&["put", "k/a", "3"], None),
    (&["get", "k/", "--prefix", "--keys-only"], None),
    (&["get", "foo", "-w", "json"], None),
    (&["get", "k/", "--prefix", "--limit=1", "-w", "json"], None),
    (&["get", "k/", "--prefix", "--limit=2"], None),
    (&["get", "foo", "-w", "fields"], None),
    (&["get", "k/", "--prefix", "-w", "table"], None),
    (&["get", "k/", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"], None),
    (&["get", "k/", "--prefix", "--sort-by=VALUE"], None),
    (&["get", "k/", "--prefix", "--sort-by=VALUE", "--order=DESCEND", "-w", "json"], None),
    (&["get", "k/", "--prefix", "--sort-by=VERSION", "--order=ASCEND"], None),
    (&["get", "k/", "--prefix", "--sort-by=CREATE", "--order=DESCEND"], None),
    (&["get", "k/", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit=2", "-w", "json"], None),
    (&["get", "k/b", "--from-key"], None),
    (&["get", "k/a", "--print-value-only"], None),
    (&["get", "foo", "--rev=2"], None),
    (&["get", "k/", "--prefix", "--rev=5", "-w", "json"], None),
    (&["get", "foo", "--consistency=s"], None),
    (&["get", "", "--prefix", "--keys-only"], None),
    (&["get", "--from-key", "", "-w", "json"], None),
    (&["get", "k/a", "k/c"], None),
    (&["put", "foo", "bar3", "--prev-kv"], None),
    (&["put", "foo", "--ignore-value", "-w", "json"], None),
    (&["put", "nokey", "--ignore-value"], None),
    (&["put", "nokey", "x", "--ignore-lease"], None),
    (&["put", "q", "v", "--lease=1234"], None),
    (&["get", "foo", "-w", "json"], None),
    (&["del", "nosuch"], None),
    (&["del", "foo", "--prev-kv"], None),
    (&["get", "foo", "--rev=3", "-w", "json"], None),
    (&["del", "k/", "--prefix", "--prev-kv"], None),
    (&["get", "k/", "--prefix"], None),
    (&["put", "k/a", "again"], None),
    (&["get", "k/a", "-w", "json"], None),
    (&["put", "t1", "v1"], None),
    (
        &["txn"],
        Some("value(\"t1\") = \"v1\"\nversion(\"t1\") = \"1\"\ncreate(\"t1\") > \"0\"\nmod(\"t1\") < \"1000\"\n\nput t2 yes\nget t1\n\nput t2 no\n\n"),
    ),
    (&["txn"], Some("value(\"t1\") = \"zz\"\n\nput t2 yes\n\nput t2 no\ndel t1\n\n")),
    (&["txn", "-w", "json"], Some("version(\"t1\") > \"5\"\n\nput t3 x\n\nget t1\n\n")),
    (&["put", "t1", "v1"], None),
    (&["txn", "--interactive"], Some("value(\"t1\") = \"v1\"\n\nput t3 x\n\n\n")),
    (&["txn", "-w", "json"], Some("mod(\"t3\") > \"1\"\nvalue(\"nokey\") != \"a\"\n\nput t4 y\ndel t3 --prev-kv\nget t --prefix\n\nput t5 z\n\n")),
    (&["txn", "-w", "fields"], Some("version(\"t1\") = \"1\"\n\nget t1\n\n\n")),
    (&["txn"], Some("\nput d1 a\nput d1 b\n\n\n")),
    (&["txn"], Some("\nput d1 a\ndel d --prefix\n\n\n")),
    (&["txn"], Some("\nput q v --lease=abc\n\n\n")),
    (&["get", "t", "--prefix", "-w", "json"], None),
    (&["compaction", "6"], None),
    (&["get", "foo", "--rev=5"], None),
    (&["get", "foo", "--rev=6", "-w", "json"], None),
    (&["get", "t1", "--rev=100000"], None),
    (&["compaction", "4"], None),
    (&["compaction", "6"], None),
    (&["compaction", "100000"], None),
    (&["compaction", "--physical", "10"], None),
    (&["get", "a", "--rev=-1"], None),
    (&["put", "", "v"], None),
    (&["del", ""], None),
    (&["get", ""], None),
    (&["put", "k v"], Some("")),
    (&["put", "stdin-key"], Some("value-from-stdin")),
    (&["get", "stdin-key", "--hex"], None),
    (&["put", "--", "-dash", "-v"], None),
    (&["get", "--", "-dash"], None),
    (&["get", "t", "--prefix", "--min-mod-revision=10", "--max-mod-revision=13", "-w", "json"], None),
    (&["get", "t", "--prefix", "--min-create-revision=14", "-w", "json"], None),
    (&["get", "t", "--prefix", "--max-create-revision=13", "--sort-by=MODIFY", "-w", "json"], None),
    (&["get", "foo", "--bogus"], None),
    (&["nosuchcommand"], None),
];

fn run_script(m: &Member) -> Vec<Outcome> {
    run_steps(&real_etcdctl(), &m.endpoint(), SCRIPT)
}

#[test]
fn etcdctl_outputs_match_real_etcd_byte_for_byte() {
    let real = Member::start(Flavor::RealEtcd);
    let expected = run_script(&real);
    drop(real);
    let ours = Member::start(Flavor::Retcd);
    let got = run_script(&ours);
    let failures = differences(&expected, &got, "real etcd", "retcd    ");
    assert!(
        failures.is_empty(),
        "{} of {} etcdctl commands differ:\n{}\n--- retcd log ---\n{}",
        failures.len(),
        SCRIPT.len(),
        failures.join("\n"),
        ours.log()
    );
}

#[test]
fn literal_outputs_match_the_reference() {
    let m = Member::start(Flavor::Retcd);
    let run = |args: &[&str], stdin: Option<&str>| {
        let o = m.etcdctl_stdin(args, stdin.map(str::as_bytes));
        (o.status.code().unwrap_or(-1), out(&o), err_lines(&o))
    };
    assert_eq!(
        run(&["put", "foo", "bar"], None),
        (0, "OK\n".into(), "".into())
    );
    assert_eq!(
        run(&["get", "foo"], None),
        (0, "foo\nbar\n".into(), "".into())
    );
    assert_eq!(run(&["get", "nosuchkey"], None), (0, "".into(), "".into()));
    let (code, json, _) = run(&["get", "foo", "-w", "json"], None);
    assert_eq!(code, 0);
    assert_eq!(
        mask_json_fields(&json, &["cluster_id", "member_id"]),
        "{\"header\":{\"cluster_id\":N,\"member_id\":N,\"revision\":2,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"count\":1}\n"
    );
    assert_eq!(run(&["del", "nosuch"], None), (0, "0\n".into(), "".into()));
    assert_eq!(run(&["put", "t1", "v1"], None).0, 0);
    assert_eq!(
        run(
            &["txn"],
            Some("value(\"t1\") = \"v1\"\nversion(\"t1\") = \"1\"\ncreate(\"t1\") > \"0\"\nmod(\"t1\") < \"1000\"\n\nput t2 yes\nget t1\n\nput t2 no\n\n")
        ),
        (0, "SUCCESS\n\nOK\n\nt1\nv1\n".into(), "".into())
    );
    assert_eq!(
        run(&["txn", "--interactive"], Some("value(\"t1\") = \"v1\"\n\nput t3 x\n\n\n")),
        (
            0,
            "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\nOK\n".into(),
            "".into()
        )
    );
    assert_eq!(
        run(&["compaction", "3"], None),
        (0, "compacted revision 3\n".into(), "".into())
    );
    assert_eq!(
        run(&["get", "t1", "--rev=2"], None),
        (
            1,
            "".into(),
            "Error: etcdserver: mvcc: required revision has been compacted\n".into()
        )
    );
    assert_eq!(
        run(&["get", "t1", "--rev=100000"], None),
        (
            1,
            "".into(),
            "Error: etcdserver: mvcc: required revision is a future revision\n".into()
        )
    );
    assert_eq!(
        run(&["put", "", "v"], None),
        (
            1,
            "".into(),
            "Error: etcdserver: key is not provided\n".into()
        )
    );
    assert_eq!(
        run(&["put", "q", "v", "--lease=5c10a1fbbcbbce06"], None),
        (
            1,
            "".into(),
            "Error: etcdserver: requested lease not found\n".into()
        )
    );
}

#[test]
fn request_size_limit_and_txn_limits() {
    let m = Member::start(Flavor::Retcd);
    let big = vec![b'x'; 1_600_000];
    let o = m.etcdctl_stdin(&["put", "big"], Some(&big));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err_lines(&o), "Error: etcdserver: request is too large\n");
    let ok = vec![b'y'; 1_400_000];
    let o = m.etcdctl_stdin(&["put", "big"], Some(&ok));
    assert_eq!((o.status.code(), out(&o)), (Some(0), "OK\n".into()));
    let o = m.etcdctl(&["get", "big", "--print-value-only"]);
    assert_eq!(o.stdout.len(), 1_400_001);

    // 129 puts in one branch: over --max-txn-ops (128).
    let mut txn = String::from("\n");
    for i in 0..129 {
        txn.push_str(&format!("put k{i} v\n"));
    }
    txn.push_str("\n\n");
    let o = m.etcdctl_stdin(&["txn"], Some(txn.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: too many operations in txn request\n"
    );
    // 128 is fine.
    let mut txn = String::from("\n");
    for i in 0..128 {
        txn.push_str(&format!("put k{i} v\n"));
    }
    txn.push_str("\n\n");
    let o = m.etcdctl_stdin(&["txn"], Some(txn.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", err_lines(&o));
    let o = m.etcdctl(&["get", "k", "--prefix", "--limit=1", "-w", "fields"]);
    assert!(out(&o).contains("\"Count\" : 128\n"), "{}", out(&o));
}

#[test]
fn max_request_bytes_and_max_txn_ops_flags_apply() {
    let m = Member::start_with(
        Flavor::Retcd,
        &["--max-request-bytes", "1024", "--max-txn-ops", "2"],
        &[],
    );
    let o = m.etcdctl_stdin(&["put", "k"], Some(&[b'v'; 2000]));
    assert_eq!(err_lines(&o), "Error: etcdserver: request is too large\n");
    let o = m.etcdctl_stdin(&["txn"], Some(b"\nput a 1\nput b 2\nput c 3\n\n\n"));
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: too many operations in txn request\n"
    );
    let o = m.etcdctl_stdin(&["txn"], Some(b"\nput a 1\nput b 2\n\n\n"));
    assert_eq!(o.status.code(), Some(0));
}
