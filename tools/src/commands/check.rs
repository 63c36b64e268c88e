//! `etcdctl check perf|datascale`: etcdctl's built-in load checks. `perf` writes 1 KiB values
//! under `--prefix` at a fixed rate for 60 seconds and judges throughput and latency;
//! `datascale` writes a fixed number of keys and reports how much resident memory the first
//! endpoint grew by. Both delete their keys afterwards (and compact/defragment on request).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Conn, Failure};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::{
    CompactionRequest, DefragmentRequest, DeleteRangeRequest, PutRequest, RangeRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};

pub const PERF_FLAGS: &[Spec] = &[
    flag("load", Kind::Value, "s"),
    flag("prefix", Kind::Value, "/etcdctl-check-perf/"),
    flag("auto-compact", Kind::Bool, "false"),
    flag("auto-defrag", Kind::Bool, "false"),
];

pub const DATASCALE_FLAGS: &[Spec] = &[
    flag("load", Kind::Value, "s"),
    flag("prefix", Kind::Value, "/etcdctl-check-datascale/"),
    flag("auto-compact", Kind::Bool, "false"),
    flag("auto-defrag", Kind::Bool, "false"),
];

/// etcdctl's exit code for bad input (keys already under the prefix).
const EXIT_INVALID_INPUT: i32 = 3;

fn model(f: &Parsed) -> Result<&'static str, Failure> {
    match f.get("load").as_str() {
        "s" | "small" => Ok("s"),
        "m" | "medium" => Ok("m"),
        "l" | "large" => Ok("l"),
        "xl" | "xLarge" => Ok("xl"),
        other => Err(Failure::bad_feature(format!("unknown load option {other}"))),
    }
}

/// Latency statistics of one run (seconds), as etcd's report computes them.
struct Stats {
    rps: f64,
    slowest: f64,
    stddev: f64,
    errors: std::collections::BTreeMap<String, u64>,
}

fn stats(lat: &[f64], errors: std::collections::BTreeMap<String, u64>, took: Duration) -> Stats {
    let n = lat.len().max(1) as f64;
    let mean = lat.iter().sum::<f64>() / n;
    let var = lat.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    Stats {
        rps: lat.len() as f64 / took.as_secs_f64().max(1e-9),
        slowest: lat.iter().cloned().fold(0.0, f64::max),
        stddev: var.sqrt(),
        errors,
    }
}

/// Sends `total` puts (or as many as fit in `duration` at `rate` per second) from `clients`
/// concurrent workers over `conns` connections; returns latencies and errors.
struct Load<'a> {
    conns: &'a [Arc<Conn>],
    clients: usize,
    prefix: &'a str,
    key_size: usize,
    value_size: usize,
    total: Option<u64>,
    rate: Option<(u64, Duration)>,
}

async fn load(
    spec: Load<'_>,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> (Vec<f64>, std::collections::BTreeMap<String, u64>, Duration) {
    let Load {
        conns,
        clients,
        prefix,
        key_size,
        value_size,
        total,
        rate,
    } = spec;
    let (tx, rx) = async_channel(clients);
    let started = Instant::now();
    let feeder = {
        let prefix = prefix.as_bytes().to_vec();
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut next = tokio::time::Instant::now();
            loop {
                if total.is_some_and(|t| sent >= t) {
                    break;
                }
                if let Some((per_sec, d)) = rate {
                    if started.elapsed() >= d {
                        break;
                    }
                    next += Duration::from_secs_f64(1.0 / per_sec as f64);
                    tokio::time::sleep_until(next).await;
                }
                let mut key = prefix.clone();
                key.extend((0..key_size).map(|i| {
                    let r = random_u64();
                    (r >> ((i % 8) * 8)) as u8
                }));
                if tx.send(key).await.is_err() {
                    break;
                }
                sent += 1;
            }
        })
    };
    let progress = Arc::new(progress);
    let mut workers = Vec::new();
    for i in 0..clients {
        let conn = conns[i % conns.len()].clone();
        let rx = rx.clone();
        let progress = progress.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errs: Vec<String> = Vec::new();
            let value = vec![0u8; value_size];
            while let Ok(key) = rx.recv().await {
                let t = Instant::now();
                let r = conn
                    .kv()
                    .put(conn.req(PutRequest {
                        key,
                        value: value.clone(),
                        ..Default::default()
                    }))
                    .await;
                lat.push(t.elapsed().as_secs_f64());
                if let Err(e) = r {
                    errs.push(crate::client::status_message(&e));
                }
                progress(1);
            }
            (lat, errs)
        }));
    }
    drop(rx);
    let _ = feeder.await;
    let mut all = Vec::new();
    let mut errors = std::collections::BTreeMap::new();
    for w in workers {
        if let Ok((lat, errs)) = w.await {
            all.extend(lat);
            for e in errs {
                *errors.entry(e).or_insert(0) += 1;
            }
        }
    }
    (all, errors, started.elapsed())
}

/// A multi-consumer channel on tokio's mpsc (receivers share one lock).
fn async_channel(cap: usize) -> (tokio::sync::mpsc::Sender<Vec<u8>>, SharedRx) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap.max(1));
    (tx, SharedRx(Arc::new(tokio::sync::Mutex::new(rx))))
}

#[derive(Clone)]
struct SharedRx(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>>);

impl SharedRx {
    async fn recv(&self) -> Result<Vec<u8>, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}

fn random_u64() -> u64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1
    ));
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

async fn refuse_if_used(conn: &Conn, prefix: &str) -> Result<(), Failure> {
    let r = conn
        .kv()
        .range(conn.req(RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: super::prefix_end(prefix.as_bytes()),
            limit: 1,
            ..Default::default()
        }))
        .await?
        .into_inner();
    if !r.kvs.is_empty() {
        return Err(Failure {
            message: format!(
                "prefix {prefix:?} has keys. Delete with etcdctl del --prefix {prefix} first"
            ),
            code: EXIT_INVALID_INPUT,
        });
    }
    Ok(())
}

/// Deletes the check's keys, then compacts and defragments if asked.
async fn clean_up(f: &Parsed, conn: &Conn, prefix: &str) -> Result<(), Failure> {
    let mut req = tonic::Request::new(DeleteRangeRequest {
        key: prefix.as_bytes().to_vec(),
        range_end: super::prefix_end(prefix.as_bytes()),
        ..Default::default()
    });
    req.set_timeout(Duration::from_secs(30));
    let d = conn.kv().delete_range(req).await?.into_inner();
    if f.bool("auto-compact") {
        let rev = d.header.map(|h| h.revision).unwrap_or(0);
        conn.kv()
            .compact(conn.req(CompactionRequest {
                revision: rev,
                physical: true,
            }))
            .await?;
        println!("Compacted with revision {rev}");
    }
    if f.bool("auto-defrag") {
        for ep in crate::client::endpoints(f)? {
            let c = Conn::open_endpoint(f, &ep).await?;
            match MaintenanceClient::new(c.channel.clone())
                .defragment(c.req(DefragmentRequest {}))
                .await
            {
                Ok(_) => println!("Defragmented {ep:?}"),
                Err(e) => eprintln!(
                    "Failed to defragment etcd member[{ep}] ({})",
                    crate::client::status_message(&e)
                ),
            }
        }
    }
    Ok(())
}

fn bar(total: u64) -> impl Fn(u64) + Send + Sync + 'static {
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tty = std::io::stderr().is_terminal();
    move |n| {
        let d = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        if tty && (d.is_multiple_of(100) || d == total) {
            eprint!("\r{d} / {total}");
            let _ = std::io::stderr().flush();
        }
    }
}

pub async fn run(sub: &str, f: &Parsed) -> Result<String, Failure> {
    let m = model(f)?;
    let prefix = f.get("prefix");
    let clients = match m {
        "s" => 50,
        "m" => 200,
        "l" => 500,
        _ => 1000,
    };
    let mut out = String::new();
    let first = Conn::open(f).await?;
    refuse_if_used(&first, &prefix).await?;
    // Share a handful of connections among the clients (etcdctl opens one per client).
    let mut conns = vec![Arc::new(first)];
    for _ in 1..clients.min(16) {
        conns.push(Arc::new(Conn::open(f).await?));
    }
    if sub == "perf" {
        let limit: u64 = match m {
            "s" => 150,
            "m" => 1000,
            "l" => 8000,
            _ => 15000,
        };
        let duration = Duration::from_secs(60);
        let (lat, errors, took) = load(
            Load {
                conns: &conns,
                clients,
                prefix: &prefix,
                key_size: 256,
                value_size: 1024,
                total: None,
                rate: Some((limit, duration)),
            },
            bar(limit * 60),
        )
        .await;
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        clean_up(f, &conns[0], &prefix).await?;
        let s = stats(&lat, errors, took);
        let mut ok = true;
        if !s.errors.is_empty() {
            out.push_str("FAIL: too many errors\n");
            for (k, v) in &s.errors {
                out.push_str(&format!("FAIL: ERROR({k}) -> {v}\n"));
            }
            ok = false;
        }
        if s.rps / limit as f64 <= 0.9 {
            out.push_str(&format!(
                "FAIL: Throughput too low: {} writes/s\n",
                s.rps as i64 + 1
            ));
            ok = false;
        } else {
            out.push_str(&format!(
                "PASS: Throughput is {} writes/s\n",
                s.rps as i64 + 1
            ));
        }
        if s.slowest > 0.5 {
            out.push_str(&format!(
                "Slowest request took too long: {:.6}s\n",
                s.slowest
            ));
            ok = false;
        } else {
            out.push_str(&format!("PASS: Slowest request took {:.6}s\n", s.slowest));
        }
        if s.stddev > 0.1 {
            out.push_str(&format!("Stddev too high: {:.6}s\n", s.stddev));
            ok = false;
        } else {
            out.push_str(&format!("PASS: Stddev is {:.6}s\n", s.stddev));
        }
        if ok {
            out.push_str("PASS\n");
            return Ok(out);
        }
        out.push_str("FAIL\n");
        super::print_now(&out);
        return Err(Failure::error(""));
    }
    let limit: u64 = match m {
        "s" => 10_000,
        "m" => 100_000,
        "l" => 1_000_000,
        _ => 3_000_000,
    };
    let ep = crate::client::endpoints(f)?
        .into_iter()
        .next()
        .unwrap_or_default();
    let before = resident_memory(&ep).await;
    if before <= 0.0 {
        super::print_now(
            "FAIL: Could not read process_resident_memory_bytes before the put operations.\n",
        );
        return Err(Failure::error(""));
    }
    super::print_now(&format!(
        "Start data scale check for work load [{limit} key-value pairs, 1024 bytes per key-value, {clients} concurrent clients].\n"
    ));
    let (_lat, errors, _took) = load(
        Load {
            conns: &conns,
            clients,
            prefix: &prefix,
            key_size: 512,
            value_size: 512,
            total: Some(limit),
            rate: None,
        },
        bar(limit),
    )
    .await;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let after = resident_memory(&ep).await;
    clean_up(f, &conns[0], &prefix).await?;
    if after <= 0.0 {
        super::print_now(
            "FAIL: Could not read process_resident_memory_bytes after the put operations.\n",
        );
        return Err(Failure::error(""));
    }
    if !errors.is_empty() {
        out.push_str("FAIL: too many errors\n");
        for (k, v) in &errors {
            out.push_str(&format!("FAIL: ERROR({k}) -> {v}\n"));
        }
        super::print_now(&out);
        return Err(Failure::error(""));
    }
    let mb = (after - before) / (1024.0 * 1024.0);
    Ok(format!(
        "PASS: Approximate system memory used : {mb:.2} MB.\n"
    ))
}

/// `process_resident_memory_bytes` from the endpoint's `/metrics` (0 if unavailable).
async fn resident_memory(ep: &str) -> f64 {
    let hostport = ep
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(&hostport) else {
            return 0.0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let req = format!("GET /metrics HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return 0.0;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines()
            .find_map(|l| {
                l.strip_prefix("process_resident_memory_bytes ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    })
    .await
    .unwrap_or(0.0)
}
