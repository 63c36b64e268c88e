//! The `etcd-client` crate (tonic) against retcd: KV semantics, history, errors and codes.

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse,
};
use retcd_tests::*;

async fn client(m: &Member) -> Client {
    Client::connect([m.client_url()], None)
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_semantics_through_etcd_client() {
    let m = Member::start(Flavor::Retcd);
    let mut c = client(&m).await;

    let r = c.put("a", "1", None).await.unwrap();
    assert_eq!(r.header().unwrap().revision(), 2);
    c.put("b", "2", None).await.unwrap();
    c.put("c", "3", None).await.unwrap();
    let r = c
        .put("a", "10", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(r.prev_key().unwrap().value(), b"1");
    assert_eq!(r.header().unwrap().revision(), 5);

    let g = c.get("a", None).await.unwrap();
    let kv = &g.kvs()[0];
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (2, 5, 2)
    );
    assert_eq!(g.header().unwrap().revision(), 5);

    // History.
    let g = c
        .get("a", Some(GetOptions::new().with_revision(3)))
        .await
        .unwrap();
    assert_eq!(g.kvs()[0].value(), b"1");
    assert_eq!(g.header().unwrap().revision(), 5);

    // Sorting, limits, count.
    let g = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Value, SortOrder::Descend)
                    .with_limit(2),
            ),
        )
        .await
        .unwrap();
    let vals: Vec<&[u8]> = g.kvs().iter().map(|kv| kv.value()).collect();
    assert_eq!(vals, vec![&b"3"[..], b"2"]);
    assert!(g.more());
    assert_eq!(g.count(), 3);
    let g = c
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((g.count(), g.kvs().len()), (3, 0));
    let g = c
        .get("", Some(GetOptions::new().with_all_keys().with_keys_only()))
        .await
        .unwrap();
    assert!(g.kvs().iter().all(|kv| kv.value().is_empty()));
    let g = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_min_mod_revision(3)
                    .with_max_mod_revision(4),
            ),
        )
        .await
        .unwrap();
    let keys: Vec<&[u8]> = g.kvs().iter().map(|kv| kv.key()).collect();
    assert_eq!(keys, vec![&b"b"[..], b"c"]);

    // Txn: compare-and-swap.
    let t = Txn::new()
        .when([Compare::mod_revision("a", CompareOp::Equal, 5)])
        .and_then([TxnOp::put("a", "cas", None), TxnOp::get("a", None)])
        .or_else([TxnOp::get("a", None)]);
    let r = c.txn(t).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(r.header().unwrap().revision(), 6);
    match &r.op_responses()[1] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"cas"),
        other => panic!("unexpected {other:?}"),
    }
    let t = Txn::new()
        .when([Compare::mod_revision("a", CompareOp::Equal, 5)])
        .and_then([TxnOp::put("a", "lost", None)]);
    let r = c.txn(t).await.unwrap();
    assert!(!r.succeeded());
    assert_eq!(r.header().unwrap().revision(), 6);

    // Delete range with prev kvs; deleting nothing keeps the revision.
    let d = c
        .delete(
            "a",
            Some(DeleteOptions::new().with_range("c").with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(d.deleted(), 2);
    assert_eq!(d.prev_kvs().len(), 2);
    assert_eq!(d.header().unwrap().revision(), 7);
    let d = c.delete("zzz", None).await.unwrap();
    assert_eq!((d.deleted(), d.header().unwrap().revision()), (0, 7));

    // Compaction and its errors.
    c.compact(4, None).await.unwrap();
    let e = c
        .get("a", Some(GetOptions::new().with_revision(3)))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("required revision has been compacted"),
        "{e}"
    );
    let e = c.compact(3, None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("required revision has been compacted"),
        "{e}"
    );
    let e = c.compact(1000, None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("required revision is a future revision"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_etcd_codes() {
    let m = Member::start(Flavor::Retcd);
    let mut c = client(&m).await;
    let code = |e: etcd_client::Error| match e {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("not a gRPC status: {other}"),
    };
    let e = c.put("", "v", None).await.unwrap_err();
    assert_eq!(
        code(e),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: key is not provided".into()
        )
    );
    let e = c
        .get("x", Some(GetOptions::new().with_revision(99)))
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision".into()
        )
    );
    let e = c
        .put("x", "v", Some(PutOptions::new().with_lease(7)))
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (
            tonic::Code::NotFound,
            "etcdserver: requested lease not found".into()
        )
    );
    let dup = Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]);
    let e = c.txn(dup).await.unwrap_err();
    assert_eq!(
        code(e),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: duplicate key given in txn request".into()
        )
    );
    // Nested txns: then/else of one nested txn may write the same key.
    let nested = Txn::new().and_then([TxnOp::txn(
        Txn::new()
            .and_then([TxnOp::put("n", "then", None)])
            .or_else([TxnOp::put("n", "else", None)]),
    )]);
    let r = c.txn(nested).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(c.get("n", None).await.unwrap().kvs()[0].value(), b"then");
    // Auth is off: user management works, nobody is listed yet.
    let users = c.user_list().await.unwrap();
    assert!(users.users().is_empty());
    let st = c.status().await.unwrap();
    assert_eq!(st.leader(), st.header().unwrap().member_id());
    assert!(st.version().starts_with("3.5."));
}

/// A nested txn's answer against `flavor`: (the outer header's revision, whether the nested
/// txn's header is there, its revision, the revision in the header of the put inside it).
async fn nested_txn_headers(flavor: Flavor) -> (i64, bool, i64, i64) {
    let m = Member::start(flavor);
    let mut c = client(&m).await;
    c.put("a", "1", None).await.unwrap();
    let nested = Txn::new().and_then([
        TxnOp::get("a", None),
        TxnOp::txn(Txn::new().and_then([TxnOp::put("n", "v", None)])),
    ]);
    let r = c.txn(nested).await.unwrap();
    let outer = r.header().unwrap().revision();
    let Some(TxnOpResponse::Txn(inner)) = r.op_responses().into_iter().nth(1) else {
        panic!("no nested txn response: {r:?}");
    };
    let put_rev = match inner.op_responses().into_iter().next() {
        Some(TxnOpResponse::Put(p)) => p.header().map_or(-1, |h| h.revision()),
        other => panic!("no put response in the nested txn: {other:?}"),
    };
    (
        outer,
        inner.header().is_some(),
        inner.header().map_or(-1, |h| h.revision()),
        put_rev,
    )
}

/// etcd fills only the outer header of a txn (and each put's, delete's and range's revision):
/// a nested txn answers with an empty header. The same from real etcd and retcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_txn_answers_with_an_empty_header_as_etcds_does() {
    let referee = nested_txn_headers(Flavor::RealEtcd).await;
    assert_eq!(referee, (3, true, 0, 3));
    assert_eq!(nested_txn_headers(Flavor::Retcd).await, referee);
}

/// HashKV against `flavor` after the same writes (no leases: their IDs differ): (revision
/// asked, hash, compact revision) before and after a compaction.
async fn hashes(flavor: Flavor) -> Vec<(i64, u32, i64)> {
    let m = Member::start(flavor);
    let mut c = client(&m).await;
    c.put("a", "1", None).await.unwrap();
    c.put("b", "2", None).await.unwrap();
    c.put("a", "3", None).await.unwrap();
    c.delete("b", None).await.unwrap();
    let t = Txn::new().and_then([TxnOp::put("c", "4", None), TxnOp::delete("a", None)]);
    c.txn(t).await.unwrap();
    c.put("d", vec![7u8; 300], None).await.unwrap();
    let mut got = Vec::new();
    for rev in [0, 3, 6] {
        let h = c.hash_kv(rev).await.unwrap();
        got.push((rev, h.hash(), h.compact_version()));
    }
    c.compact(4, None).await.unwrap();
    for rev in [0, 5, 6] {
        let h = c.hash_kv(rev).await.unwrap();
        got.push((rev, h.hash(), h.compact_version()));
    }
    // Not at the compaction revision itself.
    let e = c.hash_kv(4).await.unwrap_err().to_string();
    assert!(e.contains("required revision has been compacted"), "{e}");
    // Every key deleted (rev 9), then compacted between: no key is live at 8 or later.
    c.put("e", "5", None).await.unwrap();
    c.delete("", Some(DeleteOptions::new().with_all_keys()))
        .await
        .unwrap();
    c.compact(8, None).await.unwrap();
    // etcd removes compacted revisions in the background, and with no key live it hashes
    // whatever is still there: let it finish.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for rev in [0, 9] {
        let h = c.hash_kv(rev).await.unwrap();
        got.push((rev, h.hash(), h.compact_version()));
    }
    c.put("f", "6", None).await.unwrap();
    let h = c.hash_kv(0).await.unwrap();
    got.push((0, h.hash(), h.compact_version()));
    got
}

/// HashKV hashes what etcd hashes, the way etcd does (its bucket's name, then each revision
/// as bbolt holds it), so a cluster restored from an etcd snapshot can be checked against the
/// etcd cluster it came from; the compact revision is -1 before the first compaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_kv_matches_etcds() {
    let referee = hashes(Flavor::RealEtcd).await;
    assert_eq!(referee[0].2, -1);
    assert_eq!(referee[3].2, 4);
    assert_eq!(referee[6].2, 8);
    assert_eq!(hashes(Flavor::Retcd).await, referee);
}
