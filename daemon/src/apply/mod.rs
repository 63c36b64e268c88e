//! Applying committed requests to the MVCC store (etcd's applier): Put, DeleteRange, Txn,
//! Compaction, and the Range logic shared with the read path.
//!
//! Everything here is deterministic: every member applies the same entries to the same state
//! and gets the same revisions and results.

mod range;

pub use range::{execute_range, RangeSource};

use crate::alarm::{alarm_key, AlarmRecord, Alarms};
use crate::api::etcdserverpb::AlarmType;
use crate::api::etcdserverpb::{
    compare, request_op, response_op, CompactionResponse, Compare, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RequestOp, ResponseHeader, ResponseOp,
    TxnRequest, TxnResponse,
};
use crate::api::mvccpb::KeyValue;
use crate::api::retcdpb::{internal_request, internal_response, InternalRequest, InternalResponse};
use crate::auth::{AuthStore, MetaWrite};
use crate::error::EtcdError;
use crate::lease::{lease_key, LeaseRecord, Lessor};
use crate::mvcc::{RangeEnd, RangeOptions, RevTxn, WriteTxn};

/// Answers whether a lease exists.
pub trait LeaseLookup {
    fn exists(&self, id: i64) -> bool;
}

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..Default::default()
    })
}

/// Applies one request in its own revision.
pub fn apply(
    txn: &mut WriteTxn<'_>,
    req: InternalRequest,
    leases: &Lessor,
    alarms: &Alarms,
    auth: &AuthStore,
) -> Result<InternalResponse, EtcdError> {
    use internal_request::Request as Rq;
    use internal_response::Response as Rs;
    refuse_under_alarm(&req, alarms)?;
    // A request whose permissions were checked against an older auth store is refused.
    if req.auth_revision != 0 && auth.enabled() && req.auth_revision < auth.revision() {
        return Err(EtcdError::AuthOldRevision);
    }
    let Some(rq) = req.request else {
        return Ok(InternalResponse { response: None });
    };
    let rq = match apply_auth(txn, rq, auth)? {
        Ok(done) => {
            return Ok(InternalResponse {
                response: Some(Rs::Auth(done)),
            })
        }
        Err(other) => other,
    };
    let response = match Some(rq) {
        None => None,
        Some(Rq::Alarm(a)) => {
            use crate::api::etcdserverpb::alarm_request::AlarmAction;
            let record = AlarmRecord {
                member: a.member_id,
                alarm: a.alarm,
            };
            let changed = match AlarmAction::try_from(a.action) {
                Ok(AlarmAction::Activate) if a.alarm != AlarmType::None as i32 => {
                    let new = alarms.activate(a.member_id, a.alarm);
                    if new {
                        txn.put_meta(&alarm_key(a.member_id, a.alarm), &record)?;
                    }
                    true
                }
                Ok(AlarmAction::Deactivate) => {
                    let was = alarms.deactivate(a.member_id, a.alarm);
                    if was {
                        txn.delete_meta(&alarm_key(a.member_id, a.alarm))?;
                    }
                    was
                }
                _ => false,
            };
            Some(Rs::Alarm(crate::api::etcdserverpb::AlarmResponse {
                header: header(txn.current_rev()),
                alarms: if changed {
                    vec![crate::api::etcdserverpb::AlarmMember {
                        member_id: a.member_id,
                        alarm: a.alarm,
                    }]
                } else {
                    Vec::new()
                },
            }))
        }
        Some(Rq::Compaction(c)) => {
            txn.compact(c.revision)?;
            Some(Rs::Compaction(CompactionResponse {
                header: header(txn.current_rev()),
            }))
        }
        Some(Rq::Publish(m)) => {
            let attrs = crate::cluster::MemberAttrs {
                name: m.name,
                client_urls: m.client_urls,
            };
            txn.put_meta(&crate::cluster::attrs_key(m.id), &attrs)?;
            Some(Rs::Published(true))
        }
        Some(
            Rq::MemberAdd(_) | Rq::MemberRemove(_) | Rq::MemberUpdate(_) | Rq::MemberPromote(_),
        ) => {
            return Err(EtcdError::Internal(
                "membership changes are raft configuration changes, not log commands".into(),
            ))
        }
        Some(Rq::LeaseGrant(g)) => {
            if leases.exists(g.id) {
                return Err(EtcdError::LeaseExists);
            }
            txn.put_meta(
                &lease_key(g.id),
                &LeaseRecord {
                    id: g.id,
                    ttl: g.ttl,
                    remaining: 0,
                },
            )?;
            leases.grant(g.id, g.ttl);
            Some(Rs::LeaseGrant(
                crate::api::etcdserverpb::LeaseGrantResponse {
                    header: header(txn.current_rev()),
                    id: g.id,
                    ttl: g.ttl,
                    error: String::new(),
                },
            ))
        }
        Some(Rq::LeaseCheckpoint(c)) => {
            for cp in c.checkpoints {
                if let Some(record) = leases.checkpoint(cp.id, cp.remaining_ttl) {
                    txn.put_meta(&lease_key(cp.id), &record)?;
                }
            }
            Some(Rs::Published(true))
        }
        Some(Rq::LeaseRevoke(r)) => {
            let keys = leases.revoke(r.id).ok_or(EtcdError::LeaseNotFound)?;
            txn.delete_meta(&lease_key(r.id))?;
            // Every attached key goes in one revision.
            let mut rt = txn.begin();
            for k in keys {
                rt.delete_range(&k, &RangeEnd::Single)?;
            }
            let rev = rt.finish();
            Some(Rs::LeaseRevoke(
                crate::api::etcdserverpb::LeaseRevokeResponse {
                    header: header(rev),
                },
            ))
        }
        Some(Rq::Put(p)) => {
            let mut rt = txn.begin();
            check_put(&rt, &p, leases)?;
            let mut resp = put(&mut rt, p, leases)?;
            resp.header = header(rt.finish());
            Some(Rs::Put(resp))
        }
        Some(Rq::DeleteRange(d)) => {
            let mut rt = txn.begin();
            let mut resp = delete_range(&mut rt, d, leases)?;
            resp.header = header(rt.finish());
            Some(Rs::DeleteRange(resp))
        }
        Some(Rq::Txn(t)) => {
            let mut rt = txn.begin();
            let path = compare_path(&rt, &t)?;
            check_txn_ops(&rt, &t, &path, leases)?;
            let mut resp = execute_txn(&mut rt, t, &path, leases)?;
            resp.header = header(rt.finish());
            Some(Rs::Txn(resp))
        }
        Some(other) => {
            return Err(EtcdError::Internal(format!(
                "request not applied here: {other:?}"
            )))
        }
    };
    Ok(InternalResponse { response })
}

/// Applies an auth change (answering with the header to reply with), or hands any other
/// request back.
fn apply_auth(
    txn: &mut WriteTxn<'_>,
    rq: internal_request::Request,
    auth: &AuthStore,
) -> Result<Result<ResponseHeader, internal_request::Request>, EtcdError> {
    use internal_request::Request as Rq;
    let pw = |hashed: &str| -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(hashed)
            .unwrap_or_default()
    };
    let writes = match rq {
        Rq::AuthEnable(_) => auth.enable()?,
        Rq::AuthDisable(_) => auth.disable(),
        Rq::Authenticate(a) => {
            if !auth.enabled() {
                return Err(EtcdError::AuthNotEnabled);
            }
            if auth.user(&a.name).is_none() {
                return Err(EtcdError::AuthFailed);
            }
            auth.assign_token(&a.simple_token, &a.name);
            Vec::new()
        }
        Rq::UserAdd(u) => {
            let no_password = u.options.is_some_and(|o| o.no_password);
            auth.user_add(&u.name, pw(&u.hashed_password), no_password)?
        }
        Rq::UserDelete(u) => auth.user_delete(&u.name)?,
        Rq::UserChangePassword(u) => auth.user_change_password(&u.name, pw(&u.hashed_password))?,
        Rq::UserGrantRole(u) => auth.user_grant_role(&u.user, &u.role)?,
        Rq::UserRevokeRole(u) => auth.user_revoke_role(&u.name, &u.role)?,
        Rq::RoleAdd(r) => auth.role_add(&r.name)?,
        Rq::RoleDelete(r) => auth.role_delete(&r.role)?,
        Rq::RoleGrantPermission(r) => {
            let p = r.perm.ok_or(EtcdError::PermissionNotGiven)?;
            auth.role_grant(
                &r.name,
                crate::auth::Perm {
                    perm_type: p.perm_type,
                    key: p.key,
                    range_end: p.range_end,
                },
            )?
        }
        Rq::RoleRevokePermission(r) => auth.role_revoke(&r.role, &r.key, &r.range_end)?,
        other => return Ok(Err(other)),
    };
    for w in writes {
        match w {
            MetaWrite::Put(k, v) => txn.put_meta_raw(&k, &v)?,
            MetaWrite::Delete(k) => txn.delete_meta(&k)?,
        }
    }
    Ok(Ok(ResponseHeader {
        revision: txn.current_rev(),
        ..Default::default()
    }))
}

/// etcd's capped and corrupt appliers: under NOSPACE only reads, deletes and compaction
/// go through; under CORRUPT nothing does.
fn refuse_under_alarm(req: &InternalRequest, alarms: &Alarms) -> Result<(), EtcdError> {
    use internal_request::Request as Rq;
    if alarms.has(AlarmType::Corrupt) {
        return match req.request {
            Some(
                Rq::Put(_)
                | Rq::DeleteRange(_)
                | Rq::Txn(_)
                | Rq::Compaction(_)
                | Rq::LeaseGrant(_)
                | Rq::LeaseRevoke(_),
            ) => Err(EtcdError::Corrupt),
            _ => Ok(()),
        };
    }
    if alarms.has(AlarmType::Nospace) {
        match &req.request {
            Some(Rq::Put(_) | Rq::LeaseGrant(_)) => return Err(EtcdError::NoSpace),
            Some(Rq::Txn(t)) if !txn_is_readonly(t) => return Err(EtcdError::NoSpace),
            _ => {}
        }
    }
    Ok(())
}

/// Whether every operation of both branches (nested included) only reads.
pub fn txn_is_readonly(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(t.failure.iter())
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(_)) | None => true,
            Some(request_op::Request::RequestTxn(n)) => txn_is_readonly(n),
            _ => false,
        })
}

fn check_put(
    rt: &RevTxn<'_, '_>,
    p: &PutRequest,
    leases: &dyn LeaseLookup,
) -> Result<(), EtcdError> {
    if (p.ignore_value || p.ignore_lease) && rt.get(&p.key)?.is_none() {
        return Err(EtcdError::KeyNotFound);
    }
    if !p.ignore_lease && p.lease != 0 && !leases.exists(p.lease) {
        return Err(EtcdError::LeaseNotFound);
    }
    Ok(())
}

fn put(rt: &mut RevTxn<'_, '_>, p: PutRequest, leases: &Lessor) -> Result<PutResponse, EtcdError> {
    let (value, lease) = if p.ignore_value || p.ignore_lease {
        let prev = rt.get(&p.key)?.ok_or(EtcdError::KeyNotFound)?;
        (
            if p.ignore_value { prev.value } else { p.value },
            if p.ignore_lease { prev.lease } else { p.lease },
        )
    } else {
        (p.value, p.lease)
    };
    let prev = rt.put(&p.key, value, lease)?;
    leases.attach(&p.key, prev.as_ref().map(|kv| kv.lease).unwrap_or(0), lease);
    Ok(PutResponse {
        header: header(rt.rev()),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

fn delete_range(
    rt: &mut RevTxn<'_, '_>,
    d: DeleteRangeRequest,
    leases: &Lessor,
) -> Result<DeleteRangeResponse, EtcdError> {
    let end = RangeEnd::from_request(&d.range_end);
    let prev = rt.delete_range(&d.key, &end)?;
    for kv in &prev {
        leases.attach(&kv.key, kv.lease, 0);
    }
    Ok(DeleteRangeResponse {
        header: header(rt.rev()),
        deleted: prev.len() as i64,
        prev_kvs: if d.prev_kv { prev } else { Vec::new() },
    })
}

/// Which branch every (nested) txn takes, decided before any write, as etcd does.
pub struct Path {
    succeeded: bool,
    /// One entry per nested txn of the chosen branch, in order.
    children: Vec<Path>,
}

fn compare_path(rt: &RevTxn<'_, '_>, t: &TxnRequest) -> Result<Path, EtcdError> {
    let mut succeeded = true;
    for c in &t.compare {
        if !compare(rt, c)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded { &t.success } else { &t.failure };
    let mut children = Vec::new();
    for op in ops {
        if let Some(request_op::Request::RequestTxn(nested)) = &op.request {
            children.push(compare_path(rt, nested)?);
        }
    }
    Ok(Path {
        succeeded,
        children,
    })
}

/// Puts that would fail (missing lease, missing key with ignore_*) fail the whole txn up front.
fn check_txn_ops(
    rt: &RevTxn<'_, '_>,
    t: &TxnRequest,
    path: &Path,
    leases: &Lessor,
) -> Result<(), EtcdError> {
    let ops = if path.succeeded {
        &t.success
    } else {
        &t.failure
    };
    let mut nested = path.children.iter();
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) => check_put(rt, p, leases)?,
            Some(request_op::Request::RequestTxn(n)) => {
                if let Some(child) = nested.next() {
                    check_txn_ops(rt, n, child, leases)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn execute_txn(
    rt: &mut RevTxn<'_, '_>,
    t: TxnRequest,
    path: &Path,
    leases: &Lessor,
) -> Result<TxnResponse, EtcdError> {
    let ops = if path.succeeded { t.success } else { t.failure };
    let mut nested = path.children.iter();
    let mut responses = Vec::with_capacity(ops.len());
    for RequestOp { request } in ops {
        let response = match request {
            None => None,
            Some(request_op::Request::RequestRange(r)) => Some(
                response_op::Response::ResponseRange(execute_range(&*rt, &r)?),
            ),
            Some(request_op::Request::RequestPut(p)) => {
                Some(response_op::Response::ResponsePut(put(rt, p, leases)?))
            }
            Some(request_op::Request::RequestDeleteRange(d)) => Some(
                response_op::Response::ResponseDeleteRange(delete_range(rt, d, leases)?),
            ),
            Some(request_op::Request::RequestTxn(n)) => {
                let child = nested
                    .next()
                    .ok_or_else(|| EtcdError::Internal("txn path mismatch".into()))?;
                let mut r = execute_txn(rt, n, child, leases)?;
                // etcd fills only the outer txn's header: a nested one's stays empty.
                r.header = Some(ResponseHeader::default());
                Some(response_op::Response::ResponseTxn(r))
            }
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnResponse {
        header: header(rt.rev()),
        succeeded: path.succeeded,
        responses,
    })
}

/// Evaluates one compare: every key in its range must satisfy it.
fn compare(rt: &RevTxn<'_, '_>, c: &Compare) -> Result<bool, EtcdError> {
    let end = RangeEnd::from_request(&c.range_end);
    let kvs = rt.range(&c.key, &end, RangeOptions::default())?.kvs;
    if kvs.is_empty() {
        if c.target == compare::CompareTarget::Value as i32 {
            // A missing key has no value to compare: always false, as etcd.
            return Ok(false);
        }
        return Ok(compare_kv(c, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(c, kv)))
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    use std::cmp::Ordering;
    let num = |f: fn(&TargetUnion) -> Option<i64>| c.target_union.as_ref().and_then(f).unwrap_or(0);
    let ord: Ordering = match CompareTarget::try_from(c.target) {
        Ok(CompareTarget::Version) => kv.version.cmp(&num(|t| match t {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&num(|t| match t {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&num(|t| match t {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&num(|t| match t {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
        Ok(CompareTarget::Value) => {
            let v: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(v)
        }
        Err(_) => return false,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ord != Ordering::Equal,
        Ok(CompareResult::Greater) => ord == Ordering::Greater,
        Ok(CompareResult::Less) => ord == Ordering::Less,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
