//! Our etcdctl against real etcdctl 3.4.23: the same script, each against its own fresh
//! retcd member; stdout, `Error:` lines and exit codes must be identical (IDs masked).

use retcd_tests::*;

const SCRIPT: &[Step] = &[
    (&["put", "foo", "bar"], None),
    (&["get", "foo"], None),
    (&["put", "foo", "bar2", "-w", "json"], None),
    (&["get", "nosuchkey"], None),
    (&["get", "nosuchkey", "-w", "json"], None),
    (&["put", "k/a", "1"], None),
    (&["put", "k/b", "1"], None),
    (&["put", "k/c", "2"], None),
    (&["put", "k/a", "3"], None),
    (&["get", "k/", "--prefix", "--keys-only"], None),
    (&["get", "foo", "-w", "json"], None),
    (&["get", "k/", "--prefix", "--limit=1", "-w", "json"], None),
    (&["get", "k/", "--prefix", "--limit", "2"], None),
    (&["get", "foo", "-w", "fields"], None),
    (&["get", "k/", "--prefix", "-w", "fields"], None),
    (
        &[
            "get",
            "k/",
            "--prefix",
            "--sort-by=MODIFY",
            "--order=DESCEND",
        ],
        None,
    ),
    (&["get", "k/", "--prefix", "--sort-by=VALUE"], None),
    (
        &[
            "get",
            "k/",
            "--prefix",
            "--sort-by=VERSION",
            "--order=ASCEND",
            "-w",
            "json",
        ],
        None,
    ),
    (
        &["get", "k/", "--prefix", "--sort-by=KEY", "--order=ASCEND"],
        None,
    ),
    (&["get", "k/b", "--from-key"], None),
    (&["get", "k/a", "--print-value-only"], None),
    (&["get", "foo", "--rev=2"], None),
    (&["get", "foo", "--consistency=s"], None),
    (&["get", "", "--prefix", "--keys-only"], None),
    (&["get", "k/a", "k/c"], None),
    (&["get", "k/a", "--hex"], None),
    (&["put", "foo", "bar3", "--prev-kv"], None),
    (&["put", "foo", "bar4", "--prev-kv", "-w", "json"], None),
    (&["put", "foo", "--ignore-value"], None),
    (&["put", "stdin-key"], Some("from-stdin")),
    (&["get", "stdin-key"], None),
    (&["put", "nokey", "--ignore-value"], None),
    (&["put", "q", "v", "--lease=1234"], None),
    (&["put", "k", "v", "--lease=zz"], None),
    (&["put", "onlykey"], None),
    (&["put", "", "v"], None),
    (&["get", "foo", "--rev=100000"], None),
    (&["del", "nosuch"], None),
    (&["put", "foo", "bar5", "--prev-kv", "-w", "fields"], None),
    (&["put", "pb", "x"], None),
    (&["del", "pb", "--prev-kv", "-w", "fields"], None),
    (&["del", "foo", "--prev-kv"], None),
    (&["del", "k/", "--prefix", "--prev-kv", "-w", "json"], None),
    (&["del", "k/", "--prefix"], None),
    (&["get", "k/", "--prefix"], None),
    (&["del", ""], None),
    (&["del"], None),
    (&["get"], None),
    (&["get", "a", "--consistency=x"], None),
    (&["get", "a", "--order=SIDEWAYS"], None),
    (&["get", "a", "--sort-by=COLOR"], None),
    (&["get", "a", "b", "--prefix"], None),
    (&["get", "a", "--prefix", "--from-key"], None),
    (&["nosuchcommand"], None),
    (&["version"], None),
    (&["put", "t1", "v1"], None),
    (
        &["txn"],
        Some("value(\"t1\") = \"v1\"\nversion(\"t1\") = \"1\"\ncreate(\"t1\") > \"0\"\nmod(\"t1\") < \"1000\"\n\nput t2 yes\nget t1\n\nput t2 no\n\n"),
    ),
    (&["txn"], Some("value(\"t1\") = \"zz\"\n\nput t2 yes\n\nput t2 no\ndel t1\n\n")),
    (&["txn", "-w", "json"], Some("version(\"t1\") > \"5\"\n\nput t3 x\n\nget t1\n\n")),
    (&["put", "t1", "v1"], None),
    (&["txn", "--interactive"], Some("value(\"t1\") = \"v1\"\n\nput t3 x\n\n\n")),
    (&["txn", "-w", "fields"], Some("version(\"t1\") > \"0\"\n\nput t6 x --prev-kv\nget t1\ndel t6\n\n\n")),
    (&["txn", "-w", "json"], Some("mod(\"t3\") > \"1\"\nvalue(\"nokey\") != \"a\"\n\nput t4 y\ndel t3 --prev-kv\nget t --prefix\n\nput t5 z\n\n")),
    (&["txn"], Some("\nput d1 a\nput d1 b\n\n\n")),
    (&["txn"], Some("\nput \"quoted key\" 'single quoted'\nget \"quoted key\"\n\n\n")),
    (&["txn"], Some("\nput q v --lease=abc\n\n\n")),
    (&["txn"], Some("bogus(\"t1\") = \"1\"\n\n\n\n")),
    (&["txn"], Some("\nfrob t1\n\n\n")),
    // Malformed lines: etcdctl's messages, with what its scanner had read.
    (&["txn"], Some("\nput\n\n\n")),
    (&["txn"], Some("\nput k\n\n\n")),
    (&["txn"], Some("value(\"t1\")\n\n\n\n")),
    (&["txn"], Some("value(t1) = \"1\"\n\n\n\n")),
    (&["txn"], Some("value(\"t1\")=\"1\"\n\n\n\n")),
    (&["txn"], Some("mod(\"t1\") > 3\n\n\n\n")),
    (&["txn"], Some("version(\"t1\") = \"x\"\n\n\n\n")),
    (&["txn"], Some("value(\"t1\") = \n\n\n\n")),
    // Go's escapes and raw strings; spaces around lines; a line of spaces ends a section.
    (&["txn"], Some("value(\"\\x74\\061\") = `zz`\n\nget t1\n\n\n")),
    (&["txn"], Some(" \t\n  put t7 x  \n \n\n")),
    (&["compaction", "5"], None),
    (&["get", "k/a", "--rev=2"], None),
    (&["compaction", "3"], None),
    (&["compaction", "100000"], None),
    (&["compaction", "x"], None),
    (&["compaction"], None),
    (&["compaction", "--physical", "6"], None),
];

fn run(bin: &std::path::Path) -> Vec<Outcome> {
    let m = Member::start(Flavor::Retcd);
    run_steps(bin, &m.endpoint(), SCRIPT)
}

#[test]
fn our_etcdctl_prints_what_etcdctl_prints() {
    let expected = run(&real_etcdctl());
    let got = run(&our_etcdctl());
    let mut failures = Vec::new();
    for (e, g) in expected.iter().zip(got.iter()) {
        // `version` names different releases on purpose.
        if e.0 == "etcdctl version" {
            assert_eq!(g.2, "etcdctl version: 3.5.17\nAPI version: 3.5\n");
            continue;
        }
        if e != g {
            failures.push(format!(
                "{}\n  real etcdctl: exit {} stdout {:?} stderr {:?}\n  our etcdctl:  exit {} stdout {:?} stderr {:?}",
                e.0, e.1, e.2, e.3, g.1, g.2, g.3
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} commands differ:\n{}",
        failures.len(),
        SCRIPT.len(),
        failures.join("\n")
    );
}

/// A lease sequence; the lease ID each server picked is replaced by ID.
fn lease_run(bin: &std::path::Path) -> Vec<Outcome> {
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    let g = run_ctl(bin, &ep, &["lease", "grant", "100"], None);
    let id = out(&g)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let dec = i64::from_str_radix(&id, 16).unwrap_or(0).to_string();
    let lk = format!("--lease={id}");
    let steps: Vec<Vec<&str>> = vec![
        vec!["put", "lk1", "a", &lk],
        vec!["put", "lk2", "b", &lk],
        vec!["lease", "timetolive", &id],
        vec!["lease", "timetolive", &id, "--keys"],
        vec!["lease", "timetolive", &id, "-w", "json"],
        vec!["lease", "keep-alive", "--once", &id],
        vec!["lease", "keep-alive", "--once", &id, "-w", "json"],
        vec!["lease", "keep-alive", "--once", &id, "-w", "fields"],
        vec!["lease", "list"],
        vec!["lease", "list", "-w", "json"],
        vec!["lease", "list", "-w", "fields"],
        vec!["lease", "revoke", &id, "-w", "json"],
        vec!["lease", "revoke", &id],
        vec!["lease", "list", "-w", "json"],
        vec!["lease", "timetolive", &id],
        vec!["get", "lk", "--prefix"],
        vec!["lease", "keep-alive", "--once", "5c10a1fbbcbbce0f"],
        vec!["lease", "grant"],
        vec!["lease", "grant", "x"],
        vec!["lease", "revoke", "zz"],
        vec!["lease", "timetolive"],
    ];
    let mut results = vec![(
        "lease grant 100".to_string(),
        g.status.code().unwrap_or(-1),
        out(&g).replace(&id, "ID"),
        err_lines(&g),
    )];
    for args in steps {
        let o = run_ctl(bin, &ep, &args, None);
        let mask = |s: String| {
            let s = mask_json_fields(
                &s.replace(&id, "ID").replace(&dec, "DEC"),
                &["cluster_id", "member_id"],
            );
            // The fields format names the (per-run) cluster and member IDs too.
            s.lines()
                .map(|l| {
                    if l.starts_with("\"ClusterID\" : ") || l.starts_with("\"MemberID\" : ") {
                        format!("{} : X\n", l.split(" : ").next().unwrap_or(""))
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect::<String>()
        };
        results.push((
            format!("etcdctl {}", args.join(" ").replace(&id, "ID")),
            o.status.code().unwrap_or(-1),
            mask(out(&o)),
            mask(err_lines(&o)),
        ));
    }
    results
}

#[test]
fn our_etcdctl_lease_commands_match() {
    let expected = lease_run(&real_etcdctl());
    let got = lease_run(&our_etcdctl());
    let failures = differences(&expected, &got, "real etcdctl", "our etcdctl ");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Masks what legitimately differs between two runs: timings and database sizes.
fn mask_volatile(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = line.to_string();
        if let Some(i) = l.find("took = ") {
            l.truncate(i + "took = ".len());
            l.push('T');
        }
        for f in ["dbSize", "dbSizeInUse"] {
            l = mask_json_fields(&l, &[f]);
        }
        // "120 kB" style sizes in simple and table output.
        let words: Vec<String> = l.split(' ').map(|w| w.to_string()).collect();
        let mut masked = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let unit = words
                .get(i + 1)
                .map(|u| u.trim_end_matches(','))
                .unwrap_or("");
            if ["B", "kB", "MB", "GB"].contains(&unit) && words[i].parse::<f64>().is_ok() {
                masked.push("SIZE".to_string());
                masked.push(words[i + 1].replace(unit, "U"));
                i += 2;
                continue;
            }
            masked.push(words[i].clone());
            i += 1;
        }
        out.push_str(&masked.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn our_etcdctl_member_and_endpoint_commands_match() {
    let c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    let url = c.members[0].client_url();
    let cases: Vec<Vec<String>> = vec![
        vec!["member".into(), "list".into()],
        vec!["member".into(), "list".into(), "-w".into(), "table".into()],
        vec!["member".into(), "list".into(), "-w".into(), "json".into()],
        vec!["member".into(), "list".into(), "-w".into(), "fields".into()],
        vec![
            "endpoint".into(),
            "status".into(),
            "-w".into(),
            "fields".into(),
        ],
        vec![
            "endpoint".into(),
            "hashkv".into(),
            "--cluster".into(),
            "-w".into(),
            "fields".into(),
        ],
        vec!["endpoint".into(), "status".into()],
        vec![
            "endpoint".into(),
            "status".into(),
            "-w".into(),
            "json".into(),
        ],
        vec![
            "endpoint".into(),
            "status".into(),
            "--cluster".into(),
            "-w".into(),
            "table".into(),
        ],
        vec!["endpoint".into(), "status".into(), "--cluster".into()],
        vec!["endpoint".into(), "health".into()],
        vec!["endpoint".into(), "health".into(), "--cluster".into()],
        vec![
            format!("--endpoints={url}"),
            "endpoint".into(),
            "status".into(),
        ],
    ];
    let mut failures = Vec::new();
    for args in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let real = run_ctl(&real_etcdctl(), &ep, &a, None);
        let ours = run_ctl(&our_etcdctl(), &ep, &a, None);
        let view = |o: &std::process::Output| {
            let mut errs: Vec<String> = err_lines(o).lines().map(mask_volatile).collect();
            // Health lines come in completion order: compare them as a set.
            errs.sort();
            (o.status.code(), mask_volatile(&out(o)), errs)
        };
        let (r, o) = (view(&real), view(&ours));
        if r != o {
            failures.push(format!("{}\n  real: {r:?}\n  ours: {o:?}", a.join(" ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn our_etcdctl_member_changes() {
    let c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    let ours = our_etcdctl();
    let cluster = json_u64(
        &out(&etcdctl(&ep, &["endpoint", "status", "-w", "json"], None)),
        "cluster_id",
    )
    .unwrap();
    // Argument errors: identical to real etcdctl.
    for args in [
        vec!["member", "remove"],
        vec!["member", "remove", "zz"],
        vec!["member", "add", "x"],
        vec!["member", "update", "1"],
        vec!["member", "promote", "nothex"],
    ] {
        let r = etcdctl(&ep, &args, None);
        let o = run_ctl(&ours, &ep, &args, None);
        assert_eq!(
            (o.status.code(), err_lines(&o)),
            (r.status.code(), err_lines(&r)),
            "{args:?}"
        );
    }
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut add = None;
    for _ in 0..30 {
        let o = run_ctl(
            &ours,
            &ep,
            &[
                "member",
                "add",
                "m4",
                "--learner",
                &format!("--peer-urls={url}"),
            ],
            None,
        );
        if o.status.success() {
            add = Some(out(&o));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let add = add.expect("member add succeeded");
    let lines: Vec<&str> = add.lines().collect();
    let id: u64 = {
        let s = out(&etcdctl(&ep, &["member", "list"], None));
        let line = s
            .lines()
            .find(|l| l.contains(&url))
            .expect("listed")
            .to_string();
        u64::from_str_radix(line.split(',').next().unwrap(), 16).unwrap()
    };
    assert_eq!(
        lines[0],
        format!("Member {id:16x} added to cluster {cluster:16x}")
    );
    assert_eq!(lines[2], "ETCD_NAME=\"m4\"");
    assert!(
        lines[3].contains(&format!("m4={url}")) && lines[3].starts_with("ETCD_INITIAL_CLUSTER=\"")
    );
    assert_eq!(
        lines[4],
        format!("ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{url}\"")
    );
    assert_eq!(lines[5], "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
    // member list: ours and real etcdctl agree.
    assert_eq!(
        out(&run_ctl(&ours, &ep, &["member", "list"], None)),
        out(&etcdctl(&ep, &["member", "list"], None))
    );
    // An unstarted learner is not in sync: the same refusal through both.
    let r = etcdctl(&ep, &["member", "promote", &format!("{id:x}")], None);
    let o = run_ctl(&ours, &ep, &["member", "promote", &format!("{id:x}")], None);
    assert_eq!(
        (o.status.code(), err_lines(&o)),
        (r.status.code(), err_lines(&r))
    );
    let m2 = c.members[1].peer_url();
    let id2: u64 = {
        let s = out(&etcdctl(&ep, &["member", "list"], None));
        let line = s.lines().find(|l| l.contains(&m2)).unwrap().to_string();
        u64::from_str_radix(line.split(',').next().unwrap(), 16).unwrap()
    };
    let o = run_ctl(
        &ours,
        &ep,
        &[
            "member",
            "update",
            &format!("{id2:x}"),
            &format!("--peer-urls={m2}"),
        ],
        None,
    );
    assert_eq!(
        out(&o),
        format!("Member {id2:16x} updated in cluster {cluster:16x}\n"),
        "{}",
        err_lines(&o)
    );
    let o = run_ctl(&ours, &ep, &["member", "remove", &format!("{id:x}")], None);
    assert_eq!(
        out(&o),
        format!("Member {id:16x} removed from cluster {cluster:16x}\n"),
        "{}",
        err_lines(&o)
    );
}

#[test]
fn protobuf_output_is_the_same_bytes() {
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    etcdctl(&ep, &["put", "foo", "bar"], None);
    etcdctl(&ep, &["put", "foo2", "bar2"], None);
    for args in [
        vec!["get", "foo", "--prefix", "-w", "protobuf"],
        vec!["txn", "-w", "protobuf"],
        vec!["member", "list", "-w", "protobuf"],
        vec!["alarm", "list", "-w", "protobuf"],
    ] {
        let stdin = (args[0] == "txn").then_some(&b"\nget foo\n\n\n"[..]);
        let r = run_ctl(&real_etcdctl(), &ep, &args, stdin);
        let o = run_ctl(&our_etcdctl(), &ep, &args, stdin);
        assert!(!r.stdout.is_empty());
        assert_eq!(o.stdout, r.stdout, "{args:?}");
    }
}

/// Runs `bin` with byte-string arguments against `ep`; stdout as bytes.
fn run_bytes(bin: &std::path::Path, ep: &str, args: &[&[u8]]) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let o = std::process::Command::new("timeout")
        .arg("60")
        .arg(bin)
        .arg(format!("--endpoints={ep}"))
        .args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
        .env("ETCDCTL_API", "3")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run etcdctl");
    assert!(o.status.success(), "{args:?}: {}", err_lines(&o));
    o.stdout
}

/// Keys and values that are not UTF-8 (or hold characters Go's %q escapes) are printed as the
/// bytes they are, and quoted as Go quotes them, in every command that shows them — compared
/// byte for byte, not as text (a replacement character would compare equal after a lossy
/// conversion).
#[test]
fn binary_keys_and_values_print_as_etcdctl_prints_them() {
    let m = Member::start(Flavor::RealEtcd);
    let ep = m.endpoint();
    let real = real_etcdctl();
    let ours = our_etcdctl();
    // é, a bad byte, a zero-width space, a no-break space, a control; the last code point of
    // Unicode (it must survive as itself).
    let key: &[u8] = b"b/\xc3\xa9\xff\xe2\x80\x8b\xc2\xa0z\x01";
    let value: &[u8] = b"\xf4\x8f\xbf\xbf\xfe\xc3\xa9";
    let watch =
        |bin: &std::path::Path| Running::start(bin, &ep, &["watch", "--prefix", "b/", "--prev-kv"]);
    let (wr, wo) = (watch(&real), watch(&ours));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let lease = out(&m.etcdctl(&["lease", "grant", "100"]));
    let lease = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    run_bytes(&real, &ep, &[b"put", key, value]);
    run_bytes(
        &real,
        &ep,
        &[b"put", key, b"v2", b"--lease", lease.as_bytes()],
    );
    run_bytes(&real, &ep, &[b"role", b"add", b"r"]);
    run_bytes(
        &real,
        &ep,
        &[b"role", b"grant-permission", b"r", b"read", key, b"b/\xfe"],
    );
    for args in [
        &[&b"get"[..], b"b/", b"--prefix"][..],
        &[b"get", b"b/", b"--prefix", b"--rev", b"0", b"-w", b"fields"],
        &[b"get", b"b/", b"--prefix", b"-w", b"json"],
        &[b"del", b"nothing", b"--prev-kv"],
        &[b"lease", b"timetolive", lease.as_bytes(), b"--keys"],
        &[b"role", b"get", b"r"],
        &[b"role", b"get", b"r", b"-w", b"fields"],
    ] {
        let r = run_bytes(&real, &ep, args);
        assert!(!r.is_empty(), "{args:?}");
        assert_eq!(run_bytes(&ours, &ep, args), r, "{args:?}");
    }
    // The history as both watchers saw it: the first put with its value, the second with the
    // first as its previous version.
    let lines = |w: &Running| {
        (0..8)
            .filter_map(|_| w.line_bytes(std::time::Duration::from_secs(10)))
            .collect::<Vec<_>>()
    };
    let (seen_r, seen_o) = (lines(&wr), lines(&wo));
    assert_eq!(seen_r.len(), 8, "{seen_r:?}");
    assert_eq!(seen_r[1], key);
    assert_eq!(seen_o, seen_r);
}
