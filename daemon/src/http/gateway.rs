//! etcd's JSON gateway on the client port: `POST /v3/<service>/<call>` (and `/v3beta/...`)
//! with a JSON body is the gRPC call of the same name, answered in JSON as etcd's grpc-gateway
//! answers: proto field names, 64-bit integers as strings, bytes as base64, fields at their
//! default left out; errors as `{"error","message","code"}` with the HTTP status for the gRPC
//! code. Streams (watch, lease keep-alive, snapshot, observe) take one JSON request after
//! another in the request body and answer one `{"result":...}` line per response.
//!
//! A call goes through the same tonic services as gRPC clients' (in process, as a gRPC
//! request), so auth, limits and errors are theirs; the JSON ↔ protobuf conversion works from
//! the messages' descriptors.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use tower::ServiceExt;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/etcd_descriptors.bin"));

/// The gateway's paths (after `/v3/`) and the gRPC method each one calls, as etcd maps them.
const ROUTES: &[(&str, &str, &str)] = &[
    ("kv/range", "etcdserverpb.KV", "Range"),
    ("kv/put", "etcdserverpb.KV", "Put"),
    ("kv/deleterange", "etcdserverpb.KV", "DeleteRange"),
    ("kv/txn", "etcdserverpb.KV", "Txn"),
    ("kv/compaction", "etcdserverpb.KV", "Compact"),
    ("watch", "etcdserverpb.Watch", "Watch"),
    ("lease/grant", "etcdserverpb.Lease", "LeaseGrant"),
    ("lease/revoke", "etcdserverpb.Lease", "LeaseRevoke"),
    ("kv/lease/revoke", "etcdserverpb.Lease", "LeaseRevoke"),
    ("lease/keepalive", "etcdserverpb.Lease", "LeaseKeepAlive"),
    ("lease/timetolive", "etcdserverpb.Lease", "LeaseTimeToLive"),
    (
        "kv/lease/timetolive",
        "etcdserverpb.Lease",
        "LeaseTimeToLive",
    ),
    ("lease/leases", "etcdserverpb.Lease", "LeaseLeases"),
    ("kv/lease/leases", "etcdserverpb.Lease", "LeaseLeases"),
    ("cluster/member/add", "etcdserverpb.Cluster", "MemberAdd"),
    (
        "cluster/member/remove",
        "etcdserverpb.Cluster",
        "MemberRemove",
    ),
    (
        "cluster/member/update",
        "etcdserverpb.Cluster",
        "MemberUpdate",
    ),
    ("cluster/member/list", "etcdserverpb.Cluster", "MemberList"),
    (
        "cluster/member/promote",
        "etcdserverpb.Cluster",
        "MemberPromote",
    ),
    ("maintenance/alarm", "etcdserverpb.Maintenance", "Alarm"),
    ("maintenance/status", "etcdserverpb.Maintenance", "Status"),
    (
        "maintenance/defragment",
        "etcdserverpb.Maintenance",
        "Defragment",
    ),
    ("maintenance/hash", "etcdserverpb.Maintenance", "Hash"),
    (
        "maintenance/snapshot",
        "etcdserverpb.Maintenance",
        "Snapshot",
    ),
    (
        "maintenance/transfer-leadership",
        "etcdserverpb.Maintenance",
        "MoveLeader",
    ),
    ("auth/enable", "etcdserverpb.Auth", "AuthEnable"),
    ("auth/disable", "etcdserverpb.Auth", "AuthDisable"),
    ("auth/status", "etcdserverpb.Auth", "AuthStatus"),
    ("auth/authenticate", "etcdserverpb.Auth", "Authenticate"),
    ("auth/user/add", "etcdserverpb.Auth", "UserAdd"),
    ("auth/user/get", "etcdserverpb.Auth", "UserGet"),
    ("auth/user/list", "etcdserverpb.Auth", "UserList"),
    ("auth/user/delete", "etcdserverpb.Auth", "UserDelete"),
    (
        "auth/user/changepw",
        "etcdserverpb.Auth",
        "UserChangePassword",
    ),
    ("auth/user/grant", "etcdserverpb.Auth", "UserGrantRole"),
    ("auth/user/revoke", "etcdserverpb.Auth", "UserRevokeRole"),
    ("auth/role/add", "etcdserverpb.Auth", "RoleAdd"),
    ("auth/role/get", "etcdserverpb.Auth", "RoleGet"),
    ("auth/role/list", "etcdserverpb.Auth", "RoleList"),
    ("auth/role/delete", "etcdserverpb.Auth", "RoleDelete"),
    (
        "auth/role/grant",
        "etcdserverpb.Auth",
        "RoleGrantPermission",
    ),
    (
        "auth/role/revoke",
        "etcdserverpb.Auth",
        "RoleRevokePermission",
    ),
    ("lock/lock", "v3lockpb.Lock", "Lock"),
    ("lock/unlock", "v3lockpb.Lock", "Unlock"),
    ("election/campaign", "v3electionpb.Election", "Campaign"),
    ("election/proclaim", "v3electionpb.Election", "Proclaim"),
    ("election/leader", "v3electionpb.Election", "Leader"),
    ("election/observe", "v3electionpb.Election", "Observe"),
    ("election/resign", "v3electionpb.Election", "Resign"),
];

/// One gateway path's call.
struct Call {
    grpc_path: String,
    input: MessageDescriptor,
    output: MessageDescriptor,
    client_streaming: bool,
    server_streaming: bool,
}

fn calls() -> &'static Vec<(String, Call)> {
    static CALLS: OnceLock<Vec<(String, Call)>> = OnceLock::new();
    CALLS.get_or_init(|| {
        let pool = match DescriptorPool::decode(DESCRIPTORS) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the JSON gateway's descriptors do not decode");
                return Vec::new();
            }
        };
        ROUTES
            .iter()
            .filter_map(|(path, service, method)| {
                let s = pool.get_service_by_name(service)?;
                let m = s.methods().find(|m| m.name() == *method)?;
                Some((
                    (*path).to_string(),
                    Call {
                        grpc_path: format!("/{service}/{method}"),
                        input: m.input(),
                        output: m.output(),
                        client_streaming: m.is_client_streaming(),
                        server_streaming: m.is_server_streaming(),
                    },
                ))
            })
            .collect()
    })
}

/// What a gateway route needs: the gRPC services and the largest message they take.
struct Gateway {
    grpc: Router,
    max_message: usize,
}

impl Gateway {
    /// The largest body read whole: JSON carries bytes as base64 (4/3), so twice the
    /// largest message leaves room for it.
    fn max_body(&self) -> usize {
        2 * self.max_message
    }
}

/// The gateway's routes, calling the client gRPC services in `grpc`, which take messages of
/// up to `max_message` bytes; a request over that is refused as gRPC refuses it, and a body
/// that cannot hold such a message is not read further.
pub fn routes(grpc: Router, max_message: usize) -> Router {
    Router::new()
        .route("/v3/{*call}", any(handle))
        .route("/v3beta/{*call}", any(handle))
        .with_state(Arc::new(Gateway { grpc, max_message }))
}

/// gRPC's answer to a message over the limit, in grpc-go's words (what etcd's gateway shows).
fn too_large(len: usize, max: usize) -> Response {
    error(
        8,
        &format!("grpc: received message larger than max ({len} vs. {max})"),
    )
}

/// What the client port answers for a path nothing serves: gRPC's "unimplemented" to a gRPC
/// request, etcd's `404 page not found` to anything else.
pub async fn not_found(req: Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/grpc"),
                (header::HeaderName::from_static("grpc-status"), "12"),
            ],
        )
            .into_response();
    }
    plain(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// The headers etcd's gateway puts on every answer.
fn with_cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    with_cors(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
    )
}

/// The HTTP status grpc-gateway gives a gRPC code.
fn http_status(code: i32) -> StatusCode {
    match code {
        0 => StatusCode::OK,
        1 => StatusCode::REQUEST_TIMEOUT,
        3 | 11 => StatusCode::BAD_REQUEST,
        9 => StatusCode::PRECONDITION_FAILED,
        4 => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        8 => StatusCode::TOO_MANY_REQUESTS,
        12 => StatusCode::NOT_IMPLEMENTED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed call as etcd's gateway answers it.
fn error(code: i32, message: &str) -> Response {
    let m = serde_json::Value::from(message);
    let body = format!("{{\"error\":{m},\"message\":{m},\"code\":{code}}}");
    with_cors(
        (
            http_status(code),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    )
}

fn to_json(m: &DynamicMessage) -> Result<String, String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    m.serialize_with_options(
        &mut ser,
        &SerializeOptions::new().use_proto_field_name(true),
    )
    .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn from_json(desc: &MessageDescriptor, v: serde_json::Value) -> Result<DynamicMessage, String> {
    DynamicMessage::deserialize_with_options(
        desc.clone(),
        v,
        &DeserializeOptions::new().deny_unknown_fields(false),
    )
    .map_err(|e| e.to_string())
}

/// A message in gRPC's framing (uncompressed).
fn frame(m: &DynamicMessage) -> Bytes {
    let body = m.encode_to_vec();
    let mut b = BytesMut::with_capacity(5 + body.len());
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(&body);
    b.freeze()
}

/// Takes whole gRPC frames off the front of `buf`.
fn take_frames(buf: &mut BytesMut) -> Vec<Bytes> {
    let mut out = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        buf.advance(5);
        out.push(buf.split_to(len).freeze());
    }
    out
}

/// The gRPC status in trailers (or a trailers-only answer's headers): code and message.
fn grpc_status(h: &HeaderMap) -> Option<(i32, String)> {
    let code = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let msg = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some((code, msg))
}

/// grpc-message is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let path = req.uri().path();
    let rest = path
        .strip_prefix("/v3/")
        .or_else(|| path.strip_prefix("/v3beta/"))
        .unwrap_or("");
    let Some((_, call)) = calls().iter().find(|(p, _)| p == rest) else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    let token = req.headers().get(header::AUTHORIZATION).cloned();
    let body = req.into_body();
    let (frames, first_error) = if call.client_streaming {
        match request_stream(call, body).await {
            Ok(b) => (b, None),
            Err(e) => (Body::empty(), Some(e)),
        }
    } else {
        match axum::body::to_bytes(body, gw.max_body()).await {
            Err(_) => return too_large(gw.max_body(), gw.max_message),
            Ok(b) => match parse_one(&call.input, &b) {
                Ok(m) => {
                    let len = m.encoded_len();
                    if len > gw.max_message {
                        return too_large(len, gw.max_message);
                    }
                    (Body::from(frame(&m)), None)
                }
                Err(e) => (Body::empty(), Some(e)),
            },
        }
    };
    if let Some(e) = first_error {
        return error(3, &e);
    }
    let mut grpc_req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&call.grpc_path)
        .header(header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        grpc_req = grpc_req.header("authorization", t);
    }
    let Ok(grpc_req) = grpc_req.body(frames) else {
        return error(13, "could not build the gRPC request");
    };
    let resp = match gw.grpc.clone().oneshot(grpc_req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    if let Some((code, msg)) = grpc_status(resp.headers()) {
        if code != 0 {
            return error(code, &msg);
        }
    }
    if call.server_streaming {
        return response_stream(call.output.clone(), resp.into_body());
    }
    let collected = match resp.into_body().collect().await {
        Ok(c) => c,
        Err(e) => return error(14, &e.to_string()),
    };
    let trailers = collected.trailers().cloned();
    let mut data = BytesMut::from(collected.to_bytes().as_ref());
    if let Some((code, msg)) = trailers.as_ref().and_then(grpc_status) {
        if code != 0 {
            return error(code, &msg);
        }
    }
    let Some(first) = take_frames(&mut data).into_iter().next() else {
        return error(13, "no response message");
    };
    let json = DynamicMessage::decode(call.output.clone(), first)
        .map_err(|e| e.to_string())
        .and_then(|m| to_json(&m));
    match json {
        Ok(j) => with_cors(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (
                        header::HeaderName::from_static("grpc-metadata-content-type"),
                        "application/grpc",
                    ),
                ],
                j,
            )
                .into_response(),
        ),
        Err(e) => error(13, &e),
    }
}

/// A whole request body as one message (an empty body is the empty message).
fn parse_one(desc: &MessageDescriptor, b: &[u8]) -> Result<DynamicMessage, String> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(desc.clone()));
    }
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    from_json(desc, v)
}

/// A client stream: each JSON value in the request body, as it arrives, becomes a gRPC frame.
async fn request_stream(call: &Call, body: Body) -> Result<Body, String> {
    let desc = call.input.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.extend_from_slice(&chunk);
            let mut used = 0;
            {
                let mut it =
                    serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
                while let Some(v) = it.next() {
                    match v {
                        Ok(v) => {
                            used = it.byte_offset();
                            let Ok(m) = from_json(&desc, v) else {
                                return;
                            };
                            if tx.send(Ok(frame(&m))).await.is_err() {
                                return;
                            }
                        }
                        // Incomplete: wait for more. Malformed: the stream ends.
                        Err(e) if e.is_eof() => break,
                        Err(_) => return,
                    }
                }
            }
            buf.drain(..used);
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Body::from_stream(stream))
}

/// A server stream: each response message as a `{"result":...}` line; an error at the end
/// as etcd's gateway words it.
fn response_stream(desc: MessageDescriptor, body: Body) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let mut body = body;
        let mut buf = BytesMut::new();
        loop {
            // A client that went away ends the call (a watch with nothing to send would
            // otherwise wait for its next event before noticing).
            let f = tokio::select! {
                f = body.frame() => f,
                _ = tx.closed() => break,
            };
            let Some(Ok(f)) = f else { break };
            match f.into_data() {
                Ok(d) => {
                    buf.extend_from_slice(&d);
                    for m in take_frames(&mut buf) {
                        let line = match DynamicMessage::decode(desc.clone(), m)
                            .map_err(|e| e.to_string())
                            .and_then(|m| to_json(&m))
                        {
                            Ok(j) => format!("{{\"result\":{j}}}\n"),
                            Err(e) => stream_error(13, &e),
                        };
                        if tx.send(Ok(Bytes::from(line))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(f) => {
                    if let Some((code, msg)) = f.trailers_ref().and_then(grpc_status) {
                        if code != 0 {
                            let _ = tx.send(Ok(Bytes::from(stream_error(code, &msg)))).await;
                        }
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    with_cors(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::HeaderName::from_static("grpc-metadata-content-type"),
                    "application/grpc",
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
    )
}

/// An error ending a stream, as grpc-gateway (v1) writes it.
fn stream_error(code: i32, message: &str) -> String {
    let status = http_status(code);
    format!(
        "{}\n",
        serde_json::json!({"error": {
            "grpc_code": code,
            "http_code": status.as_u16(),
            "message": message,
            "http_status": status.canonical_reason().unwrap_or(""),
        }})
    )
}
