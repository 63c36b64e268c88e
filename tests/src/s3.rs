//! A real S3-compatible server for tests: moto's server (`pip install 'moto[server]'`, which
//! scripts/deps.sh --test puts in a venv) on a free loopback port, plus boto3 from the same
//! venv to look at the bucket from outside the tool under test.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The venv holding moto and boto3: `RETCD_MOTO_VENV`, or where scripts/deps.sh puts it.
pub fn venv() -> PathBuf {
    if let Ok(v) = std::env::var("RETCD_MOTO_VENV") {
        return PathBuf::from(v);
    }
    let candidates = [
        PathBuf::from("/var/cache/retcd-moto"),
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/retcd-moto"),
    ];
    for c in &candidates {
        if c.join("bin/moto_server").exists() {
            return c.clone();
        }
    }
    panic!("moto is not installed: run scripts/deps.sh --test (or set RETCD_MOTO_VENV)");
}

pub const ACCESS_KEY: &str = "retcd-test-key";
pub const SECRET_KEY: &str = "retcd-test-secret";

/// One moto server; killed (by PID) when dropped.
pub struct S3Server {
    pub port: u16,
    /// The CA that signed its certificate, when it serves https.
    pub ca: Option<PathBuf>,
    child: Child,
}

impl S3Server {
    pub fn start() -> S3Server {
        S3Server::spawn(&[], None)
    }

    /// Serves https with a certificate for 127.0.0.1 from a fresh private CA made in `dir`.
    pub fn start_tls(dir: &std::path::Path) -> S3Server {
        let pki = crate::pki::Pki::create(dir);
        S3Server::spawn(
            &[
                "-s",
                "-c",
                &pki.file("server.pem"),
                "-k",
                &pki.file("server.key"),
            ],
            Some(dir.join("ca.pem")),
        )
    }

    fn spawn(extra: &[&str], ca: Option<PathBuf>) -> S3Server {
        let port = crate::free_port();
        let child = Command::new(venv().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let s = S3Server { port, ca, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen in 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs python `code` with `s` = a boto3 S3 client for this server; its stdout.
    pub fn py(&self, code: &str) -> String {
        py_with(&self.endpoint(), self.ca.as_deref(), code)
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.py(&format!("s.create_bucket(Bucket={bucket:?})"));
    }
}

/// Runs python `code` with `s` = a boto3 S3 client for `endpoint`; its stdout (panics on a
/// python error).
pub fn py_at(endpoint: &str, code: &str) -> String {
    py_with(endpoint, None, code)
}

fn py_with(endpoint: &str, ca: Option<&std::path::Path>, code: &str) -> String {
    let verify = match ca {
        Some(p) => format!("{:?}", p.display().to_string()),
        None => "True".to_string(),
    };
    let script = format!(
        "import boto3, json, sys\n\
         s = boto3.client('s3', endpoint_url={endpoint:?}, aws_access_key_id={ACCESS_KEY:?}, \
         aws_secret_access_key={SECRET_KEY:?}, region_name='us-east-1', verify={verify})\n{code}\n"
    );
    let o: Output = Command::new("timeout")
        .arg("60")
        .arg(venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed: {}\n{script}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
