use std::sync::Arc;

use super::*;
use crate::api::etcdserverpb::{compare, CompactionRequest, RangeRequest};
use crate::backend::{Backend, CF_KV};
use crate::lease::Lessor;
use crate::mvcc::Store;

fn store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(Backend::open(dir.path(), None, false).unwrap());
    (dir, Arc::new(Store::open(b).unwrap()))
}

fn run(s: &Store, r: internal_request::Request) -> Result<internal_response::Response, EtcdError> {
    let mut txn = s.write();
    let out = apply(
        &mut txn,
        InternalRequest {
            request: Some(r),
            ..Default::default()
        },
        &Lessor::default(),
        &crate::alarm::Alarms::default(),
        &crate::auth::AuthStore::new(std::time::Duration::from_secs(300)),
    );
    txn.commit().unwrap();
    out.map(|r| r.response.unwrap())
}

fn put(s: &Store, k: &str, v: &str) -> i64 {
    match run(
        s,
        internal_request::Request::Put(PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        }),
    )
    .unwrap()
    {
        internal_response::Response::Put(p) => p.header.unwrap().revision,
        other => panic!("{other:?}"),
    }
}

fn get(s: &Store, k: &str, rev: i64) -> Result<Vec<(String, i64, i64, i64)>, EtcdError> {
    let view = s.read();
    let r = execute_range(
        &view,
        &RangeRequest {
            key: k.into(),
            revision: rev,
            ..Default::default()
        },
    )?;
    Ok(r.kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8(kv.value).unwrap(),
                kv.create_revision,
                kv.mod_revision,
                kv.version,
            )
        })
        .collect())
}

#[test]
fn revisions_versions_and_tombstones() {
    let (_d, s) = store();
    assert_eq!(s.current_rev(), 1);
    assert_eq!(put(&s, "a", "1"), 2);
    assert_eq!(put(&s, "a", "2"), 3);
    assert_eq!(get(&s, "a", 0).unwrap(), vec![("2".into(), 2, 3, 2)]);
    assert_eq!(get(&s, "a", 2).unwrap(), vec![("1".into(), 2, 2, 1)]);
    let del = |k: &str| match run(
        &s,
        internal_request::Request::DeleteRange(DeleteRangeRequest {
            key: k.into(),
            ..Default::default()
        }),
    )
    .unwrap()
    {
        internal_response::Response::DeleteRange(d) => (d.deleted, d.header.unwrap().revision),
        other => panic!("{other:?}"),
    };
    assert_eq!(del("a"), (1, 4));
    assert_eq!(del("a"), (0, 4), "deleting nothing keeps the revision");
    assert_eq!(get(&s, "a", 0).unwrap(), vec![]);
    assert_eq!(put(&s, "a", "3"), 5);
    assert_eq!(get(&s, "a", 0).unwrap(), vec![("3".into(), 5, 5, 1)]);
    assert_eq!(get(&s, "a", 6), Err(EtcdError::FutureRev));
}

#[test]
fn txn_shares_one_revision_and_sees_its_writes() {
    let (_d, s) = store();
    put(&s, "x", "0");
    let t = TxnRequest {
        compare: vec![Compare {
            key: "x".into(),
            target: compare::CompareTarget::Value as i32,
            result: compare::CompareResult::Equal as i32,
            target_union: Some(compare::TargetUnion::Value("0".into())),
            ..Default::default()
        }],
        success: vec![
            RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: "y".into(),
                    value: "1".into(),
                    ..Default::default()
                })),
            },
            RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: "y".into(),
                    ..Default::default()
                })),
            },
            RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: "z".into(),
                    value: "2".into(),
                    ..Default::default()
                })),
            },
        ],
        failure: vec![],
    };
    let r = match run(&s, internal_request::Request::Txn(t)).unwrap() {
        internal_response::Response::Txn(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(r.succeeded);
    assert_eq!(r.header.unwrap().revision, 3);
    match &r.responses[1].response {
        Some(response_op::Response::ResponseRange(rr)) => {
            assert_eq!(rr.kvs[0].value, b"1");
            assert_eq!(rr.header.as_ref().unwrap().revision, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&s, "y", 0).unwrap(), vec![("1".into(), 3, 3, 1)]);
    assert_eq!(get(&s, "z", 0).unwrap(), vec![("2".into(), 3, 3, 1)]);
    assert_eq!(s.current_rev(), 3);
}

#[test]
fn compaction_removes_old_versions_physically() {
    let (_d, s) = store();
    for i in 0..5 {
        put(&s, "k", &i.to_string());
    }
    put(&s, "gone", "x");
    run(
        &s,
        internal_request::Request::DeleteRange(DeleteRangeRequest {
            key: "gone".into(),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(s.current_rev(), 8);
    let count = |s: &Store| {
        let b = s.backend();
        b.db.iterator_cf(b.cf(CF_KV).unwrap(), rocksdb::IteratorMode::Start)
            .count()
    };
    assert_eq!(count(&s), 7);
    run(
        &s,
        internal_request::Request::Compaction(CompactionRequest {
            revision: 8,
            physical: true,
        }),
    )
    .unwrap();
    // Only the newest version of "k" survives; "gone" and its tombstone are removed.
    assert_eq!(count(&s), 1);
    assert_eq!(get(&s, "k", 0).unwrap(), vec![("4".into(), 2, 6, 5)]);
    assert_eq!(get(&s, "k", 7), Err(EtcdError::Compacted));
    assert_eq!(get(&s, "k", 8).unwrap().len(), 1);
    assert_eq!(
        run(
            &s,
            internal_request::Request::Compaction(CompactionRequest {
                revision: 8,
                physical: false
            })
        ),
        Err(EtcdError::Compacted)
    );
    // A restart rebuilds the same index.
    let b = s.backend().clone();
    drop(s);
    let s2 = Store::open(b).unwrap();
    assert_eq!(s2.current_rev(), 8);
    assert_eq!(s2.compact_rev(), 8);
    assert_eq!(get(&s2, "k", 0).unwrap(), vec![("4".into(), 2, 6, 5)]);
    assert_eq!(put(&s2, "k", "5"), 9);
    assert_eq!(get(&s2, "k", 0).unwrap(), vec![("5".into(), 2, 9, 6)]);
}
