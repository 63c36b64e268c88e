//! Auth: users, roles, permissions and tokens. The same etcdctl script runs four ways — real
//! etcdctl 3.4.23 on real etcd (the referee), real etcdctl on retcd, our etcdctl on retcd and
//! on real etcd — and every output must be the same.

use std::path::Path;

use retcd_tests::*;

const SCRIPT: &[Step] = &[
    (&["user", "add", "root:rootpw"], None),
    (&["user", "add", "alice:apw"], None),
    (&["user", "add", "alice:x"], None),
    (&["user", "add", ":x"], None),
    (&["user", "add"], None),
    (&["user", "add", "bob", "--new-user-password=bpw"], None),
    (&["user", "add", "carol", "--no-password"], None),
    (&["role", "add", "reader"], None),
    (&["role", "add", "reader"], None),
    (&["role", "add", "writer"], None),
    (
        &[
            "role",
            "grant-permission",
            "reader",
            "READ",
            "/app/",
            "--prefix",
        ],
        None,
    ),
    (
        &["role", "grant-permission", "reader", "readwrite", "/x"],
        None,
    ),
    (
        &["role", "grant-permission", "reader", "write", "/y", "/z"],
        None,
    ),
    (&["role", "grant-permission", "reader", "bogus", "/y"], None),
    (
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "/q",
            "--from-key",
        ],
        None,
    ),
    (
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "/a",
            "/b",
            "--prefix",
        ],
        None,
    ),
    (&["role", "grant-permission", "reader"], None),
    (&["role", "grant-permission", "nosuch", "read", "/k"], None),
    (
        &[
            "role",
            "grant-permission",
            "writer",
            "write",
            "/app/",
            "--prefix",
        ],
        None,
    ),
    (&["role", "get", "reader"], None),
    (&["role", "get", "reader", "-w", "json"], None),
    (&["role", "get", "nosuch"], None),
    (&["user", "grant-role", "alice", "reader"], None),
    (&["user", "grant-role", "alice", "reader"], None),
    (&["user", "grant-role", "alice", "nosuch"], None),
    (&["user", "grant-role", "nobody", "reader"], None),
    (&["user", "grant-role", "bob", "writer"], None),
    (&["user", "get", "alice"], None),
    (&["user", "get", "alice", "-w", "json"], None),
    (&["user", "get", "alice", "--detail"], None),
    (&["user", "get", "nobody"], None),
    (&["user", "list"], None),
    (&["role", "list"], None),
    (&["role", "list", "-w", "json"], None),
    (&["auth", "enable"], None),
    (&["put", "/app/a", "1"], None),
    (&["get", "/app/a"], None),
    (&["--user", "root:rootpw", "put", "/app/a", "1"], None),
    (&["--user", "root:rootpw", "put", "/x", "x"], None),
    (&["--user", "alice:apw", "get", "/app/a"], None),
    (
        &[
            "--user",
            "alice:apw",
            "get",
            "/app/",
            "--prefix",
            "--keys-only",
        ],
        None,
    ),
    (&["--user", "alice:apw", "get", "/", "--prefix"], None),
    (&["--user", "alice:apw", "put", "/app/a", "2"], None),
    (&["--user", "alice:apw", "put", "/x", "2"], None),
    (
        &["--user", "alice:apw", "put", "/x", "3", "--prev-kv"],
        None,
    ),
    (&["--user", "alice:apw", "del", "/x"], None),
    (&["--user", "bob:bpw", "put", "/app/b", "b"], None),
    (&["--user", "bob:bpw", "get", "/app/b"], None),
    (
        &["--user", "bob:bpw", "put", "/app/c", "c", "--prev-kv"],
        None,
    ),
    (&["--user", "alice:badpw", "get", "/app/a"], None),
    (&["--user", "nobody:x", "get", "/app/a"], None),
    (&["--user", "carol:x", "get", "/app/a"], None),
    (
        &["--user", "alice", "--password", "apw", "get", "/app/a"],
        None,
    ),
    (&["--user", "alice:apw", "user", "list"], None),
    (&["--user", "alice:apw", "user", "get", "alice"], None),
    (&["--user", "alice:apw", "user", "get", "bob"], None),
    (&["--user", "alice:apw", "role", "get", "reader"], None),
    (&["--user", "alice:apw", "role", "get", "writer"], None),
    (&["--user", "alice:apw", "defrag"], None),
    (&["--user", "root:rootpw", "user", "get", "root"], None),
    (
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/x",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/x",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/y",
            "/z",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/q",
            "--from-key",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/app/",
            "--prefix",
        ],
        None,
    ),
    (&["--user", "alice:apw", "get", "/app/a"], None),
    (
        &[
            "--user",
            "root:rootpw",
            "user",
            "revoke-role",
            "alice",
            "reader",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "user",
            "revoke-role",
            "alice",
            "reader",
        ],
        None,
    ),
    (&["--user", "root:rootpw", "user", "delete", "root"], None),
    (&["--user", "root:rootpw", "role", "delete", "root"], None),
    (
        &[
            "--user",
            "root:rootpw",
            "user",
            "revoke-role",
            "root",
            "root",
        ],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "user",
            "passwd",
            "bob",
            "--interactive=false",
        ],
        Some("newpw\n"),
    ),
    (&["--user", "bob:bpw", "get", "/app/b"], None),
    (&["--user", "bob:newpw", "get", "/app/b"], None),
    (&["--user", "root:rootpw", "user", "delete", "alice"], None),
    (&["--user", "root:rootpw", "user", "delete", "alice"], None),
    (&["--user", "root:rootpw", "role", "delete", "writer"], None),
    (&["--user", "root:rootpw", "user", "get", "bob"], None),
    (&["--user", "root:rootpw", "auth", "disable"], None),
    (&["get", "/app/a"], None),
    (&["auth", "disable"], None),
    (&["user", "list"], None),
];

fn script(ctl: &Path, flavor: Flavor) -> Vec<Outcome> {
    let m = Member::start(flavor);
    run_steps(ctl, &m.endpoint(), SCRIPT)
}

fn compare(name: &str, expected: &[Outcome], got: &[Outcome]) {
    let d = differences(expected, got, "referee", name);
    assert!(d.is_empty(), "{name}:\n{}", d.join("\n"));
}

#[test]
fn auth_script_is_identical_on_etcd_and_retcd_with_either_etcdctl() {
    let referee = script(&real_etcdctl(), Flavor::RealEtcd);
    // etcd 3.4 reports a non-admin defrag with its raw auth error; 3.5 and retcd with
    // etcd's gRPC error. Everything else is identical.
    let skip = |v: &[Outcome]| -> Vec<Outcome> {
        v.iter()
            .filter(|o| !o.0.contains("defrag"))
            .cloned()
            .collect()
    };
    compare(
        "real etcdctl on retcd",
        &skip(&referee),
        &skip(&script(&real_etcdctl(), Flavor::Retcd)),
    );
    compare(
        "our etcdctl on retcd",
        &skip(&referee),
        &skip(&script(&our_etcdctl(), Flavor::Retcd)),
    );
    compare(
        "our etcdctl on real etcd",
        &skip(&referee),
        &skip(&script(&our_etcdctl(), Flavor::RealEtcd)),
    );
}

#[test]
fn auth_status_and_tokens_work_on_every_member() {
    let c = Cluster::start(Flavor::Retcd, 3);
    let (e0, e2) = (c.members[0].endpoint(), c.members[2].endpoint());
    let ours = our_etcdctl();
    for args in [
        vec!["user", "add", "root:pw"],
        vec!["user", "grant-role", "root", "root"],
        vec!["auth", "enable"],
    ] {
        let o = run_ctl(&ours, &e0, &args, None);
        assert!(o.status.success(), "{args:?}: {}", err_lines(&o));
    }
    let st = run_ctl(&ours, &e2, &["--user", "root:pw", "auth", "status"], None);
    assert_eq!(out(&st), "Authentication Status: true\nAuthRevision: 2\n");
    let o = run_ctl(&ours, &e2, &["auth", "status"], None);
    assert_eq!(err_lines(&o), "Error: etcdserver: user name is empty\n");
    // A token from one member works on another (tokens are assigned through raft).
    let eps = format!("{e2},{e0}");
    let o = run_ctl(&ours, &eps, &["--user", "root:pw", "put", "k", "v"], None);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    // The auth store survives restarts.
    let mut c = c;
    c.members[1].restart();
    let o = run_ctl(
        &ours,
        &c.members[1].endpoint(),
        &["--user", "root:pw", "get", "k", "--print-value-only"],
        None,
    );
    assert_eq!(out(&o), "v\n", "{}", err_lines(&o));
    let o = run_ctl(&ours, &c.members[1].endpoint(), &["get", "k"], None);
    assert_eq!(err_lines(&o), "Error: etcdserver: user name is empty\n");
}

/// etcdctl's lock and elect with auth on. They are client-side recipes (KV, watch, leases),
/// so the KV permissions apply: a contender needs read access to the name's prefix and write
/// access to its own key. (The Lock and Election services: tests/concurrency.rs.)
const LOCK_SCRIPT: &[Step] = &[
    (
        &["--user", "dan:dpw", "lock", "/locks/a", "echo", "locked"],
        None,
    ),
    (
        &["--user", "eve:epw", "lock", "/locks/a", "echo", "locked"],
        None,
    ),
    (&["--user", "dan:dpw", "lock", "/other", "echo", "x"], None),
    (&["lock", "/locks/a", "echo", "x"], None),
    (&["--user", "dan:dpw", "elect", "/other", "v"], None),
    (&["--user", "eve:epw", "elect", "/locks/e", "v"], None),
    (
        &["--user", "root:rootpw", "lock", "/other", "echo", "rootok"],
        None,
    ),
    (
        &[
            "--user",
            "root:rootpw",
            "get",
            "/",
            "--prefix",
            "--keys-only",
        ],
        None,
    ),
];

#[test]
fn etcdctl_lock_and_elect_follow_the_kv_permissions() {
    let run = |ctl: &Path, flavor| {
        let m = Member::start(flavor);
        let mut o = run_steps(ctl, &m.endpoint(), LOCK_USERS);
        o.extend(run_steps(ctl, &m.endpoint(), LOCK_SCRIPT));
        o
    };
    let referee = run(&real_etcdctl(), Flavor::RealEtcd);
    let n = LOCK_USERS.len();
    assert_eq!(
        referee[n].2, "locked\n",
        "the referee's lock: {:?}",
        referee[n]
    );
    assert_eq!(referee[n + 1].3, "Error: etcdserver: permission denied\n");
    compare(
        "real etcdctl on retcd",
        &referee,
        &run(&real_etcdctl(), Flavor::Retcd),
    );
    compare(
        "our etcdctl on retcd",
        &referee,
        &run(&our_etcdctl(), Flavor::Retcd),
    );
}
