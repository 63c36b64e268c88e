//! `etcd-bench`: a load generator with the subcommands and flags of etcd's `benchmark` tool,
//! talking plain etcd v3 gRPC (so it runs against real etcd unchanged). One file per
//! workload; the report is etcd's (`report.rs`), or JSON with `-w json`.

mod lease;
mod put;
mod range;
pub mod report;
mod stm;
mod txn;
mod watch;
mod wire;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{status_message, Token};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::flags::{self, flag, short, Kind, Parsed, Spec};
use crate::tls::Security;
use report::Report;
use wire::{H2Wire, Wire};

/// A connection to one member, carrying the auth token when `--user` is given.
pub type Ch = InterceptedService<Wire, Token>;

const GLOBAL: &[Spec] = &[
    flag("endpoints", Kind::Value, "127.0.0.1:2379"),
    flag("conns", Kind::Value, "1"),
    flag("clients", Kind::Value, "1"),
    flag("precise", Kind::Bool, "false"),
    flag("sample", Kind::Bool, "false"),
    flag("cert", Kind::Value, ""),
    flag("key", Kind::Value, ""),
    flag("cacert", Kind::Value, ""),
    flag("user", Kind::Value, ""),
    flag("dial-timeout", Kind::Value, "0s"),
    flag("target-leader", Kind::Bool, "false"),
    short("write-out", 'w', Kind::Value, "simple"),
    short("help", 'h', Kind::Bool, "false"),
];

const HELP: &str = "etcd-bench: a low-level benchmark tool for etcd v3 (etcd's `benchmark`)

Usage: etcd-bench [global flags] COMMAND [flags]

Commands:
  put                put (--key-size 8 --val-size 8 --total 10000 --key-space-size 1
                     --sequential-keys --rate 0 --compact-interval 0 --compact-index-delta 1000)
  range KEY [END]    range (--consistency l|s --total 10000 --rate 0)
  txn-put            txns of puts (--txn-ops 1 --key-size --val-size --total --key-space-size --rate)
  txn-mixed [KEY]    read or write txns (--rw-ratio 1 --end-key --limit 1000 --consistency
                     --key-size --val-size --total --key-space-size --rate)
  watch              watch creation and event latency (--streams 10 --watch-per-stream 100
                     --watched-key-total 1 --put-total 1000 --put-rate 0 --key-size 32
                     --key-space-size 1 --sequential-keys)
  watch-latency      put to watch event latency (--total 10000 --put-rate 100 --key-size 32 --val-size 32)
  lease-keepalive    lease keep-alive round trips (--total 10000)
  stm                software transactional memory txns (--isolation r|c|s|ss --keys 1
                     --keys-per-txn 1 --txn-wr-percent 50 --val-size 8 --total 10000 --rate 0)

Global flags: --endpoints (127.0.0.1:2379) --conns (1) --clients (1) --target-leader
  --user name[:password] --dial-timeout --precise --sample -w simple|json
Latencies are reported as etcd's benchmark reports them; -w json prints them for machines.
";

/// A failure that stops the benchmark: the message for stderr.
#[derive(Debug)]
pub struct Fail(pub String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(e.to_string())
    }
}

/// The parsed command line and the connections every workload shares.
pub struct Ctx {
    pub f: Parsed,
    /// One channel per `--conns` (each its own HTTP/2 connection).
    pub conns: Vec<Ch>,
    pub clients: usize,
    pub json: bool,
}

impl Ctx {
    /// The connection client `i` uses.
    pub fn conn(&self, i: usize) -> Ch {
        self.conns[i % self.conns.len()].clone()
    }

    pub fn usize(&self, name: &str) -> Result<usize, Fail> {
        let v = self.f.get(name);
        v.parse()
            .map_err(|_| Fail(format!("invalid argument {v:?} for \"--{name}\" flag")))
    }

    pub fn u64(&self, name: &str) -> Result<u64, Fail> {
        Ok(self.usize(name)? as u64)
    }

    /// Prints a finished report: text as etcd does (after `title`), or JSON (with `part`
    /// naming which of a command's reports it is).
    pub fn print(&self, op: &str, part: &str, title: &str, mut r: Report) {
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut v = r.json();
            v["op"] = serde_json::json!(op);
            if !part.is_empty() {
                v["part"] = serde_json::json!(part);
            }
            let _ = writeln!(out, "{v}");
        } else {
            let _ = write!(
                out,
                "{title}{}",
                r.text(self.f.bool("precise"), self.f.bool("sample"))
            );
        }
        let _ = out.flush();
    }

    /// A line etcd's benchmark prints before the report (not in JSON mode).
    pub fn say(&self, line: &str) {
        if !self.json {
            // A closed stdout (| head) is not an error worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// etcd's `binary.PutVarint` into a fixed-size key buffer (zero padded).
pub fn put_varint(buf: &mut [u8], n: i64) {
    buf.iter_mut().for_each(|b| *b = 0);
    let mut ux = ((n << 1) ^ (n >> 63)) as u64;
    let mut i = 0;
    while ux >= 0x80 {
        if let Some(b) = buf.get_mut(i) {
            *b = (ux as u8) | 0x80;
        }
        ux >>= 7;
        i += 1;
    }
    if let Some(b) = buf.get_mut(i) {
        *b = ux as u8;
    }
}

/// A small, fast PRNG (xorshift64*), seeded per task.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng((t ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// At most `rate` starts per second across all clients (0: unlimited).
pub struct Limiter {
    interval: Option<Duration>,
    next: std::sync::Mutex<Instant>,
}

impl Limiter {
    pub fn new(rate: u64) -> Limiter {
        Limiter {
            interval: (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64)),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let Some(iv) = self.interval else {
            return;
        };
        let slot = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + iv;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// A request of a workload: given the connection and the request's index.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Op = Arc<dyn Fn(Ch, usize, &mut Rng) -> OpFuture + Send + Sync>;

/// Runs `total` requests over `ctx.clients` concurrent clients, at most `rate` per second,
/// and reports their latencies.
pub async fn drive(ctx: &Ctx, total: usize, rate: u64, op: Op) -> Report {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let limiter = Arc::new(Limiter::new(rate));
    let start = Instant::now();
    let progress = progress_bar(total as u64, done.clone());
    let mut tasks = Vec::new();
    for c in 0..ctx.clients {
        let (conn, next, done, limiter, op) = (
            ctx.conn(c),
            next.clone(),
            done.clone(),
            limiter.clone(),
            op.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut r = Report::default();
            let mut rng = Rng::new(c as u64 + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                limiter.wait().await;
                let st = Instant::now();
                let res = op(conn.clone(), i, &mut rng).await;
                r.record(st - start, st.elapsed(), res.err());
                done.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        if let Ok(r) = t.await {
            report.merge(r);
        }
    }
    report.total = start.elapsed();
    progress.finish();
    report
}

/// A progress line on stderr when it is a terminal.
pub struct Progress {
    stop: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn finish(self) {
        if let Some(h) = self.stop {
            h.abort();
            eprintln!();
        }
    }
}

pub fn progress_bar(total: u64, done: Arc<AtomicU64>) -> Progress {
    if !std::io::stderr().is_terminal() || total == 0 {
        return Progress { stop: None };
    }
    Progress {
        stop: Some(tokio::spawn(async move {
            loop {
                let d = done.load(Ordering::Relaxed).min(total);
                let w = (d * 50 / total) as usize;
                eprint!(
                    "\r {d} / {total} [{}{}] {:.2}%",
                    "=".repeat(w),
                    " ".repeat(50 - w),
                    d as f64 * 100.0 / total as f64
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })),
    }
}

/// Connects to `ep` (TLS from `--cert/--key/--cacert` as etcdctl sets it up); without
/// `--dial-timeout` it waits as long as connecting takes.
async fn dial(ep: &str, timeout: Option<Duration>, security: &Security) -> Result<Channel, Fail> {
    crate::client::dial(ep, timeout.unwrap_or(Duration::MAX / 4), security)
        .await
        .map_err(|e| Fail(format!("dial error: {e}")))
}

/// `--target-leader`: the client URLs of the leader.
async fn leader_endpoints(
    eps: &[String],
    timeout: Option<Duration>,
    security: &Security,
) -> Result<Vec<String>, Fail> {
    for ep in eps {
        let Ok(ch) = dial(ep, timeout, security).await else {
            continue;
        };
        let Ok(st) = MaintenanceClient::new(ch.clone())
            .status(crate::etcdserverpb::StatusRequest {})
            .await
        else {
            continue;
        };
        let leader = st.into_inner().leader;
        let members = crate::etcdserverpb::cluster_client::ClusterClient::new(ch)
            .member_list(crate::etcdserverpb::MemberListRequest {
                linearizable: false,
            })
            .await
            .map_err(|e| {
                Fail(format!(
                    "failed to get a member list: {}",
                    status_message(&e)
                ))
            })?
            .into_inner()
            .members;
        if let Some(m) = members.into_iter().find(|m| m.id == leader) {
            return Ok(m.client_ur_ls);
        }
    }
    Err(Fail("failed to find a leader endpoint".into()))
}

async fn connect(f: &Parsed) -> Result<Vec<Ch>, Fail> {
    let security = Security::from_flags(f, "").map_err(|e| Fail(e.message))?;
    let timeout = flags::duration(&f.get("dial-timeout")).filter(|d| !d.is_zero());
    let mut eps = crate::client::endpoint_list(f);
    if eps.is_empty() {
        return Err(Fail("--endpoints is empty".into()));
    }
    if f.bool("target-leader") {
        eps = leader_endpoints(&eps, timeout, &security).await?;
    }
    let creds = crate::client::credentials(f, "").map_err(|e| Fail(e.message))?;
    let n: usize = f
        .get("conns")
        .parse()
        .map_err(|_| Fail("invalid argument for \"--conns\" flag".into()))?;
    let mut conns = Vec::new();
    for i in 0..n.max(1) {
        let ep = &eps[i % eps.len()];
        let ch = dial(ep, timeout, &security).await?;
        let token = match &creds {
            None => Token::default(),
            Some((name, password)) => {
                let t = crate::etcdserverpb::auth_client::AuthClient::new(ch.clone())
                    .authenticate(crate::etcdserverpb::AuthenticateRequest {
                        name: name.clone(),
                        password: password.clone(),
                    })
                    .await
                    .map_err(|e| Fail(format!("authentication failed: {}", status_message(&e))))?
                    .into_inner()
                    .token;
                Token::new(&t)
                    .ok_or_else(|| Fail("the server returned an unusable token".into()))?
            }
        };
        // Plain TCP: requests go straight onto an HTTP/2 connection (see wire.rs).
        let wire = match plain_authority(ep, &security) {
            Some(a) => Wire::H2(
                H2Wire::connect(&a, ch)
                    .await
                    .map_err(|e| Fail(format!("dial error: {e}")))?,
            ),
            None => Wire::Tonic(ch),
        };
        conns.push(InterceptedService::new(wire, token));
    }
    Ok(conns)
}

/// Runtime threads for `command` with `clients` concurrent clients: a thread per client up to
/// one per CPU. One client has one request in flight at a time, and every further thread only
/// puts hand-offs between threads on its requests' path: the load generator's own latency is
/// in every figure it reports. The watch workloads run streams and a writer beside their
/// clients, so they get a thread per CPU.
fn workers(command: &str, clients: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match command {
        "watch" | "watch-latency" => cpus,
        _ => clients.clamp(1, cpus),
    }
}

/// `host:port` of an endpoint reached without TLS.
fn plain_authority(ep: &str, security: &Security) -> Option<String> {
    if !matches!(security.for_endpoint(ep), Ok(None)) {
        return None;
    }
    retcd::raft::stream::plain_authority(&crate::client::endpoint_url(ep)).map(str::to_string)
}

/// Runs etcd-bench with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let (words, rest) = flags::split_command(&args, 1, GLOBAL);
    let command = words.first().cloned().unwrap_or_default();
    let own: &[Spec] = match command.as_str() {
        "put" => put::FLAGS,
        "range" => range::FLAGS,
        "txn-put" => txn::PUT_FLAGS,
        "txn-mixed" => txn::MIXED_FLAGS,
        "watch" => watch::WATCH_FLAGS,
        "watch-latency" => watch::LATENCY_FLAGS,
        "lease-keepalive" => lease::FLAGS,
        "stm" => stm::FLAGS,
        "" | "help" => {
            let _ = write!(std::io::stdout().lock(), "{HELP}");
            return if command.is_empty() { 1 } else { 0 };
        }
        other => {
            eprintln!("Error: unknown command {other:?} for \"etcd-bench\"\nRun 'etcd-bench --help' for usage.");
            return 1;
        }
    };
    let specs: Vec<Spec> = GLOBAL.iter().chain(own.iter()).copied().collect();
    let f = match flags::parse(&rest, &specs, &[]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    if f.bool("help") {
        let _ = write!(std::io::stdout().lock(), "{HELP}");
        return 0;
    }
    let json = match f.get("write-out").as_str() {
        "simple" => false,
        "json" => true,
        other => {
            eprintln!("Error: -w {other}: etcd-bench writes simple or json");
            return 1;
        }
    };
    let Ok(clients) = f.get("clients").parse::<usize>() else {
        eprintln!("Error: invalid argument for \"--clients\" flag");
        return 1;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&command, clients))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        let ctx = Ctx {
            conns: connect(&f).await?,
            clients: clients.max(1),
            json,
            f,
        };
        match command.as_str() {
            "put" => put::run(&ctx).await,
            "range" => range::run(&ctx).await,
            "txn-put" => txn::put(&ctx).await,
            "txn-mixed" => txn::mixed(&ctx).await,
            "watch" => watch::watch(&ctx).await,
            "watch-latency" => watch::latency(&ctx).await,
            "lease-keepalive" => lease::run(&ctx).await,
            _ => stm::run(&ctx).await,
        }
    });
    match result {
        Ok(()) => 0,
        Err(Fail(m)) => {
            eprintln!("{m}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_gets_one_thread_and_many_get_one_per_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(workers("put", 0), 1);
        assert_eq!(workers("put", 1), 1);
        assert_eq!(workers("range", 1000), cpus);
        assert_eq!(workers("txn-put", 2), 2.min(cpus));
        assert_eq!(workers("watch", 1), cpus);
        assert_eq!(workers("watch-latency", 1), cpus);
    }

    #[test]
    fn keys_are_go_varints() {
        let mut k = [0xffu8; 8];
        put_varint(&mut k, 0);
        assert_eq!(k, [0, 0, 0, 0, 0, 0, 0, 0]);
        put_varint(&mut k, 1);
        assert_eq!(k, [2, 0, 0, 0, 0, 0, 0, 0]);
        put_varint(&mut k, 300);
        assert_eq!(k, [0xd8, 0x04, 0, 0, 0, 0, 0, 0]);
        put_varint(&mut k, -1);
        assert_eq!(k, [1, 0, 0, 0, 0, 0, 0, 0]);
    }
}
