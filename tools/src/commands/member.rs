//! `etcdctl member list|add|remove|update|promote`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::cluster_client::ClusterClient;
use crate::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, header_json, Format, Obj, Shown};

pub const FLAGS: &[Spec] = &[
    flag("peer-urls", Kind::Value, ""),
    flag("learner", Kind::Bool, "false"),
];

fn member_id(f: &Parsed) -> Result<u64, Failure> {
    let arg = f
        .args
        .first()
        .ok_or_else(|| Failure::bad_args("member ID is not provided"))?;
    u64::from_str_radix(arg, 16).map_err(|_| {
        Failure::bad_args(format!(
            "bad member ID arg (strconv.ParseUint: parsing {arg:?}: invalid syntax), expecting ID in Hex"
        ))
    })
}

fn peer_urls(f: &Parsed) -> Result<Vec<String>, Failure> {
    let urls: Vec<String> = f
        .get("peer-urls")
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(Failure::bad_args("member peer urls not provided"));
    }
    Ok(urls)
}

fn cluster_hex(h: &Option<crate::etcdserverpb::ResponseHeader>) -> String {
    format!("{:16x}", h.map(|h| h.cluster_id).unwrap_or(0))
}

/// A member as Go's encoding/json writes etcdserverpb.Member.
fn member_json(m: &Member) -> String {
    Obj::default()
        .num("ID", m.id)
        .raw(
            "name",
            (!m.name.is_empty()).then(|| printer::go_json(&m.name)),
        )
        .list(
            "peerURLs",
            m.peer_ur_ls.iter().map(|u| printer::go_json(u)).collect(),
        )
        .list(
            "clientURLs",
            m.client_ur_ls.iter().map(|u| printer::go_json(u)).collect(),
        )
        .boolean("isLearner", m.is_learner)
        .done()
}

/// A membership change's answer: the header and the members after it (etcdctl has json and
/// protobuf printers for these, no fields or table).
fn changed(
    simple: String,
    header: &Option<crate::etcdserverpb::ResponseHeader>,
    added: Option<&Member>,
    members: &[Member],
    msg: &impl prost::Message,
) -> Shown {
    let json = Obj::default()
        .raw("header", header_json(header))
        .raw("member", added.map(member_json))
        .list("members", members.iter().map(member_json).collect())
        .done()
        + "\n";
    Shown::rpc(simple, json, msg)
}

async fn change(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    let conn = Conn::open(f).await?;
    let mut c = ClusterClient::new(conn.channel.clone());
    match sub {
        "add" => {
            let name = f
                .args
                .first()
                .ok_or_else(|| Failure::bad_args("member name not provided"))?
                .clone();
            let urls = peer_urls(f)?;
            let r = c
                .member_add(conn.req(MemberAddRequest {
                    peer_ur_ls: urls.clone(),
                    is_learner: f.bool("learner"),
                }))
                .await?
                .into_inner();
            let new_id = r.member.as_ref().map(|m| m.id).unwrap_or(0);
            let mut conf = Vec::new();
            for m in &r.members {
                for u in &m.peer_ur_ls {
                    let n = if m.id == new_id { &name } else { &m.name };
                    conf.push(format!("{n}={u}"));
                }
            }
            let simple = format!(
                "Member {new_id:16x} added to cluster {}\n\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_ADVERTISE_PEER_URLS={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
                cluster_hex(&r.header),
                printer::go_quote(name.as_bytes()),
                printer::go_quote(conf.join(",").as_bytes()),
                printer::go_quote(urls.join(",").as_bytes())
            );
            changed(simple, &r.header, r.member.as_ref(), &r.members, &r).pick(format)
        }
        "remove" => {
            let id = member_id(f)?;
            let r = c
                .member_remove(conn.req(MemberRemoveRequest { id }))
                .await?
                .into_inner();
            let simple = format!(
                "Member {id:16x} removed from cluster {}\n",
                cluster_hex(&r.header)
            );
            changed(simple, &r.header, None, &r.members, &r).pick(format)
        }
        "update" => {
            let id = member_id(f)?;
            let urls = peer_urls(f)?;
            let r = c
                .member_update(conn.req(MemberUpdateRequest {
                    id,
                    peer_ur_ls: urls,
                }))
                .await?
                .into_inner();
            let simple = format!(
                "Member {id:16x} updated in cluster {}\n",
                cluster_hex(&r.header)
            );
            changed(simple, &r.header, None, &r.members, &r).pick(format)
        }
        "promote" => {
            let id = member_id(f)?;
            let r = c
                .member_promote(conn.req(MemberPromoteRequest { id }))
                .await?
                .into_inner();
            let simple = format!(
                "Member {id:16x} promoted in cluster {}\n",
                cluster_hex(&r.header)
            );
            changed(simple, &r.header, None, &r.members, &r).pick(format)
        }
        other => Err(Failure::bad_args(format!(
            "unknown member subcommand {other}"
        ))),
    }
}

pub async fn members(
    conn: &Conn,
) -> Result<(Option<crate::etcdserverpb::ResponseHeader>, Vec<Member>), Failure> {
    let r = ClusterClient::new(conn.channel.clone())
        .member_list(conn.req(MemberListRequest {
            linearizable: false,
        }))
        .await?
        .into_inner();
    Ok((r.header, r.members))
}

fn status(m: &Member) -> &'static str {
    if m.name.is_empty() {
        "unstarted"
    } else {
        "started"
    }
}

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    if sub != "list" {
        return change(sub, f, format).await;
    }
    let conn = Conn::open(f).await?;
    let (header, ms) = members(&conn).await?;
    Ok(match format {
        Format::Protobuf => {
            return Ok(printer::protobuf(
                &crate::etcdserverpb::MemberListResponse {
                    header,
                    members: ms,
                },
            ))
        }
        Format::Json => {
            let members = ms.iter().map(member_json).collect();
            Obj::default()
                .raw("header", header_json(&header))
                .list("members", members)
                .done()
                + "\n"
        }
        Format::Fields => {
            let mut out = String::new();
            printer::fields_header(&mut out, &header);
            for m in &ms {
                out.push_str(&format!("\"ID\" : {}\n", m.id));
                out.push_str(&format!(
                    "\"Name\" : {}\n",
                    printer::go_quote(m.name.as_bytes())
                ));
                for u in &m.peer_ur_ls {
                    out.push_str(&format!(
                        "\"PeerURL\" : {}\n",
                        printer::go_quote(u.as_bytes())
                    ));
                }
                for u in &m.client_ur_ls {
                    out.push_str(&format!(
                        "\"ClientURL\" : {}\n",
                        printer::go_quote(u.as_bytes())
                    ));
                }
                out.push_str(&format!("\"IsLearner\" : {}\n\n", m.is_learner));
            }
            out
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = ms
                .iter()
                .map(|m| {
                    vec![
                        format!("{:x}", m.id),
                        status(m).to_string(),
                        m.name.clone(),
                        m.peer_ur_ls.join(","),
                        m.client_ur_ls.join(","),
                        m.is_learner.to_string(),
                    ]
                })
                .collect();
            printer::table(
                &[
                    "ID",
                    "STATUS",
                    "NAME",
                    "PEER ADDRS",
                    "CLIENT ADDRS",
                    "IS LEARNER",
                ],
                &rows,
            )
        }
        _ => ms
            .iter()
            .map(|m| {
                format!(
                    "{:x}, {}, {}, {}, {}, {}\n",
                    m.id,
                    status(m),
                    m.name,
                    m.peer_ur_ls.join(","),
                    m.client_ur_ls.join(","),
                    m.is_learner
                )
            })
            .collect(),
    })
}
