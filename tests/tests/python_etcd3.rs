//! Debian's python etcd3 client (grpc) against retcd: KV, txn, watch, leases, locks.

use std::process::Command;

use retcd_tests::*;

const SCRIPT: &str = r#"
import sys, threading, time, etcd3
c = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]))
c.put("/py/a", "1")
v, meta = c.get("/py/a")
print("get", v.decode(), meta.create_revision, meta.version)
ok, _ = c.transaction(compare=[c.transactions.value("/py/a") == "1"],
                      success=[c.transactions.put("/py/a", "2")], failure=[])
print("txn", ok, c.get("/py/a")[0].decode())
events = []
it, cancel = c.watch_prefix("/py/w")
def consume():
    for e in it:
        events.append((type(e).__name__, e.key.decode()))
        if len(events) == 2:
            break
t = threading.Thread(target=consume); t.start()
time.sleep(0.5)
c.put("/py/w1", "x"); c.delete("/py/w1")
t.join(10); cancel()
print("watch", events)
lease = c.lease(30)
c.put("/py/leased", "v", lease=lease)
print("lease", lease.ttl, lease.granted_ttl, [k.decode() for k in lease.keys])
lease.revoke()
print("revoked", c.get("/py/leased")[0])
with c.lock("pylock", ttl=10) as lk:
    print("locked", lk.is_acquired())
print("prefix", sorted(m.key.decode() for _, m in c.get_prefix("/py/")))
"#;

#[test]
fn python_etcd3_client_works() {
    let m = Member::start(Flavor::Retcd);
    let o = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, &m.client_port.to_string()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "get 1 2 1");
    assert_eq!(lines[1], "txn True 2");
    assert_eq!(
        lines[2],
        "watch [('PutEvent', '/py/w1'), ('DeleteEvent', '/py/w1')]"
    );
    assert!(
        lines[3].starts_with("lease 29 30 ['/py/leased']")
            || lines[3].starts_with("lease 30 30 ['/py/leased']"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "revoked None");
    assert_eq!(lines[5], "locked True");
    assert_eq!(lines[6], "prefix ['/py/a']");
}

/// What `script` prints (given the client port) against a fresh member of `flavor`.
fn script_output(script: &str, flavor: Flavor) -> String {
    let m = Member::start(flavor);
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script, &m.client_port.to_string()])
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Raw Watch streams (grpc through python etcd3's generated stubs): a stream whose client
/// half-closes after its create request, and a watch from a compacted revision. Prints each
/// response with the IDs that differ between servers left out.
const WATCH_STREAMS: &str = r#"
import sys, re, threading, time, etcd3
from etcd3.etcdrpc import rpc_pb2 as pb
c = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]))
stub = etcd3.etcdrpc.WatchStub(c.channel)
def show(r):
    s = str(r).replace("\n", " ")
    return re.sub(r"(cluster_id|member_id|raft_term): \d+", r"\1: N", s).strip()
def watch(create, n, then=None):
    def requests():
        yield pb.WatchRequest(create_request=create)
    out = []
    it = stub.Watch(requests(), timeout=5)
    if then:
        threading.Timer(0.5, then).start()
    try:
        for r in it:
            out.append(show(r))
            if len(out) == n:
                it.cancel()
                break
    except Exception as e:
        out.append("ended: %s" % e.code())
    return out
print("half-closed", watch(pb.WatchCreateRequest(key=b"h"), 2, lambda: c.put("h", "1")))
for i in range(3):
    c.put("w%d" % i, "v")
c.compact(4)
print("compacted", watch(pb.WatchCreateRequest(key=b"w", start_revision=2), 2))
"#;

/// A client that half-closes its Watch stream still gets its events (etcd serves the stream
/// until the client cancels it), and a watch from a compacted revision is canceled as etcd
/// cancels it (header without a revision, no cancel reason). The same from real etcd.
#[test]
fn raw_watch_streams_answer_as_etcds_do() {
    let referee = script_output(WATCH_STREAMS, Flavor::RealEtcd);
    assert!(
        referee.starts_with("half-closed ['header {   cluster_id: N   member_id: N   revision: 1   raft_term: N } created: true', 'header {   cluster_id: N   member_id: N   revision: 2   raft_term: N } events {   kv {     key: \"h\""),
        "{referee}"
    );
    assert_eq!(script_output(WATCH_STREAMS, Flavor::Retcd), referee);
}

/// Tokens through raw grpc metadata: a garbage token with auth off, and a user's token once
/// auth has been disabled since.
const STALE_TOKENS: &str = r#"
import sys, etcd3
from etcd3.etcdrpc import rpc_pb2 as pb
c = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]))
au = etcd3.etcdrpc.AuthStub(c.channel)
def show(name, f):
    try:
        f()
        print(name, "ok")
    except Exception as e:
        print(name, e.code(), e.details())
get = lambda t: c.kvstub.Range(pb.RangeRequest(key=b"a"), metadata=[("token", t)], timeout=5)
show("garbage token, auth never on", lambda: get("garbage"))
au.UserAdd(pb.AuthUserAddRequest(name="root", password="rp"))
au.UserGrantRole(pb.AuthUserGrantRoleRequest(user="root", role="root"))
au.UserAdd(pb.AuthUserAddRequest(name="u", password="up"))
au.AuthEnable(pb.AuthEnableRequest())
root = au.Authenticate(pb.AuthenticateRequest(name="root", password="rp")).token
user = au.Authenticate(pb.AuthenticateRequest(name="u", password="up")).token
show("user's token, auth on", lambda: get(user))
show("garbage token, auth on", lambda: get("garbage"))
au.AuthDisable(pb.AuthDisableRequest(), metadata=[("token", root)])
show("user's token after auth disable", lambda: get(user))
show("no token after auth disable", lambda: c.kvstub.Range(pb.RangeRequest(key=b"a")))
"#;

/// A request carrying a token has it checked even with auth off, as etcd does: tokens go
/// when auth is disabled, so a client still sending one is told it is invalid.
#[test]
fn stale_tokens_are_refused_as_etcd_refuses_them() {
    let referee = script_output(STALE_TOKENS, Flavor::RealEtcd);
    assert_eq!(
        referee,
        "garbage token, auth never on StatusCode.UNAUTHENTICATED etcdserver: invalid auth token\n\
         user's token, auth on StatusCode.PERMISSION_DENIED etcdserver: permission denied\n\
         garbage token, auth on StatusCode.UNAUTHENTICATED etcdserver: invalid auth token\n\
         user's token after auth disable StatusCode.UNAUTHENTICATED etcdserver: invalid auth token\n\
         no token after auth disable ok\n"
    );
    assert_eq!(script_output(STALE_TOKENS, Flavor::Retcd), referee);
}
