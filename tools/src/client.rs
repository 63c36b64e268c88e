//! Connecting to etcd like clientv3: the first reachable endpoint of `--endpoints` within
//! `--dial-timeout`; every call bounded by `--command-timeout`; errors printed as etcdctl does.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::etcdserverpb::kv_client::KvClient;
use crate::flags::{duration, Parsed};
use crate::tls::Security;

/// etcdctl's exit codes.
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_BAD_CONNECTION: i32 = 2;
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

/// A failed file operation as Go's `os` package words it (`open x.pem: no such file or
/// directory`).
pub fn go_path_error(op: &str, path: &str, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("{op} {path}: {why}")
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

/// An endpoint as a URL: `host:port` means plain http, as clientv3 takes it.
pub fn endpoint_url(ep: &str) -> String {
    if ep.contains("://") {
        ep.to_string()
    } else {
        format!("http://{ep}")
    }
}

/// Adds the auth token (once authenticated) to every request, as clientv3 does.
#[derive(Clone, Default)]
pub struct Token(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Token {
    /// A token (from Authenticate) to send with every request; None if unusable.
    pub fn new(token: &str) -> Option<Token> {
        token.parse().ok().map(|v| Token(Some(v)))
    }
}

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut().insert("token", t.clone());
        }
        Ok(r)
    }
}

/// A connection to one member, carrying the auth token when `--user` is given.
pub type Ch = InterceptedService<Channel, Token>;

pub struct Conn {
    pub channel: Ch,
    pub command_timeout: Duration,
}

/// `--user name[:password]` and `--password` (`--dest-user`, `--dest-password` with prefix
/// `dest-`): the credentials to authenticate with.
pub fn credentials(f: &Parsed, prefix: &str) -> Result<Option<(String, String)>, Failure> {
    let user = f.get(&format!("{prefix}user"));
    if user.is_empty() {
        return Ok(None);
    }
    let password = f.get(&format!("{prefix}password"));
    if !password.is_empty() {
        return Ok(Some((user, password)));
    }
    match user.split_once(':') {
        Some((u, p)) => Ok(Some((u.to_string(), p.to_string()))),
        None => {
            eprint!("Password: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| Failure::bad_args(format!("failed to ask password: {e}")))?;
            Ok(Some((
                user,
                line.trim_end_matches(['\r', '\n']).to_string(),
            )))
        }
    }
}

/// The endpoints to use: what DNS SRV discovery finds for `--discovery-srv` (without the
/// plain http ones unless `--insecure-discovery`), else `--endpoints`, as etcdctl picks them.
pub fn endpoints(f: &Parsed) -> Result<Vec<String>, Failure> {
    let domain = f.get("discovery-srv");
    if domain.is_empty() {
        return Ok(endpoint_list(f));
    }
    let found = crate::srv::client_endpoints(&domain, &f.get("discovery-srv-name"))
        .map_err(Failure::error)?;
    let insecure = f.get("insecure-discovery") != "false";
    let found: Vec<String> = found
        .into_iter()
        .filter(|e| {
            let keep = insecure || !e.starts_with("http://");
            if !keep {
                eprintln!(
                    "ignoring discovered insecure endpoint {}",
                    crate::printer::go_quote(e.as_bytes())
                );
            }
            keep
        })
        .collect();
    Ok(if found.is_empty() {
        endpoint_list(f)
    } else {
        found
    })
}

/// Connects to one endpoint (as given in `--endpoints`) within `dial`, over TLS when `security`
/// says so; the error says why (etcdctl itself only reports a deadline).
pub async fn dial(ep: &str, dial: Duration, security: &Security) -> Result<Channel, String> {
    let e = Endpoint::from_shared(endpoint_url(ep))
        .map_err(|e| format!("{ep}: {e}"))?
        .connect_timeout(dial)
        .tcp_nodelay(true);
    let tls = security.for_endpoint(ep).map_err(|f| f.message)?;
    let connect = async {
        match tls {
            None => e.connect().await,
            Some(tls) => {
                let tls = std::sync::Arc::new(tls);
                e.connect_with_connector(tower::service_fn(move |uri: http::Uri| {
                    crate::tls::connect(tls.clone(), uri)
                }))
                .await
            }
        }
    };
    let ready = async {
        let channel = connect.await.map_err(|e| error_chain(&e))?;
        probe(channel.clone()).await?;
        Ok::<_, String>(channel)
    };
    match tokio::time::timeout(dial, ready).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(why)) => Err(format!("{ep}: {why}")),
        Err(_) => Err(format!("{ep}: no connection within {dial:?}")),
    }
}

/// One round trip to the server, as clientv3's blocking dial waits for the server's side of the
/// HTTP/2 handshake: a TLS server that refuses our certificate (TLS 1.3 tells only after the
/// handshake), or a TLS server spoken to in plaintext, fails here rather than at the first
/// request. It asks for a method no server has; "unimplemented" is the answer of a live one.
async fn probe(channel: Channel) -> Result<(), String> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| error_chain(&e))?;
    let path = http::uri::PathAndQuery::from_static("/retcd.ConnectionProbe/Probe");
    match grpc
        .unary(
            tonic::Request::new(()),
            path,
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::Unimplemented => Ok(()),
        Err(s) => Err(match std::error::Error::source(&s) {
            Some(e) => format!("{}: {}", s.message(), error_chain(e)),
            None => s.message().to_string(),
        }),
    }
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Authenticates on `channel` when credentials are given; the connection then carries the
/// token.
async fn with_auth(
    creds: Option<(String, String)>,
    channel: Channel,
    command_timeout: Duration,
) -> Result<Conn, Failure> {
    let Some((name, password)) = creds else {
        return Ok(Conn {
            channel: InterceptedService::new(channel, Token::default()),
            command_timeout,
        });
    };
    let mut req = tonic::Request::new(crate::etcdserverpb::AuthenticateRequest { name, password });
    req.set_timeout(command_timeout);
    let token = crate::etcdserverpb::auth_client::AuthClient::new(channel.clone())
        .authenticate(req)
        .await
        .map_err(|s| Failure {
            message: status_message(&s),
            code: EXIT_BAD_CONNECTION,
        })?
        .into_inner()
        .token;
    let value = token
        .parse()
        .map_err(|_| Failure::error("the server returned an unusable auth token"))?;
    Ok(Conn {
        channel: InterceptedService::new(channel, Token(Some(value))),
        command_timeout,
    })
}

/// How to reach the members: timeouts and TLS from the flags.
struct Settings {
    dial: Duration,
    command_timeout: Duration,
    security: Security,
}

impl Settings {
    fn from_flags(f: &Parsed, prefix: &str) -> Result<Settings, Failure> {
        Ok(Settings {
            dial: duration(&f.get("dial-timeout")).unwrap_or(Duration::from_secs(2)),
            command_timeout: duration(&f.get("command-timeout")).unwrap_or(Duration::from_secs(5)),
            security: Security::from_flags(f, prefix)?,
        })
    }

    /// Connects to `ep`; with `--debug`, says on stderr why it could not.
    async fn dial(&self, f: &Parsed, ep: &str) -> Option<Channel> {
        match dial(ep, self.dial, &self.security).await {
            Ok(c) => Some(c),
            Err(why) => {
                if f.bool("debug") {
                    eprintln!("cannot connect to {why}");
                }
                None
            }
        }
    }
}

impl Conn {
    /// A connection to the first reachable endpoint of `--endpoints`.
    pub async fn open(f: &Parsed) -> Result<Conn, Failure> {
        let s = Settings::from_flags(f, "")?;
        for ep in endpoints(f)? {
            if let Some(channel) = s.dial(f, &ep).await {
                return with_auth(credentials(f, "")?, channel, s.command_timeout).await;
            }
        }
        Err(Failure::error("context deadline exceeded"))
    }

    /// A connection to one endpoint, with the timeouts of `f`.
    pub async fn open_endpoint(f: &Parsed, ep: &str) -> Result<Conn, Failure> {
        let s = Settings::from_flags(f, "")?;
        match s.dial(f, ep).await {
            Some(channel) => with_auth(credentials(f, "")?, channel, s.command_timeout).await,
            None => Err(Failure::error("context deadline exceeded")),
        }
    }

    /// A connection to make-mirror's destination, with its `--dest-*` TLS and credentials.
    pub async fn open_dest(f: &Parsed, ep: &str) -> Result<Conn, Failure> {
        let s = Settings::from_flags(f, "dest-")?;
        match s.dial(f, ep).await {
            Some(channel) => with_auth(credentials(f, "dest-")?, channel, s.command_timeout).await,
            None => Err(Failure::error("context deadline exceeded")),
        }
    }

    pub fn kv(&self) -> KvClient<Ch> {
        KvClient::new(self.channel.clone())
    }

    /// Opens a Watch stream (no deadline: watches live as long as the command), with `first`
    /// as its first create request; further requests go in through the returned sender.
    /// The first request is required: etcd's gRPC server sends the stream's response headers
    /// only once a request arrived, and opening waits for them.
    pub async fn watch(
        &self,
        first: crate::etcdserverpb::WatchCreateRequest,
        capacity: usize,
    ) -> Result<
        (
            tokio::sync::mpsc::Sender<crate::etcdserverpb::WatchRequest>,
            tonic::Streaming<crate::etcdserverpb::WatchResponse>,
        ),
        tonic::Status,
    > {
        use crate::etcdserverpb::{watch_request::RequestUnion, WatchRequest};
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let _ = tx
            .send(WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(first)),
            })
            .await;
        let stream = crate::etcdserverpb::watch_client::WatchClient::new(self.channel.clone())
            .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok((tx, stream))
    }

    /// Attaches the command timeout to a request.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.command_timeout);
        r
    }
}
