//! Connecting to etcd like clientv3: the first reachable endpoint of `--endpoints` within
//! `--dial-timeout`; every call bounded by `--command-timeout`; errors printed as etcdctl does.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::etcdserverpb::kv_client::KvClient;
use crate::flags::{duration, Parsed};

/// etcdctl's exit codes.
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_BAD_FEATURE: i32 = 4;
pub const EXIT_BAD_ARGS: i32 = 128;

/// A failed command: what to print after `Error: `, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl Failure {
    pub fn bad_args(m: impl Into<String>) -> Failure {
        Failure {
            message: m.into(),
            code: EXIT_BAD_ARGS,
        }
    }

    pub fn bad_feature(m: impl Into<String>) -> Failure {
        Failure {
            message: m.into(),
            code: EXIT_BAD_FEATURE,
        }
    }

    pub fn error(m: impl Into<String>) -> Failure {
        Failure {
            message: m.into(),
            code: EXIT_ERROR,
        }
    }
}

/// How clientv3 shows a gRPC error: etcd's own errors by their message, others in gRPC's form.
pub fn status_message(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::DeadlineExceeded => "context deadline exceeded".to_string(),
        _ if s.message().starts_with("etcdserver: ") || s.message().starts_with("mvcc: ") => {
            s.message().to_string()
        }
        c => format!("rpc error: code = {c:?} desc = {}", s.message()),
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Failure {
        Failure::error(status_message(&s))
    }
}

/// `--endpoints` as given, one entry per endpoint.
pub fn endpoint_list(f: &Parsed) -> Vec<String> {
    f.get("endpoints")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub struct Conn {
    pub channel: Channel,
    pub command_timeout: Duration,
}

impl Conn {
    pub async fn open(f: &Parsed) -> Result<Conn, Failure> {
        let dial = duration(&f.get("dial-timeout")).unwrap_or(Duration::from_secs(2));
        let command_timeout = duration(&f.get("command-timeout")).unwrap_or(Duration::from_secs(5));
        let endpoints: Vec<String> = endpoint_list(f)
            .into_iter()
            .map(|e| {
                if e.contains("://") {
                    e.to_string()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        for ep in &endpoints {
            let Ok(e) = Endpoint::from_shared(ep.clone()) else {
                continue;
            };
            let e = e.connect_timeout(dial).tcp_nodelay(true);
            if let Ok(Ok(channel)) = tokio::time::timeout(dial, e.connect()).await {
                return Ok(Conn {
                    channel,
                    command_timeout,
                });
            }
        }
        Err(Failure::error("context deadline exceeded"))
    }

    /// A connection to one endpoint, with the timeouts of `f`.
    pub async fn open_endpoint(f: &Parsed, ep: &str) -> Result<Conn, Failure> {
        let dial = duration(&f.get("dial-timeout")).unwrap_or(Duration::from_secs(2));
        let command_timeout = duration(&f.get("command-timeout")).unwrap_or(Duration::from_secs(5));
        let url = if ep.contains("://") {
            ep.to_string()
        } else {
            format!("http://{ep}")
        };
        let e = Endpoint::from_shared(url)
            .map_err(|e| Failure::error(e.to_string()))?
            .connect_timeout(dial)
            .tcp_nodelay(true);
        match tokio::time::timeout(dial, e.connect()).await {
            Ok(Ok(channel)) => Ok(Conn {
                channel,
                command_timeout,
            }),
            _ => Err(Failure::error("context deadline exceeded")),
        }
    }

    pub fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
    }

    /// Attaches the command timeout to a request.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.command_timeout);
        r
    }
}
