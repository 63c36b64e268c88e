//! Range with etcd's options: sort, limit + more, count, keys_only, revision filters.

use crate::api::etcdserverpb::{range_request, RangeRequest, RangeResponse, ResponseHeader};
use crate::api::mvccpb::KeyValue;
use crate::error::EtcdError;
use crate::mvcc::{RangeEnd, RangeOptions, RangeResult, ReadView, RevTxn};

/// Anything that can answer a plain MVCC range: the read view or a write txn.
pub trait RangeSource {
    fn mvcc_range(
        &self,
        key: &[u8],
        end: &RangeEnd,
        opts: RangeOptions,
    ) -> Result<RangeResult, EtcdError>;
}

impl RangeSource for ReadView<'_> {
    fn mvcc_range(
        &self,
        key: &[u8],
        end: &RangeEnd,
        opts: RangeOptions,
    ) -> Result<RangeResult, EtcdError> {
        self.range(key, end, opts)
    }
}

impl RangeSource for RevTxn<'_, '_> {
    fn mvcc_range(
        &self,
        key: &[u8],
        end: &RangeEnd,
        opts: RangeOptions,
    ) -> Result<RangeResult, EtcdError> {
        self.range(key, end, opts)
    }
}

/// Executes `r` against `src`, exactly as etcd's applier does.
pub fn execute_range(src: &impl RangeSource, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
    use range_request::{SortOrder, SortTarget};
    let target = SortTarget::try_from(r.sort_target).map_err(|_| EtcdError::InvalidSortOption)?;
    let requested = SortOrder::try_from(r.sort_order).map_err(|_| EtcdError::InvalidSortOption)?;
    // mvcc returns keys in ascending key order already.
    let order = match (target, requested) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (t, SortOrder::None) if t != SortTarget::Key => SortOrder::Ascend,
        (_, o) => o,
    };
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    let mut limit = r.limit;
    if requested != SortOrder::None || filtered {
        limit = 0;
    }
    if limit > 0 {
        limit += 1;
    }
    let end = RangeEnd::from_request(&r.range_end);
    let rr = src.mvcc_range(
        &r.key,
        &end,
        RangeOptions {
            limit,
            rev: r.revision,
            count_only: r.count_only,
        },
    )?;
    let mut kvs = rr.kvs;
    if r.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= r.max_mod_revision);
    }
    if r.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= r.min_mod_revision);
    }
    if r.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= r.max_create_revision);
    }
    if r.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= r.min_create_revision);
    }
    if order != SortOrder::None {
        let key_of = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, Vec::new()),
                SortTarget::Create => (kv.create_revision, Vec::new()),
                SortTarget::Mod => (kv.mod_revision, Vec::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        if order == SortOrder::Descend {
            kvs.sort_by_key(|kv| std::cmp::Reverse(key_of(kv)));
        } else {
            kvs.sort_by_key(key_of);
        }
    }
    let mut more = false;
    if r.limit > 0 && kvs.len() as i64 > r.limit {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: rr.rev,
            ..Default::default()
        }),
        kvs,
        more,
        count: rr.count,
    })
}
