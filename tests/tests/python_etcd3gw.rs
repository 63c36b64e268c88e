//! Debian's python etcd3gw client (it talks to etcd's JSON gateway, `/v3/...`): the same
//! script prints the same against real etcd 3.4.23 and against retcd — KV, create and replace
//! (txn), prefixes, leases with their keys, a watch, a lock, members, status, an error.

use retcd_tests::*;

const SCRIPT: &str = r#"
import sys, threading, time
from etcd3gw.client import Etcd3Client
c = Etcd3Client(host="127.0.0.1", port=int(sys.argv[1]), api_path="/v3/")
print("put", c.put("/gw/a", "1"))
print("get", c.get("/gw/a"))
print("meta", [(v, m["key"], m["create_revision"], m["mod_revision"], m["version"]) for v, m in c.get("/gw/a", metadata=True)])
print("create", c.create("/gw/a", "2"), c.create("/gw/b", "2"))
print("replace", c.replace("/gw/a", "1", "3"), c.replace("/gw/a", "1", "4"))
print("prefix", c.get_prefix("/gw/"))
print("all", c.get_all())
lease = c.lease(ttl=30)
c.put("/gw/leased", "v", lease=lease)
print("lease", lease.ttl() in (29, 30), lease.refresh() in (29, 30), lease.keys())
print("revoke", lease.revoke(), c.get("/gw/leased"))
events, cancel = c.watch("/gw/w")
got = []
def consume():
    for e in events:
        got.append((e.get("type", "PUT"), e["kv"]["key"], e["kv"].get("value")))
        if len(got) == 2:
            break
t = threading.Thread(target=consume); t.start(); time.sleep(0.5)
c.put("/gw/w", "x"); c.delete("/gw/w")
t.join(10); cancel()
print("watch", got)
lk = c.lock(ttl=10)
print("lock", lk.acquire(), lk.is_acquired(), lk.release(), lk.is_acquired())
print("delete", c.delete("/gw/a"), c.delete("/gw/a"), c.delete_prefix("/gw/"))
print("members", [m["name"] for m in c.members()])
print("status", sorted(c.status().keys()))
try:
    c.get("")
except Exception as e:
    print("error", type(e).__name__, e)
"#;

#[test]
fn python_etcd3gw_prints_the_same_against_etcd_and_retcd() {
    let want = python_against(Flavor::RealEtcd, SCRIPT);
    assert!(
        want.contains("watch [('PUT', b'/gw/w', b'x'), ('DELETE', b'/gw/w', None)]\n"),
        "{want}"
    );
    assert!(
        want.ends_with("error Etcd3Exception Bad Request\n"),
        "{want}"
    );
    assert_eq!(python_against(Flavor::Retcd, SCRIPT), want);
}
