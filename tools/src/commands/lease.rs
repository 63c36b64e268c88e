//! `etcdctl lease grant|revoke|timetolive|list|keep-alive`

use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::lease_client::LeaseClient;
use crate::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{Format, Shown};

pub const FLAGS: &[Spec] = &[
    flag("keys", Kind::Bool, "false"),
    flag("once", Kind::Bool, "false"),
];

/// etcdctl's exit code when the server cannot be used as asked.
use crate::client::EXIT_BAD_CONNECTION;

fn lease_arg(f: &Parsed, cmd: &str) -> Result<i64, Failure> {
    if f.args.len() != 1 {
        // etcdctl's wording differs per subcommand.
        let need = if cmd == "timetolive" {
            "lease timetolive command needs lease ID as argument".to_string()
        } else {
            format!("lease {cmd} command needs 1 argument")
        };
        return Err(Failure::bad_args(need));
    }
    i64::from_str_radix(&f.args[0], 16).map_err(|_| {
        Failure::bad_args(format!(
            "bad lease ID arg (strconv.ParseInt: parsing {:?}: invalid syntax), expecting ID in Hex",
            f.args[0]
        ))
    })
}

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    match sub {
        "grant" => grant(f, format).await,
        "revoke" => revoke(f, format).await,
        "timetolive" => time_to_live(f, format).await,
        "list" => list(f, format).await,
        "keep-alive" => keep_alive(f, format).await,
        _ => Err(Failure::bad_args("lease: unknown subcommand")),
    }
}

/// clientv3's lease responses embed the header: in JSON its fields come first, flat.
fn flat_header(h: &Option<crate::etcdserverpb::ResponseHeader>) -> String {
    let h = h.unwrap_or_default();
    format!(
        "\"cluster_id\":{},\"member_id\":{},\"revision\":{},\"raft_term\":{}",
        h.cluster_id, h.member_id, h.revision, h.raft_term
    )
}

/// clientv3's lease answers embed the response header: etcdctl's protobuf printer marshals
/// through the embedded header's method, so `-w protobuf` prints the header alone.
fn header_pb(h: &Option<crate::etcdserverpb::ResponseHeader>) -> Vec<u8> {
    prost::Message::encode_to_vec(&h.unwrap_or_default())
}

/// The ID/TTL pair of grant and keep-alive answers in every format etcdctl has for them.
fn id_ttl(
    simple: String,
    h: &Option<crate::etcdserverpb::ResponseHeader>,
    id: i64,
    ttl: i64,
    error_field: bool,
) -> Shown {
    let json = format!(
        "{{{},\"ID\":{id},\"TTL\":{ttl}{}}}\n",
        flat_header(h),
        if error_field { ",\"Error\":\"\"" } else { "" }
    );
    let mut fields = String::new();
    crate::printer::fields_header(&mut fields, h);
    fields.push_str(&format!("\"ID\" : {id}\n\"TTL\" : {ttl}\n"));
    Shown::simple(simple)
        .json(json)
        .fields(fields)
        .protobuf(header_pb(h))
}

async fn grant(f: &Parsed, format: Format) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args("lease grant command needs TTL argument"));
    }
    let ttl: i64 = f.args[0].parse().map_err(|_| {
        Failure::bad_args(format!(
            "bad TTL (strconv.ParseInt: parsing {:?}: invalid syntax)",
            f.args[0]
        ))
    })?;
    let conn = Conn::open(f).await?;
    let r = LeaseClient::new(conn.channel.clone())
        .lease_grant(conn.req(LeaseGrantRequest { ttl, id: 0 }))
        .await
        .map_err(|s| Failure::error(format!("failed to grant lease ({})", status_message(&s))))?
        .into_inner();
    let simple = format!("lease {:016x} granted with TTL({}s)\n", r.id, r.ttl);
    id_ttl(simple, &r.header, r.id, r.ttl, true).pick(format)
}

async fn revoke(f: &Parsed, format: Format) -> Result<String, Failure> {
    let id = lease_arg(f, "revoke")?;
    let conn = Conn::open(f).await?;
    let r = LeaseClient::new(conn.channel.clone())
        .lease_revoke(conn.req(LeaseRevokeRequest { id }))
        .await
        .map_err(|s| Failure::error(format!("failed to revoke lease ({})", status_message(&s))))?
        .into_inner();
    if format == Format::Protobuf {
        // clientv3.LeaseRevokeResponse has no Marshal method of its own.
        return Err(Failure::bad_feature(
            "marshal unsupported for type clientv3.LeaseRevokeResponse",
        ));
    }
    let mut fields = String::new();
    crate::printer::fields_header(&mut fields, &r.header);
    Shown::simple(format!("lease {id:016x} revoked\n"))
        .json(crate::printer::header_only_json(&r.header))
        .fields(fields)
        .pick(format)
}

async fn time_to_live(f: &Parsed, format: Format) -> Result<String, Failure> {
    let id = lease_arg(f, "timetolive")?;
    let conn = Conn::open(f).await?;
    let r = LeaseClient::new(conn.channel.clone())
        .lease_time_to_live(conn.req(LeaseTimeToLiveRequest {
            id,
            keys: f.bool("keys"),
        }))
        .await
        .map_err(|s| Failure {
            message: status_message(&s),
            code: EXIT_BAD_CONNECTION,
        })?
        .into_inner();
    // clientv3's response embeds the header, so its fields come first and flat.
    let h = r.header.unwrap_or_default();
    let keys = if r.keys.is_empty() {
        "null".to_string()
    } else {
        use base64::Engine;
        let ks: Vec<String> = r
            .keys
            .iter()
            .map(|k| {
                format!(
                    "\"{}\"",
                    base64::engine::general_purpose::STANDARD.encode(k)
                )
            })
            .collect();
        format!("[{}]", ks.join(","))
    };
    let json = format!(
        "{{\"cluster_id\":{},\"member_id\":{},\"revision\":{},\"raft_term\":{},\"id\":{},\"ttl\":{},\"granted-ttl\":{},\"keys\":{}}}\n",
        h.cluster_id, h.member_id, h.revision, h.raft_term, r.id, r.ttl, r.granted_ttl, keys
    );
    let mut fields = String::new();
    crate::printer::fields_header(&mut fields, &r.header);
    fields.push_str(&format!(
        "\"ID\" : {}\n\"TTL\" : {}\n\"GrantedTTL\" : {}\n",
        r.id, r.ttl, r.granted_ttl
    ));
    for k in &r.keys {
        fields.push_str(&format!("\"Key\" : {}\n", crate::printer::go_quote(k)));
    }
    let simple = if r.ttl == -1 {
        format!("lease {id:016x} already expired\n")
    } else {
        let mut out = format!(
            "lease {id:016x} granted with TTL({}s), remaining({}s)",
            r.granted_ttl, r.ttl
        );
        if f.bool("keys") {
            let ks: Vec<String> = r.keys.iter().map(|k| crate::printer::raw(k)).collect();
            out.push_str(&format!(", attached keys([{}])", ks.join(" ")));
        }
        out.push('\n');
        out
    };
    Shown::simple(simple)
        .json(json)
        .fields(fields)
        .protobuf(header_pb(&r.header))
        .pick(format)
}

async fn list(f: &Parsed, format: Format) -> Result<String, Failure> {
    let conn = Conn::open(f).await?;
    let r = LeaseClient::new(conn.channel.clone())
        .lease_leases(conn.req(LeaseLeasesRequest {}))
        .await
        .map_err(|s| Failure::error(format!("failed to list leases ({})", status_message(&s))))?
        .into_inner();
    let ls: Vec<String> = r
        .leases
        .iter()
        .map(|l| format!("{{\"id\":{}}}", l.id))
        .collect();
    let json = format!(
        "{{{},\"leases\":[{}]}}\n",
        flat_header(&r.header),
        ls.join(",")
    );
    let mut fields = String::new();
    crate::printer::fields_header(&mut fields, &r.header);
    for l in &r.leases {
        fields.push_str(&format!("\"ID\" : {}\n", l.id));
    }
    let mut simple = format!("found {} leases\n", r.leases.len());
    for l in &r.leases {
        simple.push_str(&format!("{:016x}\n", l.id));
    }
    Shown::simple(simple)
        .json(json)
        .fields(fields)
        .protobuf(header_pb(&r.header))
        .pick(format)
}

async fn keep_alive(f: &Parsed, format: Format) -> Result<String, Failure> {
    let id = lease_arg(f, "keep-alive")?;
    let conn = Conn::open(f).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let _ = tx.send(LeaseKeepAliveRequest { id }).await;
    let mut stream = LeaseClient::new(conn.channel.clone())
        .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let not_found = || Failure {
        message: "etcdserver: requested lease not found".into(),
        code: EXIT_BAD_CONNECTION,
    };
    let mut out = String::new();
    loop {
        let r = match stream.next().await {
            Some(Ok(r)) => r,
            Some(Err(s)) => {
                return Err(Failure {
                    message: status_message(&s),
                    code: EXIT_BAD_CONNECTION,
                })
            }
            None => return Ok(out),
        };
        if r.ttl <= 0 {
            if f.bool("once") {
                return Err(not_found());
            }
            out.push_str(&format!("lease {id:016x} expired or revoked.\n"));
            return Ok(out);
        }
        let simple = format!("lease {id:016x} keepalived with TTL({})\n", r.ttl);
        let line = id_ttl(simple, &r.header, r.id, r.ttl, false).pick(format)?;
        if f.bool("once") {
            return Ok(line);
        }
        print!("{line}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        tokio::time::sleep(std::time::Duration::from_secs((r.ttl as u64 / 3).max(1))).await;
        if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
            return Ok(out);
        }
    }
}
