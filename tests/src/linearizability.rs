//! A linearizability checker for histories of a key-value register (WGL-style depth-first
//! search over linearization orders, memoized on (ops linearized, state)). Keys are
//! independent, so each key's history is checked on its own.
//!
//! A write whose outcome is unknown (the client timed out or lost its connection) has no
//! return time: it may take effect at any point after it was invoked, or never.

use std::collections::{BTreeMap, HashSet};

/// One operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String),
    /// A read and what it returned (`None`: the key was absent).
    Get(Option<String>),
    /// Compare-and-swap: if the value is `expect`, set `new`. `ok` is the outcome, `None`
    /// when unknown.
    Cas {
        expect: String,
        new: String,
        ok: Option<bool>,
    },
}

/// An operation with its invocation and return times (any monotonic unit).
#[derive(Debug, Clone)]
pub struct Event {
    pub key: String,
    pub invoke: u64,
    /// `None`: the outcome is unknown (only for writes).
    pub ret: Option<u64>,
    pub op: Op,
}

type State = Option<String>;

fn apply(op: &Op, state: &State, definite: bool) -> Option<State> {
    match op {
        Op::Put(v) => Some(Some(v.clone())),
        Op::Get(r) => (r == state).then(|| state.clone()),
        Op::Cas { expect, new, ok } => {
            let holds = state.as_deref() == Some(expect.as_str());
            match (ok, definite) {
                (Some(true), _) => holds.then(|| Some(new.clone())),
                (Some(false), _) => (!holds).then(|| state.clone()),
                // Unknown outcome: it can only have taken effect if the compare held.
                (None, _) => holds.then(|| Some(new.clone())),
            }
        }
    }
}

/// Drops unknown-outcome writes whose value no kept operation ever observed: such a write can
/// only be explained as "never happened" (values are unique per write), so the search need
/// not try placing it. Computed to a fixpoint, since an unknown compare-and-swap may itself be
/// observed, making the value it expects needed too.
fn prune(events: &[Event]) -> Vec<Event> {
    let mut needed: HashSet<&str> = HashSet::new();
    for e in events.iter().filter(|e| e.ret.is_some()) {
        match &e.op {
            Op::Get(Some(v)) => {
                needed.insert(v);
            }
            Op::Cas {
                expect,
                ok: Some(true),
                ..
            } => {
                needed.insert(expect);
            }
            _ => {}
        }
    }
    let mut keep: Vec<bool> = events.iter().map(|e| e.ret.is_some()).collect();
    loop {
        let mut changed = false;
        for (i, e) in events.iter().enumerate() {
            if keep[i] {
                continue;
            }
            let (new, expect) = match &e.op {
                Op::Put(v) => (v.as_str(), None),
                Op::Cas { expect, new, .. } => (new.as_str(), Some(expect.as_str())),
                Op::Get(_) => continue,
            };
            if needed.contains(new) {
                keep[i] = true;
                changed = true;
                if let Some(x) = expect {
                    needed.insert(x);
                }
            }
        }
        if !changed {
            break;
        }
    }
    events
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(e, _)| e.clone())
        .collect()
}

/// Checks one key's history, starting from an absent key.
pub fn check_key(events: &[Event]) -> bool {
    let events = prune(events);
    let events = events.as_slice();
    let n = events.len();
    let words = n.div_ceil(64).max(1);
    let definite: Vec<bool> = events.iter().map(|e| e.ret.is_some()).collect();
    let total_definite = definite.iter().filter(|d| **d).count();
    let mut memo: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, State, usize)> = vec![(vec![0; words], None, 0)];
    while let Some((done, state, done_definite)) = stack.pop() {
        if done_definite == total_definite {
            return true;
        }
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // Any op still pending must be linearized before the earliest pending return.
        let min_ret = (0..n)
            .filter(|i| !is_done(*i))
            .filter_map(|i| events[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if is_done(i) || events[i].invoke > min_ret {
                continue;
            }
            if let Some(next) = apply(&events[i].op, &state, definite[i]) {
                let mut d = done.clone();
                d[i / 64] |= 1 << (i % 64);
                if memo.insert((d.clone(), next.clone())) {
                    stack.push((d, next, done_definite + definite[i] as usize));
                }
            }
        }
    }
    false
}

/// Checks a whole history; returns the keys whose history is not linearizable.
pub fn check(events: &[Event]) -> Vec<String> {
    let mut by_key: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key.as_str()).or_default().push(e.clone());
    }
    by_key
        .into_iter()
        .filter(|(_, evs)| !check_key(evs))
        .map(|(k, _)| k.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(invoke: u64, ret: Option<u64>, op: Op) -> Event {
        Event {
            key: "k".into(),
            invoke,
            ret,
            op,
        }
    }

    #[test]
    fn accepts_a_linearizable_history() {
        let h = vec![
            ev(0, Some(10), Op::Put("1".into())),
            ev(5, Some(25), Op::Put("2".into())),
            // Concurrent with put 2: may see 1 or 2.
            ev(12, Some(20), Op::Get(Some("1".into()))),
            ev(30, Some(40), Op::Get(Some("2".into()))),
            ev(
                41,
                Some(50),
                Op::Cas {
                    expect: "2".into(),
                    new: "3".into(),
                    ok: Some(true),
                },
            ),
            ev(
                51,
                Some(60),
                Op::Cas {
                    expect: "2".into(),
                    new: "4".into(),
                    ok: Some(false),
                },
            ),
            ev(61, Some(70), Op::Get(Some("3".into()))),
        ];
        assert!(check_key(&h));
    }

    #[test]
    fn rejects_a_stale_read() {
        let h = vec![
            ev(0, Some(10), Op::Put("1".into())),
            ev(20, Some(30), Op::Put("2".into())),
            ev(40, Some(50), Op::Get(Some("1".into()))),
        ];
        assert!(!check_key(&h));
        assert_eq!(check(&h), vec!["k".to_string()]);
    }

    #[test]
    fn rejects_a_lost_acknowledged_write() {
        let h = vec![
            ev(0, Some(10), Op::Put("1".into())),
            ev(20, Some(30), Op::Get(None)),
        ];
        assert!(!check_key(&h));
    }

    #[test]
    fn unknown_writes_may_or_may_not_apply() {
        // A timed-out put that a later read observes...
        let seen = vec![
            ev(0, None, Op::Put("x".into())),
            ev(20, Some(30), Op::Get(Some("x".into()))),
        ];
        assert!(check_key(&seen));
        // ... or that never happened.
        let lost = vec![
            ev(0, None, Op::Put("x".into())),
            ev(20, Some(30), Op::Get(None)),
        ];
        assert!(check_key(&lost));
        // But it cannot take effect before it was invoked.
        let early = vec![
            ev(0, Some(5), Op::Get(Some("x".into()))),
            ev(10, None, Op::Put("x".into())),
        ];
        assert!(!check_key(&early));
    }

    #[test]
    fn observed_chains_of_unknown_writes_are_kept() {
        let cas = |e: &str, n: &str| Op::Cas {
            expect: e.into(),
            new: n.into(),
            ok: None,
        };
        // put x (unknown) -> cas x->y (unknown) -> read y: both must have happened.
        let chain = vec![
            ev(0, None, Op::Put("x".into())),
            ev(5, None, cas("x", "y")),
            ev(20, Some(30), Op::Get(Some("y".into()))),
        ];
        assert!(check_key(&chain));
        // Without the put, the swap could never have applied.
        let broken = vec![
            ev(5, None, cas("x", "y")),
            ev(20, Some(30), Op::Get(Some("y".into()))),
        ];
        assert!(!check_key(&broken));
    }
}
