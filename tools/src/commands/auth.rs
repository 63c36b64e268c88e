//! `etcdctl auth enable|disable|status`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::auth_client::AuthClient;
use crate::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthStatusRequest,
    AuthUserGrantRoleRequest,
};
use crate::flags::Parsed;
use crate::printer::{header_json, Format, Obj};

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    if !f.args.is_empty() {
        return Err(Failure::bad_args(format!(
            "auth {sub} command does not accept any arguments"
        )));
    }
    let conn = Conn::open(f).await?;
    let mut c = AuthClient::new(conn.channel.clone());
    match sub {
        "enable" => {
            // As etcdctl: a missing root role is created and granted to root, then retried.
            loop {
                match c.auth_enable(conn.req(AuthEnableRequest {})).await {
                    Ok(_) => break,
                    Err(s) if s.message() == "etcdserver: root user does not have root role" => {
                        c.role_add(conn.req(AuthRoleAddRequest {
                            name: "root".into(),
                        }))
                        .await?;
                        c.user_grant_role(conn.req(AuthUserGrantRoleRequest {
                            user: "root".into(),
                            role: "root".into(),
                        }))
                        .await?;
                    }
                    Err(s) => return Err(s.into()),
                }
            }
            Ok("Authentication Enabled\n".into())
        }
        "disable" => {
            c.auth_disable(conn.req(AuthDisableRequest {})).await?;
            Ok("Authentication Disabled\n".into())
        }
        "status" => {
            let r = c
                .auth_status(conn.req(AuthStatusRequest {}))
                .await?
                .into_inner();
            match format {
                Format::Json => Ok(Obj::default()
                    .raw("header", header_json(&r.header))
                    .boolean("enabled", r.enabled)
                    .num("authRevision", r.auth_revision)
                    .done()
                    + "\n"),
                _ => Ok(format!(
                    "Authentication Status: {}\nAuthRevision: {}\n",
                    r.enabled, r.auth_revision
                )),
            }
        }
        other => Err(Failure::bad_args(format!(
            "unknown auth subcommand {other}"
        ))),
    }
}
