//! Test harness: starts real `etcd` processes (ours, or the real etcd 3.4.23 referee) on free
//! 127.0.0.1 ports in temporary data dirs, and runs real `etcdctl` against them. Every process
//! started here is killed by its own PID when its handle drops; nothing else is touched.

pub mod linearizability;
pub mod pki;
pub mod proxy;
pub mod s3;

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Which server binary a member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Our `etcd` (retcd).
    Retcd,
    /// Debian's real etcd 3.4.23, `/usr/bin/etcd`.
    RealEtcd,
}

/// Path of our `etcd` binary: `RETCD_BIN`, or next to the test executable's target dir.
pub fn retcd_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RETCD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug/etcd
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("etcd");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --workspace --bins) or set RETCD_BIN",
        bin.display()
    );
    bin
}

/// Path of one of our tools (`etcdctl`, `etcdutl`, `etcd-backup`, `etcd-bench`), built next
/// to our `etcd`.
pub fn our_tool(name: &str) -> PathBuf {
    let bin = retcd_bin().with_file_name(name);
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

pub fn our_etcdctl() -> PathBuf {
    our_tool("etcdctl")
}

pub fn our_etcdutl() -> PathBuf {
    our_tool("etcdutl")
}

pub fn our_backup() -> PathBuf {
    our_tool("etcd-backup")
}

/// Runs `cmd` to completion (bounded by `limit`, then killed) and measures the peak resident
/// memory of the process: its output and max RSS in KiB.
// The child is reaped by wait4 (which also gives its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, limit: Duration) -> (Output, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (mut so, mut se) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, with valid out pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (
        Output {
            status,
            stdout,
            stderr,
        },
        usage.ru_maxrss as u64,
    )
}

/// Puts `n` keys `<prefix>000`, `<prefix>001`, ... with values `v0`, `v1`, ... through
/// etcd's etcdctl.
pub fn put_keys(ep: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let o = etcdctl(
            ep,
            &["put", &format!("{prefix}{i:03}"), &format!("v{i}")],
            None,
        );
        assert!(o.status.success(), "{}", err_lines(&o));
    }
}

/// Runs a tool without `--endpoints` (etcdutl, or etcdctl's offline commands).
pub fn run_tool(bin: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .output()
        .expect("run tool")
}

/// Runs `bin` (an etcdctl) with `--endpoints=ep` (bounded by a 60 s timeout).
pub fn run_ctl(bin: &Path, ep: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("60")
        .arg(bin)
        .arg(format!("--endpoints={ep}"))
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdctl");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("etcdctl output")
}

/// Path of the real etcdctl 3.4.23 (`ETCDCTL_BIN` or `/usr/bin/etcdctl`).
pub fn real_etcdctl() -> PathBuf {
    PathBuf::from(std::env::var("ETCDCTL_BIN").unwrap_or_else(|_| "/usr/bin/etcdctl".into()))
}

/// Path of the real etcd 3.4.23 server (`REAL_ETCD_BIN` or `/usr/bin/etcd`).
pub fn real_etcd() -> PathBuf {
    PathBuf::from(std::env::var("REAL_ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into()))
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A free port on 127.0.0.1. Ports are handed out from a per-process range so tests running
/// in parallel in one binary do not race for the same port.
pub fn free_port() -> u16 {
    // Stay below the kernel's ephemeral range: a port picked there can be taken by any
    // outgoing connection between this check and the member's bind.
    let (low, high) = port_window();
    if NEXT_PORT.load(Ordering::SeqCst) == 0 {
        let slots = u32::from((high - low) / 200).max(1);
        let base = low + (std::process::id() % slots) as u16 * 200;
        let _ = NEXT_PORT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    }
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        if p >= high {
            NEXT_PORT.store(low, Ordering::SeqCst);
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Ports tests may hand out: from 10000 up to the start of the ephemeral range.
fn port_window() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 12000 {
        (10000, ephemeral_low)
    } else {
        (ephemeral_low.saturating_sub(2000).max(1025), ephemeral_low)
    }
}

/// One running member.
pub struct Member {
    pub flavor: Flavor,
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    /// Pass the standard flags (name, data dir, URLs, initial cluster) before `extra_args`.
    pub use_base_args: bool,
    /// Address the peer listener binds (its own 127.x address in partition tests).
    pub peer_host: String,
    /// Advertised peer port when a proxy stands in front of the peer listener.
    pub peer_adv_port: Option<u16>,
    /// `--initial-cluster`; empty means this member alone.
    pub initial_cluster: String,
    /// Working directory of the process (a fresh temporary directory).
    pub cwd: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Member {
    /// A single-member cluster of `flavor` with default settings on free ports.
    pub fn start(flavor: Flavor) -> Member {
        Member::start_with(flavor, &[], &[])
    }

    /// Starts with extra flags and environment.
    pub fn start_with(flavor: Flavor, args: &[&str], env: &[(&str, &str)]) -> Member {
        let mut m = Member::new(flavor);
        m.extra_args = args.iter().map(|s| s.to_string()).collect();
        m.env = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        m.launch();
        m
    }

    /// A member on fresh ports and a fresh data dir, not started yet: adjust, then `launch`.
    pub fn new(flavor: Flavor) -> Member {
        let tmp = tempfile::tempdir().expect("tempdir");
        Member {
            flavor,
            name: "m1".into(),
            client_port: free_port(),
            peer_port: free_port(),
            data_dir: tmp.path().join("data"),
            extra_args: Vec::new(),
            env: Vec::new(),
            log_path: tmp.path().join("member.log"),
            use_base_args: true,
            peer_host: "127.0.0.1".into(),
            peer_adv_port: None,
            initial_cluster: String::new(),
            cwd: tmp.path().to_path_buf(),
            child: None,
            _tmp: Some(tmp),
        }
    }

    /// Spawns the process and waits until it is healthy.
    pub fn launch(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Spawns the process without waiting.
    pub fn launch_nowait(&mut self) {
        self.spawn();
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The advertised peer URL (the proxy's, when there is one).
    pub fn peer_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.peer_adv_port.unwrap_or(self.peer_port)
        )
    }

    /// The URL the peer listener binds.
    pub fn peer_listen_url(&self) -> String {
        format!("http://{}:{}", self.peer_host, self.peer_port)
    }

    /// The standard flags of a single member on this member's ports.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            self.client_url(),
            "--advertise-client-urls".into(),
            self.client_url(),
            "--listen-peer-urls".into(),
            self.peer_listen_url(),
            "--initial-advertise-peer-urls".into(),
            self.peer_url(),
            "--initial-cluster".into(),
            if self.initial_cluster.is_empty() {
                format!("{}={}", self.name, self.peer_url())
            } else {
                self.initial_cluster.clone()
            },
            "--initial-cluster-token".into(),
            "retcd-test".into(),
        ]
    }

    fn spawn(&mut self) {
        let bin = match self.flavor {
            Flavor::Retcd => retcd_bin(),
            Flavor::RealEtcd => real_etcd(),
        };
        let mut args = if self.use_base_args {
            self.base_args()
        } else {
            Vec::new()
        };
        args.extend(self.extra_args.iter().cloned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut cmd = Command::new(bin);
        cmd.args(&args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn member"));
    }

    /// Waits (bounded) until `/health` says true.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "member exited during start ({status}); log:\n{}",
                        self.log()
                    );
                }
            }
            if let Ok((200, body)) = http_get(self.client_port, "/health") {
                if body.contains("\"true\"") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("member not healthy within 30s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Starts the same member again on its data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready();
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the process.
    pub fn pause(&self, paused: bool) {
        if let Some(pid) = self.pid() {
            unsafe {
                libc::kill(
                    pid as i32,
                    if paused { libc::SIGSTOP } else { libc::SIGCONT },
                );
            }
        }
    }

    /// Runs the real etcdctl 3.4.23 against this member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_stdin(args, None)
    }

    pub fn etcdctl_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        etcdctl(&self.endpoint(), args, stdin)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs real etcdctl with `--endpoints=ep` (bounded by a 60 s timeout).
pub fn etcdctl(ep: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_ctl(&real_etcdctl(), ep, args, stdin)
}

/// stdout as a string.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr without etcdctl's JSON log lines (timestamps and client UUIDs vary).
pub fn err_lines(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with('{'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs a python script (Debian's `/usr/bin/python3`, bounded to 60 s) against a fresh
/// single member of `flavor`, its client port as the script's argument: its standard output,
/// after it succeeded.
pub fn python_against(flavor: Flavor, script: &str) -> String {
    let m = Member::start(flavor);
    let (o, _) = run_measured(
        Command::new("/usr/bin/python3").args(["-c", script, &m.client_port.to_string()]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{flavor:?}: {stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// A minimal HTTP/1.1 GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, "GET", path, &[], "")
}

/// A minimal HTTP/1.1 POST of `body` on 127.0.0.1: (status, body).
pub fn http_post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_request(port, "POST", path, headers, body)
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let length = if method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    // One write, as clients send a small request: in pieces, a server that answers from the
    // headers alone (etcd's 404s) may close before the body arrives, and the body then draws
    // a reset that discards the answer before it is read.
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}{length}\r\n{body}"
    );
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((head, body))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(body)
        }
        Some((_, body)) => body.to_string(),
        None => String::new(),
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Replaces the values of the given JSON number fields (`"cluster_id":123` -> `"cluster_id":N`)
/// so outputs of two different clusters compare equal where only IDs differ.
pub fn mask_json_fields(s: &str, fields: &[&str]) -> String {
    let mut out = s.to_string();
    for f in fields {
        let pat = format!("\"{f}\":");
        let mut res = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&pat) {
            res.push_str(&rest[..i + pat.len()]);
            rest = &rest[i + pat.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '"'))
                .unwrap_or(rest.len());
            res.push('N');
            rest = &rest[end..];
        }
        res.push_str(rest);
        out = res;
    }
    out
}

/// A cluster of members started together from one `--initial-cluster`.
pub struct Cluster {
    pub members: Vec<Member>,
    /// One proxy per member in front of its peer listener (partitionable clusters only).
    pub proxies: Vec<proxy::Proxy>,
}

impl Cluster {
    /// `n` members named m1..mN, token `retcd-test`, on free ports; waits until all serve.
    pub fn start(flavor: Flavor, n: usize) -> Cluster {
        Cluster::start_with(flavor, n, &[])
    }

    pub fn start_with(flavor: Flavor, n: usize, args: &[&str]) -> Cluster {
        Cluster::launch(Cluster::prepare(flavor, n, args))
    }

    /// Members m1..mN on fresh ports, not started (adjust ports or args, then `launch`).
    pub fn prepare(flavor: Flavor, n: usize, args: &[&str]) -> Vec<Member> {
        (0..n)
            .map(|i| {
                let mut m = Member::new(flavor);
                m.name = format!("m{}", i + 1);
                m.extra_args = args.iter().map(|s| s.to_string()).collect();
                m
            })
            .collect()
    }

    /// Starts `members` as one cluster (initial-cluster from their names and peer ports) and
    /// waits until every one serves.
    pub fn launch(mut members: Vec<Member>) -> Cluster {
        let ic = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            m.initial_cluster = ic.clone();
            m.launch_nowait();
        }
        for m in &mut members {
            m.wait_ready();
        }
        Cluster {
            members,
            proxies: Vec::new(),
        }
    }

    /// A cluster whose peer links can be cut: member i listens for peers on 127.0.0.(11+i)
    /// behind a proxy on 127.0.0.1 that it advertises.
    pub fn start_partitionable(flavor: Flavor, n: usize, args: &[&str]) -> Cluster {
        let mut members = Cluster::prepare(flavor, n, args);
        let mut proxies = Vec::new();
        for (i, m) in members.iter_mut().enumerate() {
            m.peer_host = format!("127.0.0.{}", 11 + i);
            let target: std::net::SocketAddr = format!("{}:{}", m.peer_host, m.peer_port)
                .parse()
                .expect("addr");
            let proxy = proxy::Proxy::start(([127, 0, 0, 1], 0).into(), target);
            m.peer_adv_port = Some(proxy.listen.port());
            proxies.push(proxy);
        }
        let mut c = Cluster::launch(members);
        c.proxies = proxies;
        c
    }

    fn peer_ip(&self, i: usize) -> std::net::IpAddr {
        self.members[i].peer_host.parse().expect("ip")
    }

    /// Cuts every peer link of member `i`, both ways.
    pub fn isolate(&self, i: usize) {
        self.proxies[i].block(None);
        let ip = self.peer_ip(i);
        for (j, p) in self.proxies.iter().enumerate() {
            if j != i {
                p.block(Some(ip));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for p in &self.proxies {
            p.heal();
        }
    }

    /// Every client endpoint, comma-separated.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the member that leads now (asked of each running member).
    pub fn leader(&mut self) -> Option<usize> {
        for i in 0..self.members.len() {
            if !self.members[i].is_running() {
                continue;
            }
            let o = self.members[i].etcdctl(&[
                "endpoint",
                "status",
                "-w",
                "json",
                "--command-timeout=2s",
            ]);
            let s = out(&o);
            let leader = json_u64(&s, "leader");
            let me = json_u64(&s, "member_id");
            if let (Some(l), Some(me)) = (leader, me) {
                if l == me {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Waits (bounded) until a running member reports itself leader.
    pub fn wait_leader(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first number value of `"field":` in a JSON text.
pub fn json_u64(s: &str, field: &str) -> Option<u64> {
    let pat = format!("\"{field}\":");
    let i = s.find(&pat)? + pat.len();
    let rest = s[i..].trim_start_matches('"');
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Masks cluster and member IDs in etcdctl output (JSON fields and `-w fields` lines), so
/// outputs from two different clusters compare equal where only IDs differ.
pub fn mask_ids(s: &str) -> String {
    let s = mask_json_fields(s, &["cluster_id", "member_id"]);
    s.lines()
        .map(|l| {
            if l.starts_with("\"ClusterID\" : ") || l.starts_with("\"MemberID\" : ") {
                format!("{} : N\n", l.split(" : ").next().unwrap_or(""))
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// One command's outcome: (command, exit code, stdout, stderr's non-log lines).
pub type Outcome = (String, i32, String, String);

/// Pairs of outcomes that differ, described for an assertion message.
pub fn differences(expected: &[Outcome], got: &[Outcome], left: &str, right: &str) -> Vec<String> {
    expected
        .iter()
        .zip(got.iter())
        .filter(|(e, g)| e != g)
        .map(|(e, g)| {
            format!(
                "{}\n  {left}: exit {} stdout {:?} stderr {:?}\n  {right}: exit {} stdout {:?} stderr {:?}",
                e.0, e.1, e.2, e.3, g.1, g.2, g.3
            )
        })
        .collect()
}

/// Environment variables for a command.
pub type Env = Vec<(String, String)>;

/// Runs etcdctl `bin` with `args` and exactly `env` of the `ETCDCTL_*` variables (besides
/// `ETCDCTL_API=3`), bounded by 60 s: its outcome, stderr without Go's log lines.
pub fn outcome(bin: &Path, env: &[(String, String)], args: &[&str]) -> Outcome {
    let mut c = Command::new("timeout");
    c.arg("60").arg(bin).args(args).env("ETCDCTL_API", "3");
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCDCTL_") && k != "ETCDCTL_API" {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.stdin(Stdio::null()).output().expect("run etcdctl");
    (
        format!("etcdctl {}", args.join(" ")),
        o.status.code().unwrap_or(-1),
        out(&o),
        err_lines(&o),
    )
}

/// One scripted etcdctl command: its arguments and optional standard input.
pub type Step = (&'static [&'static str], Option<&'static str>);

/// Users and roles for the lock and election tests, then auth enabled: root; dan may read
/// and write `/locks/`, eve may only write there.
pub const LOCK_USERS: &[Step] = &[
    (&["user", "add", "root:rootpw"], None),
    (&["user", "add", "dan:dpw"], None),
    (&["role", "add", "locker"], None),
    (
        &[
            "role",
            "grant-permission",
            "locker",
            "readwrite",
            "/locks/",
            "--prefix",
        ],
        None,
    ),
    (&["user", "grant-role", "dan", "locker"], None),
    (&["user", "add", "eve:epw"], None),
    (&["role", "add", "writeonly"], None),
    (
        &[
            "role",
            "grant-permission",
            "writeonly",
            "write",
            "/locks/",
            "--prefix",
        ],
        None,
    ),
    (&["user", "grant-role", "eve", "writeonly"], None),
    (&["auth", "enable"], None),
];

/// Runs `steps` through etcdctl `bin` against `ep`, IDs masked in the outputs.
pub fn run_steps(bin: &Path, ep: &str, steps: &[Step]) -> Vec<Outcome> {
    steps
        .iter()
        .map(|(args, stdin)| {
            let o = run_ctl(bin, ep, args, stdin.map(str::as_bytes));
            (
                format!("etcdctl {}", args.join(" ")),
                o.status.code().unwrap_or(-1),
                mask_ids(&out(&o)),
                err_lines(&o),
            )
        })
        .collect()
}

/// A long-running etcdctl whose stdout lines arrive on a channel.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Running {
    pub fn start(bin: &Path, ep: &str, args: &[&str]) -> Running {
        let mut child = std::process::Command::new(bin)
            .arg(format!("--endpoints={ep}"))
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn etcdctl");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Lines as bytes: keys and values need not be UTF-8.
            for l in std::io::BufReader::new(stdout)
                .split(b'\n')
                .map_while(Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    pub fn line(&self, within: Duration) -> Option<String> {
        self.line_bytes(within)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
    }

    /// The next line as the bytes printed (without its newline).
    pub fn line_bytes(&self, within: Duration) -> Option<Vec<u8>> {
        self.lines.recv_timeout(within).ok()
    }

    /// SIGINT, then the exit code (bounded wait).
    pub fn interrupt(mut self) -> Option<i32> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// SIGKILL.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
