//! `etcdctl make-mirror` (SCENARIOS §4): two source clusters merged into a third by two mirrors
//! at once; later changes flow within a second; nothing flows back; a restarted mirror resumes
//! without a full copy; a source or destination restart only pauses it.

use std::time::{Duration, Instant};

use retcd_tests::*;

fn get_all(ep: &str, prefix: &str) -> String {
    out(&etcdctl(ep, &["get", prefix, "--prefix"], None))
}

fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

fn revision(ep: &str) -> u64 {
    json_u64(
        &out(&etcdctl(ep, &["get", "nothing", "-w", "json"], None)),
        "revision",
    )
    .expect("revision")
}

fn put(ep: &str, k: &str, v: &str) {
    let o = etcdctl(ep, &["put", k, v], None);
    assert!(o.status.success(), "{}", err_lines(&o));
}

#[test]
fn two_clusters_merge_into_a_third() {
    let c1 = Member::start(Flavor::Retcd);
    let c2 = Member::start(Flavor::Retcd);
    let c3 = Member::start(Flavor::Retcd);
    let (e1, e2, e3) = (c1.endpoint(), c2.endpoint(), c3.endpoint());
    for i in 0..20 {
        put(&e1, &format!("/cluster1/k{i:02}"), &format!("one-{i}"));
        put(&e2, &format!("/cluster2/k{i:02}"), &format!("two-{i}"));
    }
    put(&e1, "/cluster1", "cluster1");
    put(&e2, "/cluster2", "cluster2");
    let ours = our_etcdctl();
    let m1 = Running::start(&ours, &e1, &["make-mirror", &e3]);
    let m2 = Running::start(&ours, &e2, &["make-mirror", &e3]);
    let want1 = get_all(&e1, "/cluster1");
    let want2 = get_all(&e2, "/cluster2");
    assert!(
        wait_until(Duration::from_secs(15), || get_all(&e3, "/cluster1")
            == want1
            && get_all(&e3, "/cluster2") == want2),
        "cluster 3 holds: {}",
        get_all(&e3, "/")
    );
    // A later change on a source shows up on the destination within a second.
    put(&e2, "/cluster2", "renew cluster2");
    let t = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || out(&etcdctl(
        &e3,
        &["get", "/cluster2", "--print-value-only"],
        None
    ))
        == "renew cluster2\n"));
    let took = t.elapsed();
    eprintln!("change mirrored after {took:?}");
    // Deletes flow too; changes on the destination never flow back.
    etcdctl(&e1, &["del", "/cluster1/k00"], None);
    put(&e3, "/cluster1/only-on-3", "x");
    assert!(wait_until(Duration::from_secs(5), || !get_all(
        &e3,
        "/cluster1/k00"
    )
    .contains("k00")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get_all(&e1, "/cluster1/only-on-3"), "");

    // The mirror dies and comes back: it resumes from where it stopped, no full copy. Each
    // source revision is one destination revision.
    m1.kill9();
    put(&e1, "/cluster1/k01", "changed while down");
    put(&e1, "/cluster1/new", "new");
    let before = revision(&e3);
    let m1 = Running::start(&ours, &e1, &["make-mirror", &e3]);
    assert!(wait_until(Duration::from_secs(10), || out(&etcdctl(
        &e3,
        &["get", "/cluster1/new", "--print-value-only"],
        None
    )) == "new\n"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(revision(&e3), before + 2, "resumed without a full copy");
    assert_eq!(
        out(&etcdctl(
            &e3,
            &["get", "/cluster1/k01", "--print-value-only"],
            None
        )),
        "changed while down\n"
    );
    drop(m1);
    drop(m2);
}

#[test]
fn a_mirror_survives_source_and_destination_restarts() {
    let mut src = Member::start(Flavor::Retcd);
    let mut dst = Member::start(Flavor::Retcd);
    let (es, ed) = (src.endpoint(), dst.endpoint());
    put(&es, "a/1", "1");
    let ours = our_etcdctl();
    let m = Running::start(
        &ours,
        &es,
        &["make-mirror", "--prefix", "a/", "--dest-prefix", "b/", &ed],
    );
    assert!(wait_until(Duration::from_secs(10), || get_all(&ed, "b/") == "b/1\n1\n"));
    src.restart();
    put(&es, "a/2", "2");
    assert!(
        wait_until(Duration::from_secs(20), || get_all(&ed, "b/")
            == "b/1\n1\nb/2\n2\n"),
        "after source restart: {}",
        get_all(&ed, "")
    );
    dst.restart();
    put(&es, "a/3", "3");
    assert!(
        wait_until(Duration::from_secs(20), || get_all(&ed, "b/")
            == "b/1\n1\nb/2\n2\nb/3\n3\n"),
        "after destination restart: {}",
        get_all(&ed, "")
    );
    // Keys outside --prefix are not mirrored.
    put(&es, "c/1", "x");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get_all(&ed, "c/"), "");
    drop(m);
}

#[test]
fn no_dest_prefix_mirrors_to_the_root_and_bad_flags_fail_as_etcdctl() {
    let src = Member::start(Flavor::Retcd);
    let dst = Member::start(Flavor::Retcd);
    let (es, ed) = (src.endpoint(), dst.endpoint());
    put(&es, "/p/x", "1");
    let m = Running::start(
        &our_etcdctl(),
        &es,
        &["make-mirror", "--prefix", "/p/", "--no-dest-prefix", &ed],
    );
    assert!(wait_until(Duration::from_secs(10), || get_all(&ed, "x") == "x\n1\n"));
    drop(m);
    // Real etcdctl's make-mirror works against retcd too.
    let third = Member::start(Flavor::Retcd);
    let real = Running::start(&real_etcdctl(), &es, &["make-mirror", &third.endpoint()]);
    put(&es, "/p/y", "2");
    assert!(wait_until(Duration::from_secs(10), || get_all(
        &third.endpoint(),
        "/p/"
    )
        == "/p/x\n1\n/p/y\n2\n"));
    drop(real);
    for args in [
        vec!["make-mirror"],
        vec!["make-mirror", "--dest-prefix", "d", "--no-dest-prefix", &ed],
    ] {
        let r = run_ctl(&real_etcdctl(), &es, &args, None);
        let o = run_ctl(&our_etcdctl(), &es, &args, None);
        assert_eq!(
            (o.status.code(), err_lines(&o)),
            (r.status.code(), err_lines(&r)),
            "{args:?}"
        );
    }
}
