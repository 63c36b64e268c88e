//! Which archives `prune` keeps: the newest N, and grandfather-father-son (the newest archive
//! of each of the last N hours, days, ISO weeks and months that have one). The newest archive
//! and the newest verified archive are always kept, whatever the policy says.

use std::collections::{BTreeMap, HashSet};

use super::archive;

/// How many periods to keep, what to call them, and which period a time falls into.
type Period = (usize, &'static str, fn(i64) -> i64);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: usize,
    pub hourly: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// For each archive in `names` (any order), the reasons to keep it; archives with none are
/// to be deleted. `verified` holds the names proven restorable by `verify`.
pub fn decide(
    names: &[String],
    policy: Policy,
    verified: &HashSet<String>,
) -> BTreeMap<String, Vec<&'static str>> {
    let mut newest_first: Vec<(&String, i64)> = names
        .iter()
        .filter_map(|n| archive::parse(n).map(|i| (n, i.millis / 1000)))
        .collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
    let mut keep: BTreeMap<String, Vec<&'static str>> = newest_first
        .iter()
        .map(|(n, _)| ((*n).clone(), Vec::new()))
        .collect();
    let mut add = |n: &String, why: &'static str| {
        if let Some(v) = keep.get_mut(n) {
            v.push(why);
        }
    };
    if let Some((n, _)) = newest_first.first() {
        add(n, "newest");
    }
    if let Some((n, _)) = newest_first.iter().find(|(n, _)| verified.contains(*n)) {
        add(n, "newest verified");
    }
    for (n, _) in newest_first.iter().take(policy.last) {
        add(n, "last");
    }
    let periods: [Period; 4] = [
        (policy.hourly, "hourly", |t| t.div_euclid(3600)),
        (policy.daily, "daily", |t| t.div_euclid(86400)),
        // 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Monday (ISO).
        (policy.weekly, "weekly", |t| {
            (t.div_euclid(86400) + 3).div_euclid(7)
        }),
        (policy.monthly, "monthly", |t| {
            let (y, m, ..) = archive::civil(t);
            y * 12 + m
        }),
    ];
    for (count, why, bucket) in periods {
        let mut seen: Vec<i64> = Vec::new();
        for (n, t) in &newest_first {
            if seen.len() >= count {
                break;
            }
            let b = bucket(*t);
            if !seen.contains(&b) {
                seen.push(b);
                add(n, why);
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: i64) -> String {
        archive::name(UNIX_EPOCH + Duration::from_secs(secs as u64), 1, secs)
    }

    fn kept(names: &[String], p: Policy, verified: &[&String]) -> Vec<String> {
        let v: HashSet<String> = verified.iter().map(|s| (*s).clone()).collect();
        decide(names, p, &v)
            .into_iter()
            .filter(|(_, why)| !why.is_empty())
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let names: Vec<String> = (0..5).map(|i| at(1_000_000 + i * 60)).collect();
        let p = Policy {
            last: 2,
            ..Policy::default()
        };
        assert_eq!(kept(&names, p, &[]), names[3..].to_vec());
    }

    #[test]
    fn newest_and_newest_verified_survive_any_policy() {
        let names: Vec<String> = (0..5).map(|i| at(1_000_000 + i * 60)).collect();
        let p = Policy {
            last: 1,
            ..Policy::default()
        };
        assert_eq!(
            kept(&names, p, &[&names[1]]),
            vec![names[1].clone(), names[4].clone()]
        );
    }

    #[test]
    fn grandfather_father_son() {
        // Every 6 hours for 60 days, starting on a Monday (2026-01-05) at 00:00 UTC.
        let start = archive::days_from_civil(2026, 1, 5) * 86400;
        let names: Vec<String> = (0..240).map(|i| at(start + i * 6 * 3600)).collect();
        let p = Policy {
            hourly: 2,
            daily: 3,
            weekly: 2,
            monthly: 2,
            ..Policy::default()
        };
        let d = decide(&names, p, &HashSet::new());
        let keep: Vec<(&String, &Vec<&str>)> = d.iter().filter(|(_, w)| !w.is_empty()).collect();
        let newest = names.last().cloned().unwrap_or_default();
        // newest (hour 0 of day 59 + 18h): newest, hourly, daily, weekly, monthly.
        assert_eq!(
            d[&newest],
            vec!["newest", "hourly", "daily", "weekly", "monthly"]
        );
        // The second hourly is the one before (different hour); days 58 and 57 end at 18:00.
        assert_eq!(d[&names[238]], vec!["hourly"]);
        assert_eq!(d[&names[235]], vec!["daily"]);
        assert_eq!(d[&names[231]], vec!["daily"]);
        // Day 59 = 2026-03-05 (Thursday); the previous ISO week ends Sunday 2026-03-01 18:00.
        let prev_week = at(archive::days_from_civil(2026, 3, 1) * 86400 + 18 * 3600);
        assert_eq!(d[&prev_week], vec!["weekly"]);
        // The previous month ends 2026-02-28 18:00.
        let prev_month = at(archive::days_from_civil(2026, 2, 28) * 86400 + 18 * 3600);
        assert_eq!(d[&prev_month], vec!["monthly"]);
        assert_eq!(keep.len(), 6);
    }
}
