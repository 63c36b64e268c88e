//! Request checks done before proposing, with etcd's errors (etcd's v3rpc checks).

use std::collections::HashSet;

use crate::api::etcdserverpb::{
    range_request, request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use crate::error::EtcdError;
use crate::mvcc::RangeEnd;

pub fn range(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if range_request::SortOrder::try_from(r.sort_order).is_err()
        || range_request::SortTarget::try_from(r.sort_target).is_err()
    {
        return Err(EtcdError::InvalidSortOption);
    }
    Ok(())
}

pub fn put(r: &PutRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub fn delete_range(r: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// Operation counts, per-op checks, and no key written twice (or written and deleted).
pub fn txn(r: &TxnRequest, max_txn_ops: usize) -> Result<(), EtcdError> {
    let max = max_txn_ops;
    if r.compare.len() > max || r.success.len() > max || r.failure.len() > max {
        return Err(EtcdError::TooManyOps);
    }
    for c in &r.compare {
        if c.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
    }
    for op in r.success.iter().chain(r.failure.iter()) {
        op_check(op, max.saturating_sub(1))?;
    }
    intervals(&r.success)?;
    intervals(&r.failure)?;
    Ok(())
}

fn op_check(op: &RequestOp, max: usize) -> Result<(), EtcdError> {
    match &op.request {
        Some(request_op::Request::RequestRange(r)) => range(r),
        Some(request_op::Request::RequestPut(p)) => put(p),
        Some(request_op::Request::RequestDeleteRange(d)) => delete_range(d),
        Some(request_op::Request::RequestTxn(t)) => txn(t, max),
        None => Ok(()),
    }
}

struct Dels(Vec<(Vec<u8>, RangeEnd)>);

impl Dels {
    fn hits(&self, k: &[u8]) -> bool {
        self.0.iter().any(|(key, end)| end.contains(key, k))
    }
}

/// etcd's duplicate-key rule: within one branch (and the branches nested in it), a key may be
/// put once, and not both put and deleted. A nested txn's then/else may put the same key.
fn intervals(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Dels), EtcdError> {
    let mut dels = Dels(Vec::new());
    for op in ops {
        if let Some(request_op::Request::RequestDeleteRange(d)) = &op.request {
            dels.0
                .push((d.key.clone(), RangeEnd::from_request(&d.range_end)));
        }
    }
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in ops {
        let Some(request_op::Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.hits(k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || dels.hits(k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }
    for op in ops {
        if let Some(request_op::Request::RequestPut(p)) = &op.request {
            if puts.contains(&p.key) || dels.hits(&p.key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(p.key.clone());
        }
    }
    Ok((puts, dels))
}
