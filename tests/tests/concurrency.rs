//! Locks and elections: real etcdctl 3.4.23 (client-side recipes over KV, watch and leases)
//! and the etcd-client crate (the Lock and Election gRPC services).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, LockOptions, ResignOptions};
use retcd_tests::*;

#[test]
fn etcdctl_lock_is_mutually_exclusive_and_elect_reports_the_leader() {
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    // The first holder keeps the lock while its command runs.
    let holder = Command::new(real_etcdctl())
        .args([&format!("--endpoints={ep}"), "lock", "mylock", "sleep", "2"])
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    let o = etcdctl(&ep, &["lock", "mylock", "echo", "second"], None);
    let waited = started.elapsed();
    assert_eq!(out(&o), "second\n", "{}", err_lines(&o));
    assert!(
        waited >= Duration::from_millis(800),
        "the second lock did not wait: {waited:?}"
    );
    let h = holder.wait_with_output().unwrap();
    assert!(h.status.success());
    // Without a command, etcdctl prints the lock key: name/<lease id>.
    let mut c = Command::new(real_etcdctl())
        .args([&format!("--endpoints={ep}"), "lock", "mylock"])
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until it prints the key it holds, then interrupt it.
    let stdout = c.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("etcdctl lock printed its key");
    unsafe {
        libc::kill(c.id() as i32, libc::SIGINT);
    }
    let _ = c.wait();
    // name/<lease ID in %x>: not zero-padded, so 1 to 16 hex digits.
    let id = line.strip_prefix("mylock/").unwrap_or_default();
    assert!(
        (1..=16).contains(&id.len()) && u64::from_str_radix(id, 16).is_ok(),
        "{line:?}"
    );

    // elect: a campaigner, and a listener that reports it.
    let mut campaigner = Command::new(real_etcdctl())
        .args([&format!("--endpoints={ep}"), "elect", "myelection", "p1"])
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut listener = Command::new(real_etcdctl())
        .args([&format!("--endpoints={ep}"), "elect", "-l", "myelection"])
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    for p in [&mut campaigner, &mut listener] {
        unsafe {
            libc::kill(p.id() as i32, libc::SIGINT);
        }
        let _ = p.wait();
    }
    let mut l = String::new();
    std::io::Read::read_to_string(listener.stdout.as_mut().unwrap(), &mut l).unwrap();
    let lines: Vec<&str> = l.lines().collect();
    assert!(
        lines.len() >= 2 && lines[0].starts_with("myelection/") && lines[1] == "p1",
        "{l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn lock_and_election_services() {
    let m = Member::start(Flavor::Retcd);
    let mut c = Client::connect([m.client_url()], None).await.unwrap();
    let l1 = c.lease_grant(30, None).await.unwrap().id();
    let l2 = c.lease_grant(30, None).await.unwrap().id();
    let k1 = c
        .lock("svc-lock", Some(LockOptions::new().with_lease(l1)))
        .await
        .unwrap()
        .key()
        .to_vec();
    assert_eq!(k1, format!("svc-lock/{l1:x}").into_bytes());
    // The second contender waits until the first unlocks.
    let mut c2 = c.clone();
    let waiter = tokio::spawn(async move {
        let r = c2
            .lock("svc-lock", Some(LockOptions::new().with_lease(l2)))
            .await;
        (Instant::now(), r.map(|r| r.key().to_vec()))
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished());
    let unlocked_at = Instant::now();
    c.unlock(k1).await.unwrap();
    let (granted_at, k2) = waiter.await.unwrap();
    assert!(granted_at >= unlocked_at);
    assert_eq!(k2.unwrap(), format!("svc-lock/{l2:x}").into_bytes());

    // A waiter whose lease expires while waiting is not granted the lock (Jepsen's etcd bug).
    let short = c.lease_grant(2, None).await.unwrap().id();
    let mut c3 = c.clone();
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        c3.lock("svc-lock", Some(LockOptions::new().with_lease(short))),
    )
    .await;
    match r {
        Err(_) => {}
        Ok(res) => assert!(res.is_err(), "granted a lock whose lease had expired"),
    }

    // Elections.
    let e1 = c.lease_grant(30, None).await.unwrap().id();
    let r = c.campaign("svc-elect", "v1", e1).await.unwrap();
    let leader_key = r.leader().unwrap().clone();
    let leader = c.leader("svc-elect").await.unwrap();
    assert_eq!(leader.kv().unwrap().value(), b"v1");
    let mut observe = c.observe("svc-elect").await.unwrap();
    let first = observe.message().await.unwrap().unwrap();
    assert_eq!(first.kv().unwrap().value(), b"v1");
    c.proclaim(
        "v2",
        Some(etcd_client::ProclaimOptions::new().with_leader(leader_key.clone())),
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), observe.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.kv().unwrap().value(), b"v2");
    c.resign(Some(ResignOptions::new().with_leader(leader_key)))
        .await
        .unwrap();
    let e = c.leader("svc-elect").await.unwrap_err();
    assert!(e.to_string().contains("election: no leader"), "{e}");
}
