//! Multi-version key-value store, as etcd's mvcc: every mutating request gets one main
//! revision (a txn's writes get sub-revisions), each key keeps create/mod revision and
//! version, deletes leave tombstones, history stays readable until compacted.
//!
//! Values live in RocksDB keyed by revision; the key -> revisions index is kept in memory
//! and rebuilt from RocksDB when the member starts.

mod key_index;
mod store;

pub use key_index::{KeyAt, KeyIndex};
pub use store::{
    etcd_record, record_key, RangeEnd, RangeOptions, RangeResult, ReadView, RevTxn, Store, WriteTxn,
};

/// A revision: `main` is the store revision of the request, `sub` orders writes within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    /// 16 bytes, big-endian main then sub: RocksDB orders them by revision.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        b[8..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Revision> {
        if b.len() != 16 {
            return None;
        }
        let main = u64::from_be_bytes(b[..8].try_into().ok()?) as i64;
        let sub = u64::from_be_bytes(b[8..].try_into().ok()?) as i64;
        Some(Revision { main, sub })
    }
}
