//! Micro-benchmarks of the MVCC apply and range paths (criterion): applying batches of puts
//! as the state machine does (one write transaction per applied batch), and ranges on a read
//! view. Regressions show up here before they show up in etcd-bench.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use retcd::api::etcdserverpb::{PutRequest, RangeRequest};
use retcd::api::retcdpb::{internal_request, InternalRequest};
use retcd::apply::{apply, execute_range};
use retcd::mvcc::Store;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    leases: retcd::lease::Lessor,
    alarms: retcd::alarm::Alarms,
    auth: retcd::auth::AuthStore,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        Arc::new(retcd::backend::Backend::open(dir.path(), None, false).expect("backend"));
    World {
        store: Store::open(backend).expect("store"),
        _dir: dir,
        leases: retcd::lease::Lessor::load(Vec::new(), Vec::new()),
        alarms: retcd::alarm::Alarms::load(Vec::new()),
        auth: retcd::auth::AuthStore::new(Duration::from_secs(300)),
    }
}

fn put(key: Vec<u8>, value: &[u8]) -> InternalRequest {
    InternalRequest {
        request: Some(internal_request::Request::Put(PutRequest {
            key,
            value: value.to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Applies `n` puts (keys `start..start+n` of `space`) in one write transaction.
fn apply_batch(w: &World, start: usize, n: usize, space: usize, value: &[u8]) {
    let mut txn = w.store.write();
    for i in start..start + n {
        let key = format!("key/{:08}", i % space).into_bytes();
        apply(&mut txn, put(key, value), &w.leases, &w.alarms, &w.auth).expect("apply");
    }
    txn.commit().expect("commit");
}

fn apply_puts(c: &mut Criterion) {
    let w = world();
    let value = vec![7u8; 256];
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(100));
    let mut next = 0;
    g.bench_function("put x100 per batch, 256-byte values, 100k keys", |b| {
        b.iter(|| {
            apply_batch(&w, next, 100, 100_000, &value);
            next += 100;
        })
    });
    g.finish();
}

fn ranges(c: &mut Criterion) {
    let w = world();
    let value = vec![7u8; 256];
    for start in (0..10_000).step_by(500) {
        apply_batch(&w, start, 500, 10_000, &value);
    }
    let mut g = c.benchmark_group("range");
    let one = RangeRequest {
        key: b"key/00005000".to_vec(),
        ..Default::default()
    };
    g.bench_function("one key of 10k", |b| {
        b.iter(|| execute_range(&w.store.read(), &one).expect("range"))
    });
    let hundred = RangeRequest {
        key: b"key/00001".to_vec(),
        range_end: b"key/00002".to_vec(),
        ..Default::default()
    };
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 keys of 10k", |b| {
        b.iter_batched(
            || hundred.clone(),
            |r| execute_range(&w.store.read(), &r).expect("range"),
            BatchSize::SmallInput,
        )
    });
    let count = RangeRequest {
        key: b"key/".to_vec(),
        range_end: b"key0".to_vec(),
        count_only: true,
        ..Default::default()
    };
    g.bench_function("count of 10k", |b| {
        b.iter(|| execute_range(&w.store.read(), &count).expect("range"))
    });
    g.finish();
}

criterion_group!(benches, apply_puts, ranges);
criterion_main!(benches);
