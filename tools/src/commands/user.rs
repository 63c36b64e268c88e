//! `etcdctl user add|delete|get|list|passwd|grant-role|revoke-role`

use crate::authpb::UserAddOptions;
use crate::client::{Conn, Failure};
use crate::etcdserverpb::auth_client::AuthClient;
use crate::etcdserverpb::{
    AuthRoleGetRequest, AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest,
    AuthUserGetRequest, AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{header_json, quoted, Format, Obj, Shown};

pub const FLAGS: &[Spec] = &[
    flag("interactive", Kind::Bool, "true"),
    flag("new-user-password", Kind::Value, ""),
    flag("no-password", Kind::Bool, "false"),
    flag("detail", Kind::Bool, "false"),
];

fn read_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.split_whitespace().next().unwrap_or("").to_string()
}

/// etcdctl asks twice on the terminal; from a pipe it reads the two lines.
fn ask_password(name: &str) -> Result<String, Failure> {
    eprint!("Password of {name}: ");
    let p1 = read_line();
    if p1.is_empty() {
        return Err(Failure::bad_args("empty password"));
    }
    eprint!("Type password of {name} again for confirmation: ");
    let p2 = read_line();
    if p1 != p2 {
        return Err(Failure::bad_args("given passwords are different"));
    }
    Ok(p1)
}

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    match sub {
        "add" => {
            let arg = super::one_arg(f, "user add command requires user name as its argument")?;
            let (mut user, mut password) = (arg.to_string(), String::new());
            let no_password = f.bool("no-password");
            if !no_password {
                if !f.get("new-user-password").is_empty() {
                    password = f.get("new-user-password");
                } else if let Some((u, p)) = arg.split_once(':') {
                    if u.is_empty() {
                        return Err(Failure::bad_args("empty user name is not allowed"));
                    }
                    user = u.to_string();
                    password = p.to_string();
                } else if !f.bool("interactive") {
                    password = read_line();
                } else {
                    password = ask_password(arg)?;
                }
            }
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .user_add(conn.req(AuthUserAddRequest {
                    name: user.clone(),
                    password,
                    options: Some(UserAddOptions { no_password }),
                    hashed_password: String::new(),
                }))
                .await?
                .into_inner();
            Shown::header_only(format!("User {user} created\n"), &r.header, &r).pick(format)
        }
        "delete" => {
            let name = super::one_arg(f, "user delete command requires user name as its argument")?;
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .user_delete(conn.req(AuthUserDeleteRequest { name: name.into() }))
                .await?
                .into_inner();
            Shown::header_only(format!("User {name} deleted\n"), &r.header, &r).pick(format)
        }
        "get" => {
            let name = super::one_arg(f, "user get command requires user name as its argument")?;
            let conn = Conn::open(f).await?;
            let mut c = AuthClient::new(conn.channel.clone());
            let r = c
                .user_get(conn.req(AuthUserGetRequest { name: name.into() }))
                .await?
                .into_inner();
            if f.bool("detail") {
                // Printed as it goes: a role's protobuf goes straight to standard output.
                super::print_now(&format!("User: {name}\n"));
                for role in &r.roles {
                    super::print_now("\n");
                    let rr = c
                        .role_get(conn.req(AuthRoleGetRequest { role: role.clone() }))
                        .await?
                        .into_inner();
                    super::print_now(&super::role::print_role(role, &rr, format)?);
                }
                return Ok(String::new());
            }
            let json = Obj::default()
                .raw("header", header_json(&r.header))
                .list("roles", quoted(&r.roles))
                .done()
                + "\n";
            let mut simple = format!("User: {name}\nRoles:");
            for role in &r.roles {
                simple.push(' ');
                simple.push_str(role);
            }
            simple.push('\n');
            Shown::rpc(simple, json, &r).pick(format)
        }
        "list" => {
            if !f.args.is_empty() {
                return Err(Failure::bad_args("user list command requires no arguments"));
            }
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .user_list(conn.req(AuthUserListRequest {}))
                .await?
                .into_inner();
            let json = Obj::default()
                .raw("header", header_json(&r.header))
                .list("users", quoted(&r.users))
                .done()
                + "\n";
            let simple: String = r.users.iter().map(|u| format!("{u}\n")).collect();
            Shown::rpc(simple, json, &r).pick(format)
        }
        "passwd" => {
            let name = super::one_arg(f, "user passwd command requires user name as its argument")?;
            let password = if f.bool("interactive") {
                ask_password(name)?
            } else {
                read_line()
            };
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .user_change_password(conn.req(AuthUserChangePasswordRequest {
                    name: name.into(),
                    password,
                    hashed_password: String::new(),
                }))
                .await?
                .into_inner();
            Shown::header_only("Password updated\n", &r.header, &r).pick(format)
        }
        "grant-role" | "revoke-role" => {
            let [user, role] = f.args.as_slice() else {
                return Err(Failure::bad_args(if sub == "grant-role" {
                    "user grant command requires user name and role name as its argument"
                } else {
                    "user revoke-role requires user name and role name as its argument"
                }));
            };
            let conn = Conn::open(f).await?;
            let mut c = AuthClient::new(conn.channel.clone());
            if sub == "grant-role" {
                let r = c
                    .user_grant_role(conn.req(AuthUserGrantRoleRequest {
                        user: user.clone(),
                        role: role.clone(),
                    }))
                    .await?
                    .into_inner();
                let simple = format!("Role {role} is granted to user {user}\n");
                Shown::header_only(simple, &r.header, &r).pick(format)
            } else {
                let r = c
                    .user_revoke_role(conn.req(AuthUserRevokeRoleRequest {
                        name: user.clone(),
                        role: role.clone(),
                    }))
                    .await?
                    .into_inner();
                let simple = format!("Role {role} is revoked from user {user}\n");
                Shown::header_only(simple, &r.header, &r).pick(format)
            }
        }
        other => Err(Failure::bad_args(format!(
            "unknown user subcommand {other}"
        ))),
    }
}
