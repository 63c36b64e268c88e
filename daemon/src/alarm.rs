//! Alarms (etcd's `v3alarm`): NOSPACE when a member's backend outgrows `quota-backend-bytes`,
//! CORRUPT when members' data disagree. Raised and cleared through raft, so every member holds
//! the same set; kept in the `meta` column family under `alarm/<member>/<type>`.

use std::collections::BTreeSet;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::api::etcdserverpb::{AlarmMember, AlarmType};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub member: u64,
    pub alarm: i32,
}

pub fn alarm_key(member: u64, alarm: i32) -> String {
    format!("alarm/{member:016x}/{alarm}")
}

#[derive(Default)]
pub struct Alarms {
    set: RwLock<BTreeSet<(u64, i32)>>,
}

impl Alarms {
    pub fn load(records: Vec<AlarmRecord>) -> Alarms {
        let a = Alarms::default();
        a.reset(records);
        a
    }

    /// Replaces the set (after a snapshot install).
    pub fn reset(&self, records: Vec<AlarmRecord>) {
        *self.set.write() = records.into_iter().map(|r| (r.member, r.alarm)).collect();
    }

    pub fn list(&self) -> Vec<AlarmMember> {
        self.set
            .read()
            .iter()
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
            .collect()
    }

    pub fn has(&self, t: AlarmType) -> bool {
        self.set.read().iter().any(|&(_, a)| a == t as i32)
    }

    pub fn has_for(&self, member: u64, t: AlarmType) -> bool {
        self.set.read().contains(&(member, t as i32))
    }

    /// Whether the alarm was newly raised.
    pub fn activate(&self, member: u64, alarm: i32) -> bool {
        self.set.write().insert((member, alarm))
    }

    /// Whether the alarm was raised before.
    pub fn deactivate(&self, member: u64, alarm: i32) -> bool {
        self.set.write().remove(&(member, alarm))
    }
}
