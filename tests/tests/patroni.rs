//! Debian's Patroni drives its etcd v3 DCS over the JSON gateway: initialize the cluster
//! key, register a member, take, update and give up leadership (leases, txns), config, and the
//! watcher thread. The same steps print the same against real etcd 3.4.23 and retcd.

use retcd_tests::*;

const SCRIPT: &str = r#"
import sys, logging, time
logging.basicConfig(level=logging.WARNING)
from patroni.dcs.etcd3 import Etcd3
cfg = {'hosts': ['127.0.0.1:%s' % sys.argv[1]], 'scope': 'batman', 'name': 'n1', 'ttl': 30,
       'retry_timeout': 10, 'loop_wait': 10, 'namespace': '/service/'}
dcs = Etcd3(cfg)
print("initialize", dcs.initialize(create_new=True, sysid="12345"))
print("initialize again", dcs.initialize(create_new=True, sysid="12345"))
print("touch", dcs.touch_member({'conn_url': 'postgres://127.0.0.1:5432/postgres', 'api_url': 'http://127.0.0.1:8008/patroni', 'state': 'running', 'role': 'master'}))
print("acquire", dcs.attempt_to_acquire_leader())
print("config", dcs.set_config_value('{"ttl": 30}'))
c = dcs.get_cluster(force=True)
print("cluster", c.initialize, c.leader and c.leader.name, [m.name for m in c.members], c.config and c.config.data)
print("update", dcs.update_leader(None))
print("refresh", dcs.refresh_lease())
print("delete", dcs.delete_leader())
c = dcs.get_cluster(force=True)
print("after", c.leader, [m.name for m in c.members])
print("cancel", dcs.cancel_initialization())
c = dcs.get_cluster(force=True)
print("final", c.initialize)
"#;

#[test]
fn patroni_runs_its_etcd3_dcs_on_retcd_as_on_etcd() {
    let want = python_against(Flavor::RealEtcd, SCRIPT);
    assert!(
        want.contains("cluster 12345 n1 ['n1'] {'ttl': 30}\n"),
        "{want}"
    );
    assert_eq!(python_against(Flavor::Retcd, SCRIPT), want);
}
