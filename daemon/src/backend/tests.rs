//! Backend tests.

use super::*;

/// A new database starts with full-size logs, the one in use and one ready for reuse, none
/// of the filler left, and a size that does not count the logs.
#[test]
fn a_new_database_has_a_primed_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let b = Backend::open(dir.path(), None, true).unwrap();
    let logs: Vec<u64> = std::fs::read_dir(&b.path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert_eq!(
        logs.iter()
            .filter(|n| **n >= u64::from(WAL_PRIME_MIB) << 20)
            .count(),
        WAL_PRIME_LOGS as usize,
        "logs: {logs:?}"
    );
    let cf = b.db.cf_handle("default").unwrap();
    assert_eq!(
        b.db.iterator_cf(cf, rocksdb::IteratorMode::Start).count(),
        0
    );
    assert!(b.size_on_disk() < 1 << 20, "{}", b.size_on_disk());
    // Written and reopened: the data is there, nothing is primed again.
    let mut batch = WriteBatch::default();
    batch.put_cf(b.cf(CF_KV).unwrap(), b"k", b"v");
    b.write(batch, true).unwrap();
    drop(b);
    let b = Backend::open(dir.path(), None, true).unwrap();
    assert_eq!(
        b.db.get_cf(b.cf(CF_KV).unwrap(), b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
