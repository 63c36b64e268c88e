//! The JSON gateway (`POST /v3/...`): the same requests against real etcd 3.4.23 and retcd
//! answer the same status and JSON (64-bit numbers as strings, bytes as base64, errors with
//! their HTTP status), member and cluster IDs aside; streams answer `{"result":...}` lines.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use retcd_tests::*;

/// (path, Authorization header from the last authenticate, body)
const STEPS: &[(&str, bool, &str)] = &[
    ("/v3/kv/put", false, r#"{"key":"Zm9v","value":"YmFy"}"#),
    ("/v3/kv/range", false, r#"{"key":"Zm9v"}"#),
    ("/v3/kv/range", false, r#"{"key":"bm9uZQ=="}"#),
    ("/v3/kv/put", false, r#"{"key":"","value":"eA=="}"#),
    (
        "/v3/kv/put",
        false,
        r#"{"key":"YQ==","value":"MQ==","ignored_field":1}"#,
    ),
    (
        "/v3beta/kv/range",
        false,
        r#"{"key":"AA==","range_end":"AA==","keys_only":true,"sort_order":"DESCEND","sort_target":"KEY"}"#,
    ),
    (
        "/v3/kv/range",
        false,
        r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
    ),
    (
        "/v3/kv/txn",
        false,
        r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6","prev_kv":true}}],"failure":[{"request_range":{"key":"Zm9v"}}]}"#,
    ),
    (
        "/v3/kv/txn",
        false,
        r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[],"failure":[{"request_range":{"key":"Zm9v"}}]}"#,
    ),
    (
        "/v3/kv/deleterange",
        false,
        r#"{"key":"Zm9v","prev_kv":true}"#,
    ),
    ("/v3/kv/compaction", false, r#"{"revision":"3"}"#),
    ("/v3/kv/range", false, r#"{"key":"Zm9v","revision":"1"}"#),
    ("/v3/kv/range", false, r#"{"key":"Zm9v","revision":"100"}"#),
    ("/v3/lease/grant", false, r#"{"TTL":"60","ID":"1234"}"#),
    ("/v3/lease/grant", false, r#"{"TTL":60,"ID":1234}"#),
    ("/v3/lease/leases", false, "{}"),
    (
        "/v3/kv/put",
        false,
        r#"{"key":"bGs=","value":"dg==","lease":"1234"}"#,
    ),
    ("/v3/kv/lease/revoke", false, r#"{"ID":"1234"}"#),
    ("/v3/kv/range", false, r#"{"key":"bGs="}"#),
    ("/v3/lease/revoke", false, r#"{"ID":"1234"}"#),
    ("/v3/kv/range", false, "{bad json"),
    ("/v3/kv/range", false, ""),
    ("/v3/kv/nothing", false, "{}"),
    ("/v3alpha/kv/range", false, "{}"),
    (
        "/v3/auth/user/add",
        false,
        r#"{"name":"root","password":"pw"}"#,
    ),
    ("/v3/auth/role/add", false, r#"{"name":"root"}"#),
    (
        "/v3/auth/user/grant",
        false,
        r#"{"user":"root","role":"root"}"#,
    ),
    ("/v3/auth/enable", false, "{}"),
    ("/v3/kv/range", false, r#"{"key":"YQ=="}"#),
    (
        "/v3/auth/authenticate",
        false,
        r#"{"name":"root","password":"wrong"}"#,
    ),
    (
        "/v3/auth/authenticate",
        false,
        r#"{"name":"root","password":"pw"}"#,
    ),
    ("/v3/kv/range", true, r#"{"key":"YQ=="}"#),
    ("/v3/auth/user/list", true, "{}"),
    ("/v3/auth/role/get", true, r#"{"role":"root"}"#),
    ("/v3/auth/disable", true, "{}"),
    ("/v3/kv/range", false, r#"{"key":"YQ=="}"#),
];

/// Member and cluster IDs, raft terms and tokens differ between the two clusters.
fn masked(s: &str) -> String {
    let s = mask_json_fields(s, &["cluster_id", "member_id", "raft_term"]);
    match s.find("\"token\":\"") {
        Some(i) => {
            let rest = &s[i + 9..];
            let end = rest.find('"').unwrap_or(rest.len());
            format!("{}\"token\":\"T{}", &s[..i], &rest[end..])
        }
        None => s,
    }
}

fn run(port: u16) -> Vec<String> {
    let mut token = String::new();
    let mut out = Vec::new();
    for (path, auth, body) in STEPS {
        let headers: Vec<(&str, &str)> = if *auth {
            vec![("Authorization", token.as_str())]
        } else {
            vec![]
        };
        let (code, resp) = http_post(port, path, &headers, body)
            .unwrap_or_else(|e| panic!("port {port}: POST {path} {body}: {e}"));
        if let Some(i) = resp.find("\"token\":\"") {
            let rest = &resp[i + 9..];
            token = rest[..rest.find('"').unwrap_or(0)].to_string();
        }
        // Go's JSON decoder and serde word a syntax error differently.
        let resp = if body.starts_with("{bad") {
            format!("{}", resp.contains("\"code\":3}"))
        } else {
            masked(&resp)
        };
        out.push(format!("{path} {body}\n{code} {resp}"));
    }
    out
}

/// A watch over the gateway: the created line, then the event of a put made meanwhile.
fn watch(port: u16) -> Vec<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // One request as the whole body, as etcd3gw sends it; the watch outlives the body.
    let req = r#"{"create_request":{"key":"dw==","prev_kv":true}}"#;
    write!(
        s,
        "POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{req}",
        req.len()
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    // Status line and headers.
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.starts_with("HTTP/") {
            lines.push(line.trim_end().to_string());
        }
    }
    let mut results = 0;
    while results < 2 {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("{\"result\"") {
            lines.push(masked(line.trim_end()));
            results += 1;
            if results == 1 {
                let (code, _) =
                    http_post(port, "/v3/kv/put", &[], r#"{"key":"dw==","value":"MQ=="}"#).unwrap();
                assert_eq!(code, 200);
            }
        }
    }
    lines
}

#[test]
fn the_json_gateway_answers_as_etcds() {
    let etcd = Member::start(Flavor::RealEtcd);
    let want = run(etcd.client_port);
    let ours = Member::start(Flavor::Retcd);
    let got = run(ours.client_port);
    let diffs: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("etcd:  {a}\nretcd: {b}"))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
    assert_eq!(want.len(), got.len());
    assert!(
        want[1].contains(r#""kvs":[{"key":"Zm9v","create_revision":"2""#),
        "{}",
        want[1]
    );
    assert_eq!(watch(ours.client_port), watch(etcd.client_port));
    // The watch ended with its client's connection.
    let watchers = || {
        let (_, m) = http_get(ours.client_port, "/metrics").unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
            .map(str::to_string)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while watchers().as_deref() != Some("0") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(watchers().as_deref(), Some("0"));
}

/// `--enable-grpc-gateway=false` turns the gateway off, as etcd's does: its paths are not found.
#[test]
fn the_gateway_can_be_turned_off() {
    for flavor in [Flavor::RealEtcd, Flavor::Retcd] {
        let m = Member::start_with(flavor, &["--enable-grpc-gateway=false"], &[]);
        let got = http_post(m.client_port, "/v3/kv/range", &[], r#"{"key":"YQ=="}"#)
            .unwrap_or_else(|e| panic!("{flavor:?}: POST /v3/kv/range: {e}"));
        assert_eq!(got, (404, "404 page not found\n".to_string()), "{flavor:?}");
        assert_eq!(out(&m.etcdctl(&["put", "a", "1"])), "OK\n", "{flavor:?}");
    }
}

/// Requests over etcd's limits answer as etcd's gateway answers them: a put over
/// `--max-request-bytes` as etcd refuses it, a message over gRPC's limit in grpc-go's words.
#[test]
fn oversized_requests_answer_as_etcds() {
    // n bytes of 'x' (n a multiple of 3), base64-encoded.
    let body = |n: usize| format!(r#"{{"key":"YQ==","value":"{}"}}"#, "eHh4".repeat(n / 3));
    let (over_etcd, over_grpc) = (body(1_599_999), body(3_000_000));
    let answers = |flavor: Flavor| {
        let m = Member::start(flavor);
        [&over_etcd, &over_grpc]
            .map(|b| http_post(m.client_port, "/v3/kv/put", &[], b).unwrap())
            .to_vec()
    };
    let want = answers(Flavor::RealEtcd);
    assert_eq!(want[0].0, 400, "{want:?}");
    assert_eq!(answers(Flavor::Retcd), want);
}
