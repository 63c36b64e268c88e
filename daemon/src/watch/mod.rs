//! Watch: streams of MVCC events per key range (etcd's watchable store). The Watch service
//! answers UNIMPLEMENTED until this module lands (issue: watch, leases, locks and elections);
//! the apply path is where events will be published, after each committed batch.
