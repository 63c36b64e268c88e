//! `etcdctl move-leader <transferee-member-id>`: finds the leader among `--endpoints` and asks
//! it to hand leadership to the given member.

use crate::client::{Conn, Failure};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::{MoveLeaderRequest, StatusRequest};
use crate::flags::Parsed;
use crate::printer::{header_only_json, Format};

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args("move-leader command needs 1 argument"));
    }
    let target = u64::from_str_radix(&f.args[0], 16).map_err(|_| {
        Failure::bad_args(format!(
            "strconv.ParseUint: parsing {:?}: invalid syntax",
            f.args[0]
        ))
    })?;
    let endpoints = crate::client::endpoints(f)?;
    let mut leader = None;
    for ep in &endpoints {
        let conn = Conn::open_endpoint(f, ep).await?;
        let s = MaintenanceClient::new(conn.channel.clone())
            .status(conn.req(StatusRequest {}))
            .await?
            .into_inner();
        let me = s.header.as_ref().map(|h| h.member_id).unwrap_or(0);
        if me == s.leader {
            leader = Some((conn, s.leader));
            break;
        }
    }
    let Some((conn, leader_id)) = leader else {
        return Err(Failure::bad_args(format!(
            "no leader endpoint given at [{}]",
            endpoints.join(" ")
        )));
    };
    let r = MaintenanceClient::new(conn.channel.clone())
        .move_leader(conn.req(MoveLeaderRequest { target_id: target }))
        .await?
        .into_inner();
    match format {
        Format::Simple => Ok(format!(
            "Leadership transferred from {leader_id:x} to {target:x}\n"
        )),
        Format::Json => Ok(header_only_json(&r.header)),
        Format::Protobuf => Ok(crate::printer::protobuf(&r)),
        other => Err(other.unsupported()),
    }
}
