//! Leases: TTL-bound key ownership (etcd's lessor). Until this module lands no lease exists,
//! so a Put or Txn naming a lease fails with `etcdserver: requested lease not found`, exactly
//! as etcd answers for an unknown lease ([`crate::apply::NoLeases`]).
