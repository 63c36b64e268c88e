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

/// What a Lock or Election call gave: "ok" or the status code and message.
fn said<T>(r: Result<T, etcd_client::Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(etcd_client::Error::GRpcStatus(s)) => format!("{:?}: {}", s.code(), s.message()),
        Err(e) => format!("other: {e}"),
    }
}

/// The Lock and Election services with auth on, against `flavor`: what each call gave.
async fn services_under_auth(flavor: Flavor) -> Vec<(&'static str, String)> {
    let m = Member::start(flavor);
    let ep = m.endpoint();
    let setup = run_steps(&real_etcdctl(), &ep, LOCK_USERS);
    assert!(setup.iter().all(|o| o.1 == 0), "{setup:?}");
    let as_user = |user: &str, pw: &str| {
        let url = m.client_url();
        let opts = etcd_client::ConnectOptions::new().with_user(user, pw);
        async move { Client::connect([url], Some(opts)).await.unwrap() }
    };
    let mut dan = as_user("dan", "dpw").await;
    let mut eve = as_user("eve", "epw").await;
    let mut anon = Client::connect([m.client_url()], None).await.unwrap();
    let dl = dan.lease_grant(30, None).await.unwrap().id();
    let el = eve.lease_grant(30, None).await.unwrap().id();
    let with = |l| Some(LockOptions::new().with_lease(l));
    let mut got = Vec::new();
    let held = dan.lock("/locks/a", with(dl)).await;
    let key = held.as_ref().map(|r| r.key().to_vec()).unwrap_or_default();
    got.push(("dan locks /locks/a", said(held)));
    got.push(("eve unlocks dan's key", said(eve.unlock(key.clone()).await)));
    got.push(("dan unlocks", said(dan.unlock(key).await)));
    got.push((
        "eve locks /locks/a",
        said(eve.lock("/locks/a", with(el)).await),
    ));
    got.push(("dan locks /other", said(dan.lock("/other", with(dl)).await)));
    got.push((
        "anonymous locks /locks/a",
        said(anon.lock("/locks/a", with(dl)).await),
    ));
    got.push((
        "eve campaigns in /locks/e",
        said(eve.campaign("/locks/e", "v", el).await),
    ));
    got.push((
        "dan campaigns in /other",
        said(dan.campaign("/other", "v", dl).await),
    ));
    let won = dan.campaign("/locks/e", "v1", dl).await;
    let leader = won.as_ref().ok().and_then(|r| r.leader().cloned());
    got.push(("dan campaigns in /locks/e", said(won)));
    got.push(("dan asks the leader", said(dan.leader("/locks/e").await)));
    got.push(("eve asks the leader", said(eve.leader("/locks/e").await)));
    let proclaim = |l: Option<etcd_client::LeaderKey>| {
        Some(etcd_client::ProclaimOptions::new().with_leader(l.unwrap_or_default()))
    };
    got.push((
        "eve proclaims as dan",
        said(eve.proclaim("v2", proclaim(leader.clone())).await),
    ));
    got.push((
        "dan proclaims",
        said(dan.proclaim("v2", proclaim(leader.clone())).await),
    ));
    let resign = |l: Option<etcd_client::LeaderKey>| {
        Some(ResignOptions::new().with_leader(l.unwrap_or_default()))
    };
    got.push((
        "eve resigns for dan",
        said(eve.resign(resign(leader.clone())).await),
    ));
    got.push(("dan resigns", said(dan.resign(resign(leader)).await)));
    // Permissions are checked before the lease is looked up.
    got.push((
        "dan locks /other with a lease that does not exist",
        said(dan.lock("/other", with(0x12345)).await),
    ));
    got.push((
        "eve locks /locks/a without a lease",
        said(eve.lock("/locks/a", None).await),
    ));
    got
}

/// With auth on, the services check each caller's permissions as etcd's do (they act with
/// the caller's token): the same answers from real etcd and retcd, call by call.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn lock_and_election_services_check_the_callers_permissions() {
    let referee = services_under_auth(Flavor::RealEtcd).await;
    let denied = "Unknown: etcdserver: permission denied";
    assert_eq!(referee[0], ("dan locks /locks/a", "ok".to_string()));
    assert_eq!(referee[3], ("eve locks /locks/a", denied.to_string()));
    let ours = services_under_auth(Flavor::Retcd).await;
    assert_eq!(ours, referee);
}

/// Lock and Campaign without a lease (0) and with one that does not exist, against `flavor`.
async fn lease_cases(flavor: Flavor) -> Vec<(&'static str, String)> {
    let m = Member::start(flavor);
    let mut c = Client::connect([m.client_url()], None).await.unwrap();
    let mut got = Vec::new();
    let locked = c.lock("nolease", None).await.unwrap();
    let key = String::from_utf8(locked.key().to_vec()).unwrap();
    let id = i64::from_str_radix(key.strip_prefix("nolease/").unwrap(), 16).unwrap();
    let ttl = c.lease_time_to_live(id, None).await.unwrap().granted_ttl();
    got.push((
        "lock without a lease: its key's lease's TTL",
        ttl.to_string(),
    ));
    let kvs = c.get(key.as_str(), None).await.unwrap().kvs().to_vec();
    got.push((
        "lock without a lease: its key is under that lease",
        (kvs.len() == 1 && kvs[0].lease() == id).to_string(),
    ));
    let won = c.campaign("nolease-e", "v", 0).await.unwrap();
    let leader = won.leader().unwrap().clone();
    let ttl = c
        .lease_time_to_live(leader.lease(), None)
        .await
        .unwrap()
        .granted_ttl();
    got.push(("campaign without a lease: its lease's TTL", ttl.to_string()));
    got.push((
        "campaign without a lease: the leader key names it",
        (leader.key() == format!("nolease-e/{:x}", leader.lease()).as_bytes()).to_string(),
    ));
    let missing = Some(LockOptions::new().with_lease(0x12345));
    got.push((
        "lock with a lease that does not exist",
        said(c.lock("x", missing).await),
    ));
    got.push((
        "campaign with a lease that does not exist",
        said(c.campaign("y", "v", 0x12345).await),
    ));
    got
}

/// A contender naming no lease gets a session lease of 60 s, as etcd's services open a
/// session for it; a lease that does not exist is refused. The same from real etcd and retcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn contenders_without_a_lease_get_a_session_lease_and_missing_leases_are_refused() {
    let referee = lease_cases(Flavor::RealEtcd).await;
    assert_eq!(
        referee[0],
        (
            "lock without a lease: its key's lease's TTL",
            "60".to_string()
        )
    );
    assert_eq!(
        referee[4].1,
        "Unknown: etcdserver: requested lease not found"
    );
    let ours = lease_cases(Flavor::Retcd).await;
    assert_eq!(ours, referee);
}
