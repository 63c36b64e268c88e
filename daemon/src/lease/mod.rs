//! Leases (etcd's lessor): TTL-bound ownership of keys.
//!
//! Every member keeps the same lease table, changed only by applied raft entries (grant,
//! revoke, and puts/deletes that attach or detach keys), so every member revokes the same keys
//! at the same revision. Expiry is the leader's business alone: it keeps deadlines in a heap
//! (no timer per lease), renews them on keep-alive, and proposes a revoke for each lease whose
//! deadline passed. A member that becomes leader gives every lease a fresh TTL, so a leader
//! change never expires a lease early.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::apply::LeaseLookup;

/// etcd's largest lease TTL, in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// What is stored per lease (meta column family, `lease/<id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: i64,
    /// Granted TTL, seconds.
    pub ttl: i64,
    /// Remaining TTL at the last checkpoint (0: none), seconds.
    #[serde(default)]
    pub remaining: i64,
}

/// The meta key of lease `id`.
pub fn lease_key(id: i64) -> String {
    format!("lease/{:016x}", id as u64)
}

#[derive(Debug)]
struct Lease {
    ttl: i64,
    /// Remaining TTL at the last checkpoint (0: none); a new leader starts from it.
    remaining: i64,
    keys: BTreeSet<Vec<u8>>,
    /// Leader only: when it expires.
    deadline: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    leases: HashMap<i64, Lease>,
    /// Leader only: (deadline, id); stale entries are skipped when popped.
    heap: BinaryHeap<Reverse<(Instant, i64)>>,
    leading: bool,
}

#[derive(Default)]
pub struct Lessor {
    inner: Mutex<Inner>,
}

impl LeaseLookup for Lessor {
    fn exists(&self, id: i64) -> bool {
        self.inner.lock().leases.contains_key(&id)
    }
}

impl Lessor {
    /// Rebuilds the table from stored records and the keys' current leases.
    pub fn load(records: Vec<LeaseRecord>, attached: Vec<(Vec<u8>, i64)>) -> Lessor {
        let l = Lessor::default();
        l.reset(records, attached);
        l
    }

    /// Replaces the table (after a snapshot install); deadlines restart if leading.
    pub fn reset(&self, records: Vec<LeaseRecord>, attached: Vec<(Vec<u8>, i64)>) {
        let mut inner = self.inner.lock();
        inner.leases = records
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    Lease {
                        ttl: r.ttl,
                        remaining: r.remaining,
                        keys: BTreeSet::new(),
                        deadline: None,
                    },
                )
            })
            .collect();
        for (key, id) in attached {
            if let Some(l) = inner.leases.get_mut(&id) {
                l.keys.insert(key);
            }
        }
        inner.heap.clear();
        if inner.leading {
            refresh_all(&mut inner);
        }
    }

    pub fn grant(&self, id: i64, ttl: i64) {
        let mut inner = self.inner.lock();
        let deadline = inner.leading.then(|| Instant::now() + secs(ttl));
        inner.leases.insert(
            id,
            Lease {
                ttl,
                remaining: 0,
                keys: BTreeSet::new(),
                deadline,
            },
        );
        if let Some(d) = deadline {
            inner.heap.push(Reverse((d, id)));
        }
    }

    /// Removes the lease; returns the keys attached to it.
    pub fn revoke(&self, id: i64) -> Option<Vec<Vec<u8>>> {
        self.inner
            .lock()
            .leases
            .remove(&id)
            .map(|l| l.keys.into_iter().collect())
    }

    /// Records that `key` moved from lease `old` to lease `new` (0 = none).
    pub fn attach(&self, key: &[u8], old: i64, new: i64) {
        if old == new {
            return;
        }
        let mut inner = self.inner.lock();
        if old != 0 {
            if let Some(l) = inner.leases.get_mut(&old) {
                l.keys.remove(key);
            }
        }
        if new != 0 {
            if let Some(l) = inner.leases.get_mut(&new) {
                l.keys.insert(key.to_vec());
            }
        }
    }

    /// All lease IDs.
    pub fn ids(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.inner.lock().leases.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Leader: a keep-alive. Returns the granted TTL, or None for an unknown lease.
    pub fn renew(&self, id: i64) -> Option<i64> {
        let mut inner = self.inner.lock();
        let leading = inner.leading;
        let l = inner.leases.get_mut(&id)?;
        let ttl = l.ttl;
        l.remaining = 0;
        if leading {
            let d = Instant::now() + secs(ttl);
            l.deadline = Some(d);
            inner.heap.push(Reverse((d, id)));
        }
        Some(ttl)
    }

    /// (remaining TTL, granted TTL, keys) as the leader sees it; remaining is -1 once expired.
    pub fn time_to_live(&self, id: i64) -> Option<(i64, i64, Vec<Vec<u8>>)> {
        let inner = self.inner.lock();
        let l = inner.leases.get(&id)?;
        let remaining = match l.deadline {
            Some(d) => {
                let now = Instant::now();
                if d <= now {
                    -1
                } else {
                    (d - now).as_secs() as i64
                }
            }
            None => l.ttl,
        };
        Some((remaining, l.ttl, l.keys.iter().cloned().collect()))
    }

    /// Tells the lessor whether this member leads; a new leader gives every lease a full TTL.
    pub fn set_leading(&self, leading: bool) {
        let mut inner = self.inner.lock();
        if leading == inner.leading {
            return;
        }
        inner.leading = leading;
        inner.heap.clear();
        if leading {
            refresh_all(&mut inner);
        } else {
            for l in inner.leases.values_mut() {
                l.deadline = None;
            }
        }
    }

    /// Records a checkpointed remaining TTL (applied on every member).
    pub fn checkpoint(&self, id: i64, remaining: i64) -> Option<LeaseRecord> {
        let mut inner = self.inner.lock();
        let l = inner.leases.get_mut(&id)?;
        l.remaining = remaining;
        Some(LeaseRecord {
            id,
            ttl: l.ttl,
            remaining,
        })
    }

    /// Leader: the remaining TTL of every lease that has a deadline.
    pub fn remaining_ttls(&self) -> Vec<(i64, i64)> {
        let now = Instant::now();
        self.inner
            .lock()
            .leases
            .iter()
            .filter_map(|(id, l)| {
                l.deadline
                    .map(|d| (*id, d.saturating_duration_since(now).as_secs() as i64))
            })
            .collect()
    }

    /// Leader: the leases whose deadline has passed (at most `max`).
    pub fn expired(&self, max: usize) -> Vec<i64> {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(Reverse((d, id))) = inner.heap.peek().copied() else {
                break;
            };
            if d > now {
                break;
            }
            inner.heap.pop();
            // Skip stale heap entries (renewed or revoked since).
            if inner.leases.get(&id).and_then(|l| l.deadline) == Some(d) {
                out.push(id);
                // Re-arm in case the revoke does not go through; it is proposed again then.
                let retry = now + Duration::from_secs(3);
                if let Some(l) = inner.leases.get_mut(&id) {
                    l.deadline = Some(retry);
                }
                inner.heap.push(Reverse((retry, id)));
            }
        }
        out
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(ttl.max(0) as u64)
}

fn refresh_all(inner: &mut Inner) {
    let now = Instant::now();
    let mut heap = BinaryHeap::new();
    for (id, l) in inner.leases.iter_mut() {
        // A checkpointed lease resumes from its remaining TTL (etcd's lease checkpoint).
        let ttl = if l.remaining > 0 { l.remaining } else { l.ttl };
        let d = now + secs(ttl);
        l.deadline = Some(d);
        heap.push(Reverse((d, *id)));
    }
    inner.heap = heap;
}
