//! Watch through real etcdctl 3.4.23: the same scenario against real etcd and retcd, every
//! watcher's output compared byte for byte (IDs masked), plus etcd's guarantees.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use retcd_tests::*;

/// A running `etcdctl watch` whose stdout is collected as it arrives.
struct Watch {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

fn spawn_watch(bin: &std::path::Path, ep: &str, args: &[&str]) -> Watch {
    let mut child = Command::new(bin)
        .arg(format!("--endpoints={ep}"))
        .arg("watch")
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn etcdctl watch");
    let mut pipe = child.stdout.take().expect("watch stdout");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let sink = stdout.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("watch stdout")
                .extend_from_slice(&buf[..n]);
        }
    });
    Watch {
        child,
        stdout,
        reader,
    }
}

impl Watch {
    fn len(&self) -> usize {
        self.stdout.lock().expect("watch stdout").len()
    }

    /// Waits until the watcher has printed something and then nothing more for 500 ms, or
    /// has exited (bounded: a loaded machine may take seconds to start a client).
    fn settle(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut seen, mut since) = (self.len(), Instant::now());
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            let now = self.len();
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if now > 0 && since.elapsed() >= Duration::from_millis(500) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until the member counts `n` watchers (`etcd_debugging_mvcc_watcher_total`), so
/// writes made next are seen by every live watcher.
fn wait_watchers(m: &Member, n: usize) {
    let want = format!("\netcd_debugging_mvcc_watcher_total {n}\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, body)) = http_get(m.client_port, "/metrics") {
            if body.contains(&want) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{:?} did not count {n} watchers within 30 s", m.flavor);
}

/// SIGINT, then (code, stdout, stderr without JSON log lines).
fn finish(mut w: Watch) -> (i32, String, String) {
    unsafe {
        libc::kill(w.child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = w.child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = w.child.kill();
    let o = w.child.wait_with_output().expect("watch output");
    let _ = w.reader.join();
    let stdout = String::from_utf8_lossy(&w.stdout.lock().expect("watch stdout")).into_owned();
    let mask = |s: &str| mask_json_fields(s, &["cluster_id", "member_id"]);
    (o.status.code().unwrap_or(-1), mask(&stdout), err_lines(&o))
}

fn scenario(flavor: Flavor, bin: &std::path::Path) -> Vec<(String, (i32, String, String))> {
    let m = Member::start(flavor);
    let ep = m.endpoint();
    let live: Vec<(&str, Vec<&str>)> = vec![
        ("key", vec!["w1"]),
        ("prefix prev-kv", vec!["--prefix", "w", "--prev-kv"]),
        ("json", vec!["w1", "-w", "json"]),
        ("prefix json", vec!["--prefix", "t", "-w", "json"]),
        ("range", vec!["w1", "w3"]),
    ];
    let mut watchers: Vec<(String, Watch)> = live
        .iter()
        .map(|(n, a)| (n.to_string(), spawn_watch(bin, &ep, a)))
        .collect();
    wait_watchers(&m, live.len());
    for args in [
        vec!["put", "w1", "a"],
        vec!["put", "w1", "b"],
        vec!["put", "w2", "c"],
        vec!["del", "w1"],
        vec!["put", "w3", "out-of-range"],
    ] {
        assert!(m.etcdctl(&args).status.success());
    }
    // One txn, one revision, three events: delivered together.
    let o = m.etcdctl_stdin(&["txn"], Some(b"\nput t1 x\nput t2 y\nput t3 z\n\n\n"));
    assert!(o.status.success());
    for (_, w) in watchers.iter_mut() {
        w.settle();
    }
    let mut results: Vec<(String, (i32, String, String))> =
        watchers.into_iter().map(|(n, w)| (n, finish(w))).collect();
    // Replay history from a revision.
    let mut c = spawn_watch(bin, &ep, &["--prefix", "w", "--rev=2", "-w", "json"]);
    c.settle();
    results.push(("replay json".into(), finish(c)));
    let mut c = spawn_watch(bin, &ep, &["w1", "--rev=3", "--prev-kv"]);
    c.settle();
    results.push(("replay prev-kv".into(), finish(c)));
    // A compacted start revision cancels the watch: exit code 5.
    assert!(m.etcdctl(&["compaction", "5"]).status.success());
    let mut c = spawn_watch(bin, &ep, &["--prefix", "w", "--rev=2"]);
    c.settle();
    results.push(("compacted".into(), finish(c)));
    results
}

#[test]
fn watch_output_matches_real_etcd() {
    let expected = scenario(Flavor::RealEtcd, &real_etcdctl());
    let got = scenario(Flavor::Retcd, &real_etcdctl());
    let mut failures = Vec::new();
    for (e, g) in expected.iter().zip(got.iter()) {
        if e != g {
            failures.push(format!(
                "{}:\n  real etcd: {:?}\n  retcd:     {:?}",
                e.0, e.1, g.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // And the reference outputs, literally.
    assert_eq!(got[0].1 .1, "PUT\nw1\na\nPUT\nw1\nb\nDELETE\nw1\n\n");
    assert_eq!(got[7].1 .0, 5);
    assert_eq!(
        got[7].1 .2,
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
}

#[test]
fn our_etcdctl_watch_matches_real_etcdctl() {
    let expected = scenario(Flavor::Retcd, &real_etcdctl());
    let got = scenario(Flavor::Retcd, &our_etcdctl());
    let mut failures = Vec::new();
    for (e, g) in expected.iter().zip(got.iter()) {
        if e != g {
            failures.push(format!(
                "{}:\n  real etcdctl: {:?}\n  our etcdctl:  {:?}",
                e.0, e.1, g.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
