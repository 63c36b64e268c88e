//! `etcdctl alarm list|disarm`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::alarm_request::AlarmAction;
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::{AlarmMember, AlarmRequest, AlarmResponse, AlarmType};
use crate::flags::Parsed;
use crate::printer::{self, header_json, Format, Obj};

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    if !f.args.is_empty() {
        return Err(Failure::bad_args(format!(
            "alarm {sub} command accepts no arguments"
        )));
    }
    let conn = Conn::open(f).await?;
    let mut c = MaintenanceClient::new(conn.channel.clone());
    let list = c
        .alarm(conn.req(AlarmRequest {
            action: AlarmAction::Get as i32,
            member_id: 0,
            alarm: AlarmType::None as i32,
        }))
        .await?
        .into_inner();
    let resp = match sub {
        "list" => list,
        "disarm" => {
            // clientv3: disarming "everything" disarms each listed alarm in turn.
            let mut r = AlarmResponse::default();
            for a in &list.alarms {
                let d = c
                    .alarm(conn.req(AlarmRequest {
                        action: AlarmAction::Deactivate as i32,
                        member_id: a.member_id,
                        alarm: a.alarm,
                    }))
                    .await?
                    .into_inner();
                r.alarms.extend(d.alarms);
            }
            r
        }
        other => {
            return Err(Failure::bad_args(format!(
                "unknown alarm subcommand {other}"
            )))
        }
    };
    print(&resp, format)
}

fn name(a: i32) -> &'static str {
    match AlarmType::try_from(a) {
        Ok(AlarmType::Nospace) => "NOSPACE",
        Ok(AlarmType::Corrupt) => "CORRUPT",
        _ => "NONE",
    }
}

/// gogoproto's compact text form, as `%+v` prints an AlarmMember.
fn text(a: &AlarmMember) -> String {
    let mut s = String::new();
    if a.member_id != 0 {
        s.push_str(&format!("memberID:{} ", a.member_id));
    }
    if a.alarm != 0 {
        s.push_str(&format!("alarm:{} ", name(a.alarm)));
    }
    s
}

fn print(r: &AlarmResponse, format: Format) -> Result<String, Failure> {
    Ok(match format {
        Format::Simple => r.alarms.iter().map(|a| format!("{}\n", text(a))).collect(),
        Format::Json => {
            let alarms = r
                .alarms
                .iter()
                .map(|a| {
                    Obj::default()
                        .num("memberID", a.member_id)
                        .num("alarm", a.alarm)
                        .done()
                })
                .collect();
            Obj::default()
                .raw("header", header_json(&r.header))
                .list("alarms", alarms)
                .done()
                + "\n"
        }
        Format::Fields => {
            let mut out = String::new();
            printer::fields_header(&mut out, &r.header);
            for a in &r.alarms {
                out.push_str(&format!("\"MemberID\" : {}\n", a.member_id));
                out.push_str(&format!("\"AlarmType\" : {}\n", name(a.alarm)));
                out.push('\n');
            }
            out
        }
        Format::Protobuf => printer::protobuf(r),
        other => return Err(other.unsupported()),
    })
}
