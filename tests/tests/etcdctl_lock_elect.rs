//! `etcdctl lock`, `elect` and `move-leader`: ours and real etcdctl 3.4.23 print the same, exit
//! the same, and exclude each other (a lock held by one holds off the other), on retcd and on
//! real etcd.

use std::path::Path;
use std::time::Duration;

use retcd_tests::*;

const ARG_ERRORS: &[Step] = &[
    (&["lock"], None),
    (&["lock", "l1", "no-such-program-anywhere"], None),
    (
        &["lock", "l1", "--", "sh", "-c", "echo rev=$ETCD_LOCK_REV"],
        None,
    ),
    (
        &["lock", "l1", "--", "sh", "-c", "echo again=$ETCD_LOCK_REV"],
        None,
    ),
    (&["elect"], None),
    (&["elect", "e1"], None),
    (&["elect", "-l", "e1", "p"], None),
    (&["elect", "a", "b", "c"], None),
    (&["move-leader"], None),
    (&["move-leader", "zz"], None),
    (&["move-leader", "1234"], None),
    (&["get", "l1", "--prefix"], None),
];

fn arg_run(bin: &Path, flavor: Flavor) -> Vec<Outcome> {
    let m = Member::start(flavor);
    run_steps(bin, &m.endpoint(), ARG_ERRORS)
}

#[test]
fn lock_elect_move_leader_print_and_fail_as_etcdctl_does() {
    for flavor in [Flavor::Retcd, Flavor::RealEtcd] {
        let expected = arg_run(&real_etcdctl(), flavor);
        let got = arg_run(&our_etcdctl(), flavor);
        let d = differences(&expected, &got, "real etcdctl", "our etcdctl");
        assert!(d.is_empty(), "{flavor:?}:\n{}", d.join("\n"));
    }
}

/// `name/<lease in %x>`.
fn is_lock_key(line: &str, name: &str) -> bool {
    line.strip_prefix(&format!("{name}/"))
        .is_some_and(|id| !id.is_empty() && id.len() <= 16 && u64::from_str_radix(id, 16).is_ok())
}

fn exclusion(ep: &str, first: &Path, second: &Path) {
    let a = Running::start(first, ep, &["lock", "shared"]);
    let key = a
        .line(Duration::from_secs(10))
        .expect("first holder prints its key");
    assert!(is_lock_key(&key, "shared"), "{key:?}");
    assert_eq!(a.line(Duration::from_secs(2)).as_deref(), Some(""));
    let b = Running::start(second, ep, &["lock", "shared"]);
    assert_eq!(b.line(Duration::from_millis(1500)), None, "lock held twice");
    assert_eq!(a.interrupt(), Some(0));
    let key_b = b
        .line(Duration::from_secs(10))
        .expect("second gets the lock");
    assert!(is_lock_key(&key_b, "shared") && key_b != key, "{key_b:?}");
    assert_eq!(b.interrupt(), Some(0));
    // Both unlocked: nothing left under the lock's prefix.
    let left = etcdctl(ep, &["get", "shared/", "--prefix", "--keys-only"], None);
    assert_eq!(out(&left), "");
}

#[test]
fn a_lock_held_by_one_etcdctl_holds_off_the_other() {
    for flavor in [Flavor::Retcd, Flavor::RealEtcd] {
        let m = Member::start(flavor);
        let ep = m.endpoint();
        exclusion(&ep, &our_etcdctl(), &real_etcdctl());
        exclusion(&ep, &real_etcdctl(), &our_etcdctl());
    }
}

#[test]
fn elect_observers_see_each_leader_in_turn() {
    for flavor in [Flavor::Retcd, Flavor::RealEtcd] {
        let m = Member::start(flavor);
        let ep = m.endpoint();
        let ours = our_etcdctl();
        let watcher = Running::start(&ours, &ep, &["elect", "-l", "job"]);
        let real_watcher = Running::start(&real_etcdctl(), &ep, &["elect", "-l", "job"]);
        std::thread::sleep(Duration::from_millis(300));
        let first = Running::start(&real_etcdctl(), &ep, &["elect", "job", "p1"]);
        let k1 = first.line(Duration::from_secs(10)).expect("p1 elected");
        assert!(is_lock_key(&k1, "job"), "{k1:?}");
        assert_eq!(first.line(Duration::from_secs(2)).as_deref(), Some("p1"));
        let second = Running::start(&ours, &ep, &["elect", "job", "p2"]);
        assert_eq!(
            second.line(Duration::from_millis(1500)),
            None,
            "two leaders"
        );
        for w in [&watcher, &real_watcher] {
            assert_eq!(w.line(Duration::from_secs(5)).as_deref(), Some(k1.as_str()));
            assert_eq!(w.line(Duration::from_secs(2)).as_deref(), Some("p1"));
        }
        assert_eq!(first.interrupt(), Some(0));
        let k2 = second.line(Duration::from_secs(10)).expect("p2 elected");
        assert!(is_lock_key(&k2, "job") && k2 != k1, "{k2:?}");
        assert_eq!(second.line(Duration::from_secs(2)).as_deref(), Some("p2"));
        for w in [&watcher, &real_watcher] {
            assert_eq!(w.line(Duration::from_secs(5)).as_deref(), Some(k2.as_str()));
            assert_eq!(w.line(Duration::from_secs(2)).as_deref(), Some("p2"));
        }
        assert_eq!(second.interrupt(), Some(0));
        assert_eq!(watcher.interrupt(), Some(0));
        assert_eq!(real_watcher.interrupt(), Some(0));
    }
}

#[test]
fn move_leader_through_our_etcdctl() {
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let leader = c.wait_leader(Duration::from_secs(10));
    let ids: Vec<u64> = (0..3)
        .map(|i| {
            let s = out(&etcdctl(
                &c.members[i].endpoint(),
                &["endpoint", "status", "-w", "json"],
                None,
            ));
            json_u64(&s, "member_id").expect("member_id")
        })
        .collect();
    let target = (leader + 1) % 3;
    // Every endpoint given; the command finds the leader among them.
    let o = run_ctl(
        &our_etcdctl(),
        &c.endpoints(),
        &["move-leader", &format!("{:x}", ids[target])],
        None,
    );
    assert_eq!(
        (o.status.code(), out(&o)),
        (
            Some(0),
            format!(
                "Leadership transferred from {:x} to {:x}\n",
                ids[leader], ids[target]
            )
        ),
        "{}",
        err_lines(&o)
    );
    assert_eq!(c.wait_leader(Duration::from_secs(10)), target);
    // Only followers given: the same refusal as etcdctl's.
    let followers: Vec<String> = (0..3)
        .filter(|&i| i != target)
        .map(|i| c.members[i].endpoint())
        .collect();
    let eps = followers.join(",");
    let args = ["move-leader", "1"];
    let r = run_ctl(&real_etcdctl(), &eps, &args, None);
    let g = run_ctl(&our_etcdctl(), &eps, &args, None);
    assert_eq!(
        (g.status.code(), err_lines(&g)),
        (r.status.code(), err_lines(&r))
    );
}
