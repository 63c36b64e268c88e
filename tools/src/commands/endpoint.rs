//! `etcdctl endpoint status|health [--cluster]`

use std::time::Instant;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::kv_client::KvClient;
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::{HashKvRequest, RangeRequest, StatusRequest, StatusResponse};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, header_json, Format, Obj};

pub const FLAGS: &[Spec] = &[
    flag("cluster", Kind::Bool, "false"),
    flag("rev", Kind::Value, "0"),
];

/// The endpoints to ask: `--endpoints` as given (etcdctl skips DNS discovery here), or with
/// `--cluster` every member's client URLs, asked of the (possibly discovered) endpoints.
pub async fn endpoints(f: &Parsed) -> Result<Vec<String>, Failure> {
    if !f.bool("cluster") {
        return Ok(crate::client::endpoint_list(f));
    }
    let conn = Conn::open(f).await?;
    let (_, ms) = super::member::members(&conn).await?;
    Ok(ms.into_iter().flat_map(|m| m.client_ur_ls).collect())
}

async fn conn_to(f: &Parsed, ep: &str) -> Result<Conn, Failure> {
    Conn::open_endpoint(f, ep).await
}

/// Asks each endpoint with `ask`: the answers, and the last failure (each one said on stderr
/// as etcdctl says it: `Failed to get the <what> of endpoint EP (error)`).
async fn ask_each<T, Fut>(
    f: &Parsed,
    what: &str,
    ask: impl Fn(Conn) -> Fut,
) -> Result<(Vec<(String, T)>, Option<String>), Failure>
where
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut rows = Vec::new();
    let mut failed = None;
    for ep in endpoints(f).await? {
        let res = match conn_to(f, &ep).await {
            Ok(conn) => ask(conn)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| status_message(&s)),
            Err(e) => Err(e.message),
        };
        match res {
            Ok(r) => rows.push((ep, r)),
            Err(e) => {
                eprintln!("Failed to get the {what} of endpoint {ep} ({e})");
                failed = Some(e);
            }
        }
    }
    Ok((rows, failed))
}

fn status_json(ep: &str, s: &StatusResponse) -> String {
    let status = Obj::default()
        .raw("header", header_json(&s.header))
        .raw(
            "version",
            (!s.version.is_empty()).then(|| printer::go_json(&s.version)),
        )
        .num("dbSize", s.db_size)
        .num("leader", s.leader)
        .num("raftIndex", s.raft_index)
        .num("raftTerm", s.raft_term)
        .num("raftAppliedIndex", s.raft_applied_index)
        .list(
            "errors",
            s.errors.iter().map(|e| printer::go_json(e)).collect(),
        )
        .num("dbSizeInUse", s.db_size_in_use)
        .boolean("isLearner", s.is_learner)
        .done();
    format!(
        "{{\"Endpoint\":{},\"Status\":{status}}}",
        printer::go_json(ep)
    )
}

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    match sub {
        "status" => status(f, format).await,
        "health" => health(f, format).await,
        "hashkv" => hashkv(f, format).await,
        other => Err(Failure::bad_args(format!(
            "endpoint {other} is not supported yet by retcd's etcdctl"
        ))),
    }
}

async fn hashkv(f: &Parsed, format: Format) -> Result<String, Failure> {
    let revision: i64 = f
        .get("rev")
        .parse()
        .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --rev", f.get("rev"))))?;
    let (rows, failed) = ask_each(f, "hash", |conn| async move {
        MaintenanceClient::new(conn.channel.clone())
            .hash_kv(conn.req(HashKvRequest { revision }))
            .await
    })
    .await?;
    let out = match format {
        Format::Json => {
            let items: Vec<String> = rows
                .iter()
                .map(|(ep, r)| {
                    let h = Obj::default()
                        .raw("header", header_json(&r.header))
                        .num("hash", r.hash)
                        .num("compact_revision", r.compact_revision)
                        .done();
                    format!("{{\"Endpoint\":{},\"HashKV\":{h}}}", printer::go_json(ep))
                })
                .collect();
            format!("[{}]\n", items.join(","))
        }
        Format::Table => printer::table(
            &["ENDPOINT", "HASH"],
            &rows
                .iter()
                .map(|(ep, r)| vec![ep.clone(), r.hash.to_string()])
                .collect::<Vec<_>>(),
        ),
        Format::Simple => rows
            .iter()
            .map(|(ep, r)| format!("{ep}, {}\n", r.hash))
            .collect(),
        Format::Fields => rows
            .iter()
            .map(|(ep, r)| {
                let mut out = String::new();
                printer::fields_header(&mut out, &r.header);
                out.push_str(&format!(
                    "\"Endpoint\" : {}\n\"Hash\" : {}\n\n",
                    printer::go_quote(ep.as_bytes()),
                    r.hash
                ));
                out
            })
            .collect(),
        other => return Err(other.unsupported()),
    };
    match failed {
        Some(e) => {
            super::print_now(&out);
            Err(Failure::error(e))
        }
        None => Ok(out),
    }
}

async fn status(f: &Parsed, format: Format) -> Result<String, Failure> {
    let (rows, failed) = ask_each(f, "status", |conn| async move {
        MaintenanceClient::new(conn.channel.clone())
            .status(conn.req(StatusRequest {}))
            .await
    })
    .await?;
    let member_id = |s: &StatusResponse| s.header.as_ref().map(|h| h.member_id).unwrap_or(0);
    let out = match format {
        Format::Protobuf => return Err(format.unsupported()),
        Format::Json => {
            let items: Vec<String> = rows.iter().map(|(ep, s)| status_json(ep, s)).collect();
            format!("[{}]\n", items.join(","))
        }
        Format::Fields => rows
            .iter()
            .map(|(ep, s)| {
                let mut out = String::new();
                printer::fields_header(&mut out, &s.header);
                out.push_str(&format!(
                    "\"Version\" : {}\n",
                    printer::go_quote(s.version.as_bytes())
                ));
                out.push_str(&format!("\"DBSize\" : {}\n", s.db_size));
                out.push_str(&format!("\"Leader\" : {}\n", s.leader));
                out.push_str(&format!("\"IsLearner\" : {}\n", s.is_learner));
                out.push_str(&format!("\"RaftIndex\" : {}\n", s.raft_index));
                out.push_str(&format!("\"RaftTerm\" : {}\n", s.raft_term));
                out.push_str(&format!(
                    "\"RaftAppliedIndex\" : {}\n",
                    s.raft_applied_index
                ));
                out.push_str(&format!("\"Errors\" : [{}]\n", s.errors.join(" ")));
                out.push_str(&format!(
                    "\"Endpoint\" : {}\n\n",
                    printer::go_quote(ep.as_bytes())
                ));
                out
            })
            .collect(),
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|(ep, s)| {
                    vec![
                        ep.clone(),
                        format!("{:x}", member_id(s)),
                        s.version.clone(),
                        printer::human_bytes(s.db_size),
                        (s.leader == member_id(s)).to_string(),
                        s.is_learner.to_string(),
                        s.raft_term.to_string(),
                        s.raft_index.to_string(),
                        s.raft_applied_index.to_string(),
                        s.errors.join(", "),
                    ]
                })
                .collect();
            printer::table(
                &[
                    "ENDPOINT",
                    "ID",
                    "VERSION",
                    "DB SIZE",
                    "IS LEADER",
                    "IS LEARNER",
                    "RAFT TERM",
                    "RAFT INDEX",
                    "RAFT APPLIED INDEX",
                    "ERRORS",
                ],
                &cells,
            )
        }
        Format::Simple => rows
            .iter()
            .map(|(ep, s)| {
                format!(
                    "{}, {:x}, {}, {}, {}, {}, {}, {}, {}, {}\n",
                    ep,
                    member_id(s),
                    s.version,
                    printer::human_bytes(s.db_size),
                    s.leader == member_id(s),
                    s.is_learner,
                    s.raft_term,
                    s.raft_index,
                    s.raft_applied_index,
                    s.errors.join(", ")
                )
            })
            .collect(),
    };
    if failed.is_some() {
        // etcdctl prints the statuses it got, then exits 1 (the failures are said above).
        super::print_now(&out);
        return Err(Failure::error(""));
    }
    Ok(out)
}

/// One endpoint's health, as etcdctl's `epHealth`.
struct Health {
    ep: String,
    healthy: bool,
    took: String,
    error: String,
}

/// `endpoint health`: a linearizable read of key "health" on each endpoint. The simple format
/// goes to standard error, as etcdctl prints it.
async fn health(f: &Parsed, format: Format) -> Result<String, Failure> {
    let mut list = Vec::new();
    for ep in endpoints(f).await? {
        let conn = match conn_to(f, &ep).await {
            Ok(conn) => conn,
            Err(e) => {
                list.push(Health {
                    ep,
                    healthy: false,
                    took: String::new(),
                    error: e.message,
                });
                continue;
            }
        };
        let started = Instant::now();
        let res = KvClient::new(conn.channel.clone())
            .range(conn.req(RangeRequest {
                key: b"health".to_vec(),
                ..Default::default()
            }))
            .await;
        let took = printer::go_duration(started.elapsed());
        // Permission denied still means the read went through consensus.
        let error = match res {
            Ok(_) => String::new(),
            Err(s) if s.message() == "etcdserver: permission denied" => String::new(),
            Err(s) => status_message(&s),
        };
        list.push(Health {
            ep,
            healthy: error.is_empty(),
            took,
            error,
        });
    }
    let simple = || {
        for h in &list {
            if h.healthy {
                eprintln!(
                    "{} is healthy: successfully committed proposal: took = {}",
                    h.ep, h.took
                );
            } else {
                eprintln!(
                    "{} is unhealthy: failed to commit proposal: {}",
                    h.ep, h.error
                );
            }
        }
        String::new()
    };
    let out = match format {
        Format::Simple => simple(),
        Format::Json => {
            let items: Vec<String> = list
                .iter()
                .map(|h| {
                    let mut o = format!(
                        "{{\"endpoint\":{},\"health\":{},\"took\":{}",
                        printer::go_json(&h.ep),
                        h.healthy,
                        printer::go_json(&h.took)
                    );
                    if !h.error.is_empty() {
                        o.push_str(&format!(",\"error\":{}", printer::go_json(&h.error)));
                    }
                    o + "}"
                })
                .collect();
            format!("[{}]\n", items.join(","))
        }
        Format::Fields => list
            .iter()
            .map(|h| {
                format!(
                    "\"Endpoint\" : {}\n\"Health\" : {}\n\"Took\" : {}\n\"Error\" : {}\n\n",
                    printer::go_quote(h.ep.as_bytes()),
                    h.healthy,
                    h.took,
                    h.error
                )
            })
            .collect(),
        Format::Table => printer::table(
            &["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
            &list
                .iter()
                .map(|h| {
                    vec![
                        h.ep.clone(),
                        h.healthy.to_string(),
                        h.took.clone(),
                        h.error.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Format::Protobuf => return Err(format.unsupported()),
    };
    if list.iter().all(|h| h.healthy) {
        Ok(out)
    } else {
        super::print_now(&out);
        Err(Failure::error("unhealthy cluster"))
    }
}
