//! Counters exported on `/metrics` under etcd's metric names.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub proposals_failed: AtomicU64,
    pub proposals_pending: AtomicU64,
    pub range_total: AtomicU64,
    pub put_total: AtomicU64,
    pub delete_total: AtomicU64,
    pub txn_total: AtomicU64,
    /// AppendEntries received over raft streams (retcd only).
    pub stream_appends_received: AtomicU64,
    /// Forwarded writes received over raft streams (retcd only).
    pub stream_proposals_received: AtomicU64,
}

impl Metrics {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
