//! Connecting to etcd like clientv3: the first reachable endpoint of `--endpoints` within
//! `--dial-timeout`; every call bounded by `--command-timeout`; errors printed as etcdctl does.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::etcdserverpb::kv_client::KvClient;
use crate::flags::{duration, Parsed};

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

/// `--user name[:password]` and `--password`: the credentials to authenticate with.
pub fn credentials(f: &Parsed) -> Result<Option<(String, String)>, Failure> {
    let user = f.get("user");
    if user.is_empty() {
        return Ok(None);
    }
    let password = f.get("password");
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

/// Settings this etcdctl cannot honour yet: refused with a clear message rather than ignored
/// (a client that silently dropped `--cacert` would talk plaintext to the wrong server).
pub fn refuse_unsupported(f: &Parsed) -> Result<(), Failure> {
    for name in [
        "cacert",
        "cert",
        "key",
        "discovery-srv",
        "discovery-srv-name",
    ] {
        if !f.get(name).is_empty() {
            return Err(Failure::bad_feature(format!(
                "--{name}: TLS and DNS discovery are not supported yet by retcd's etcdctl; use etcd's etcdctl for this cluster"
            )));
        }
    }
    if endpoint_list(f).iter().any(|e| e.starts_with("https://")) {
        return Err(Failure::bad_feature(
            "https:// endpoints: TLS is not supported yet by retcd's etcdctl; use etcd's etcdctl for this cluster",
        ));
    }
    Ok(())
}

/// Authenticates on `channel` when credentials are given; the connection then carries the
/// token.
async fn with_auth(
    f: &Parsed,
    channel: Channel,
    command_timeout: Duration,
) -> Result<Conn, Failure> {
    let Some((name, password)) = credentials(f)? else {
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

impl Conn {
    pub async fn open(f: &Parsed) -> Result<Conn, Failure> {
        refuse_unsupported(f)?;
        let dial = duration(&f.get("dial-timeout")).unwrap_or(Duration::from_secs(2));
        let command_timeout = duration(&f.get("command-timeout")).unwrap_or(Duration::from_secs(5));
        let endpoints: Vec<String> = endpoint_list(f).iter().map(|e| endpoint_url(e)).collect();
        for ep in &endpoints {
            let Ok(e) = Endpoint::from_shared(ep.clone()) else {
                continue;
            };
            let e = e.connect_timeout(dial).tcp_nodelay(true);
            if let Ok(Ok(channel)) = tokio::time::timeout(dial, e.connect()).await {
                return with_auth(f, channel, command_timeout).await;
            }
        }
        Err(Failure::error("context deadline exceeded"))
    }

    /// A connection to one endpoint, with the timeouts of `f`.
    pub async fn open_endpoint(f: &Parsed, ep: &str) -> Result<Conn, Failure> {
        refuse_unsupported(f)?;
        let dial = duration(&f.get("dial-timeout")).unwrap_or(Duration::from_secs(2));
        let command_timeout = duration(&f.get("command-timeout")).unwrap_or(Duration::from_secs(5));
        let e = Endpoint::from_shared(endpoint_url(ep))
            .map_err(|e| Failure::error(e.to_string()))?
            .connect_timeout(dial)
            .tcp_nodelay(true);
        match tokio::time::timeout(dial, e.connect()).await {
            Ok(Ok(channel)) => with_auth(f, channel, command_timeout).await,
            _ => Err(Failure::error("context deadline exceeded")),
        }
    }

    pub fn kv(&self) -> KvClient<Ch> {
        KvClient::new(self.channel.clone())
    }

    /// Opens a Watch stream (no deadline: watches live as long as the command), with `first`
    /// as its first create request; further requests go in through the returned sender.
    pub async fn watch(
        &self,
        first: Option<crate::etcdserverpb::WatchCreateRequest>,
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
        if let Some(c) = first {
            let _ = tx
                .send(WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(c)),
                })
                .await;
        }
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
