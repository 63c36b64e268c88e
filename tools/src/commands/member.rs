//! `etcdctl member list` (add/remove/update/promote to follow)

use crate::client::{Conn, Failure};
use crate::etcdserverpb::cluster_client::ClusterClient;
use crate::etcdserverpb::{Member, MemberListRequest};
use crate::flags::{Parsed, Spec};
use crate::printer::{self, header_json, Format, Obj};

pub const FLAGS: &[Spec] = &[];

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
        return Err(Failure::bad_args(format!(
            "member {sub} is not supported yet by retcd's etcdctl"
        )));
    }
    let conn = Conn::open(f).await?;
    let (header, ms) = members(&conn).await?;
    Ok(match format {
        Format::Json => {
            let members = ms
                .iter()
                .map(|m| {
                    Obj::default()
                        .num("ID", m.id)
                        .raw(
                            "name",
                            (!m.name.is_empty()).then(|| format!("{:?}", m.name)),
                        )
                        .list(
                            "peerURLs",
                            m.peer_ur_ls.iter().map(|u| format!("{u:?}")).collect(),
                        )
                        .list(
                            "clientURLs",
                            m.client_ur_ls.iter().map(|u| format!("{u:?}")).collect(),
                        )
                        .boolean("isLearner", m.is_learner)
                        .done()
                })
                .collect();
            Obj::default()
                .raw("header", header_json(&header))
                .list("members", members)
                .done()
                + "\n"
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
