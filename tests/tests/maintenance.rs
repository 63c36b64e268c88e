//! Alarms, defragmentation and hashes: NOSPACE raised when the backend outgrows
//! `--quota-backend-bytes` (writes refused, reads/deletes/compaction/defrag allowed, disarm
//! restores writes); `etcdctl alarm`, `defrag`, `endpoint hashkv` print what etcdctl 3.4.23
//! prints; HashKV agrees across members.

use std::path::Path;

use retcd_tests::*;

const QUOTA: &str = "--quota-backend-bytes=1000000";

/// Puts 80 kB values until the server refuses; returns how many went in.
fn fill(bin: &Path, ep: &str) -> usize {
    let value = "v".repeat(80_000);
    for i in 0..200 {
        let o = run_ctl(
            bin,
            ep,
            &["put", &format!("k{i:03}")],
            Some(value.as_bytes()),
        );
        if !o.status.success() {
            assert_eq!(
                (o.status.code(), err_lines(&o)),
                (
                    Some(1),
                    "Error: etcdserver: mvcc: database space exceeded\n".to_string()
                )
            );
            return i;
        }
    }
    panic!("the quota never applied");
}

fn same(ep: &str, args: &[&str], stdin: Option<&str>) -> Outcome {
    let r = run_ctl(&real_etcdctl(), ep, args, stdin.map(str::as_bytes));
    let o = run_ctl(&our_etcdctl(), ep, args, stdin.map(str::as_bytes));
    let real = (
        args.join(" "),
        r.status.code().unwrap_or(-1),
        out(&r),
        err_lines(&r),
    );
    let ours = (
        args.join(" "),
        o.status.code().unwrap_or(-1),
        out(&o),
        err_lines(&o),
    );
    assert_eq!(ours, real, "our etcdctl vs etcdctl 3.4.23");
    ours
}

#[test]
fn nospace_refuses_writes_until_space_is_freed_and_the_alarm_disarmed() {
    let m = Member::start_with(Flavor::Retcd, &[QUOTA], &[]);
    let ep = m.endpoint();
    etcdctl(&ep, &["put", "survivor", "before the quota"], None);
    let n = fill(&our_etcdctl(), &ep);
    assert!(n >= 3, "only {n} puts fit");
    let id = json_u64(
        &out(&etcdctl(&ep, &["endpoint", "status", "-w", "json"], None)),
        "member_id",
    )
    .unwrap();
    let listed = same(&ep, &["alarm", "list"], None);
    assert_eq!(listed.2, format!("memberID:{id} alarm:NOSPACE \n"));
    same(&ep, &["alarm", "list", "-w", "json"], None);
    same(&ep, &["alarm", "list", "-w", "fields"], None);
    same(&ep, &["alarm", "list", "extra"], None);
    let status = same(&ep, &["endpoint", "status"], None);
    assert!(
        status
            .2
            .ends_with(&format!("memberID:{id} alarm:NOSPACE \n")),
        "{}",
        status.2
    );
    // Writes fail; reads and read-only transactions work.
    same(&ep, &["put", "x", "y"], None);
    same(&ep, &["lease", "grant", "10"], None);
    same(&ep, &["txn"], Some("\nput x y\n\n"));
    same(&ep, &["txn"], Some("\nget k000 --keys-only\n\n"));
    same(&ep, &["get", "k000", "--keys-only"], None);
    // Free space: delete, compact, defragment; then disarm.
    let del = out(&etcdctl(&ep, &["del", "k", "--prefix"], None));
    assert_eq!(del, format!("{n}\n"));
    let rev = json_u64(
        &out(&etcdctl(&ep, &["get", "x", "-w", "json"], None)),
        "revision",
    )
    .unwrap();
    let c = run_ctl(&our_etcdctl(), &ep, &["compaction", &rev.to_string()], None);
    assert_eq!(out(&c), format!("compacted revision {rev}\n"));
    same(&ep, &["defrag"], None);
    let o = run_ctl(&our_etcdctl(), &ep, &["alarm", "disarm"], None);
    assert_eq!(out(&o), format!("memberID:{id} alarm:NOSPACE \n"));
    same(&ep, &["alarm", "list"], None);
    same(&ep, &["alarm", "disarm"], None);
    let o = run_ctl(&our_etcdctl(), &ep, &["put", "x", "y"], None);
    assert_eq!(out(&o), "OK\n", "{}", err_lines(&o));
    // Nothing acknowledged was lost on the way.
    assert_eq!(
        out(&etcdctl(
            &ep,
            &["get", "survivor", "--print-value-only"],
            None
        )),
        "before the quota\n"
    );
}

#[test]
fn the_alarm_survives_a_restart_and_real_etcd_agrees_with_our_etcdctl() {
    let mut m = Member::start_with(Flavor::Retcd, &[QUOTA], &[]);
    fill(&our_etcdctl(), &m.endpoint());
    m.restart();
    let o = etcdctl(&m.endpoint(), &["put", "x", "y"], None);
    assert_eq!(
        err_lines(&o),
        "Error: etcdserver: mvcc: database space exceeded\n"
    );
    // The referee: real etcd under the same quota, read by both etcdctls.
    let real = Member::start_with(Flavor::RealEtcd, &[QUOTA], &[]);
    fill(&our_etcdctl(), &real.endpoint());
    same(&real.endpoint(), &["alarm", "list"], None);
    same(&real.endpoint(), &["alarm", "list", "-w", "json"], None);
    same(&real.endpoint(), &["put", "x", "y"], None);
    same(&real.endpoint(), &["defrag"], None);
    let o = run_ctl(&our_etcdctl(), &real.endpoint(), &["alarm", "disarm"], None);
    assert!(out(&o).ends_with("alarm:NOSPACE \n"), "{}", out(&o));
    same(&real.endpoint(), &["alarm", "list"], None);
}

#[test]
fn hashkv_agrees_across_members_and_prints_as_etcdctl() {
    let c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    for i in 0..20 {
        etcdctl(&ep, &["put", &format!("h{i}"), &format!("v{i}")], None);
    }
    etcdctl(&ep, &["del", "h3"], None);
    etcdctl(&ep, &["compaction", "5"], None);
    // Let every member apply everything.
    let rev = json_u64(
        &out(&etcdctl(&ep, &["get", "h1", "-w", "json"], None)),
        "revision",
    )
    .unwrap();
    for m in &c.members {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while json_u64(
            &out(&etcdctl(
                &m.endpoint(),
                &["get", "h1", "-w", "json", "--consistency=s"],
                None,
            )),
            "revision",
        ) != Some(rev)
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let eps = c.endpoints();
    let r = same(&eps, &["endpoint", "hashkv"], None);
    let hashes: Vec<&str> = r.2.lines().map(|l| l.split(", ").nth(1).unwrap()).collect();
    assert_eq!(hashes.len(), 3);
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{}", r.2);
    same(&eps, &["endpoint", "hashkv", "--rev=10"], None);
    same(&eps, &["endpoint", "hashkv", "-w", "table"], None);
    same(
        &ep,
        &["endpoint", "hashkv", "--cluster", "-w", "json"],
        None,
    );
    same(&ep, &["endpoint", "hashkv", "--rev=2"], None);
    same(&ep, &["endpoint", "hashkv", "--rev=100000"], None);
    // A different history gives a different hash.
    let before = out(&etcdctl(&ep, &["endpoint", "hashkv", "--rev=10"], None));
    let now = out(&etcdctl(&ep, &["endpoint", "hashkv"], None));
    assert_ne!(before, now);
    same(&ep, &["defrag", "--cluster"], None);
}

/// etcd's defragmentation stops the world; retcd's must not. With tens of MB of history to
/// rewrite, writes keep completing while the Defragment call is in flight.
#[test]
fn writes_continue_while_a_defragmentation_runs() {
    let m = Member::start(Flavor::Retcd);
    let url = m.client_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let mut c = etcd_client::Client::connect([url.clone()], None)
            .await
            .unwrap();
        let value = vec![7u8; 4096];
        // ~40 MB of values over three versions per key, then all but the last compacted away.
        let mut rev = 0;
        for round in 0..3 {
            let mut tasks = Vec::new();
            for w in 0..8 {
                let mut c = c.clone();
                let value = value.clone();
                tasks.push(tokio::spawn(async move {
                    let mut last = 0;
                    for i in 0..400 {
                        let r = c
                            .put(format!("d/{w}/{i}"), value.clone(), None)
                            .await
                            .expect("put");
                        last = r.header().map(|h| h.revision()).unwrap_or(0);
                    }
                    last
                }));
            }
            for t in tasks {
                rev = rev.max(t.await.unwrap());
            }
            eprintln!("round {round} done at revision {rev}");
        }
        c.compact(rev, None).await.unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let mut c = c.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let t = std::time::Instant::now();
                    c.put(format!("w/{i}"), "x", None)
                        .await
                        .expect("put during defrag");
                    lat.push((t, t.elapsed()));
                    i += 1;
                }
                lat
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        c.defragment().await.expect("defragment");
        let took = started.elapsed();
        let ended = std::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let lat = writer.await.unwrap();
        let during: Vec<std::time::Duration> = lat
            .iter()
            .filter(|(t, d)| *t >= started && *t + *d <= ended)
            .map(|(_, d)| *d)
            .collect();
        let worst = lat.iter().map(|(_, d)| *d).max().unwrap_or_default();
        eprintln!(
            "defragment took {took:?}; {} writes completed during it; slowest write {worst:?}",
            during.len()
        );
        if took > std::time::Duration::from_millis(300) {
            assert!(
                !during.is_empty(),
                "no write completed during a {took:?} defragmentation"
            );
        }
        // A stop-the-world defragmentation would hold a write for its whole duration.
        assert!(
            took < std::time::Duration::from_millis(300) || worst < took,
            "a write waited as long as the defragmentation ({worst:?} vs {took:?})"
        );
    });
}
