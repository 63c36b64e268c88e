//! `etcdctl role add|delete|get|list|grant-permission|revoke-permission`

use crate::authpb::Permission;
use crate::client::{Conn, Failure};
use crate::etcdserverpb::auth_client::AuthClient;
use crate::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleListRequest, AuthRoleRevokePermissionRequest,
};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{fields_header, go_quote, header_json, quoted, Format, Obj, Shown};

pub const FLAGS: &[Spec] = &[
    flag("prefix", Kind::Bool, "false"),
    flag("from-key", Kind::Bool, "false"),
];

/// `role get`'s output (also used by `user get --detail`).
pub fn print_role(role: &str, r: &AuthRoleGetResponse, format: Format) -> Result<String, Failure> {
    let perms = r
        .perm
        .iter()
        .map(|p| {
            Obj::default()
                .num("permType", p.perm_type)
                .bytes("key", &p.key)
                .bytes("range_end", &p.range_end)
                .done()
        })
        .collect();
    let json = Obj::default()
        .raw("header", header_json(&r.header))
        .list("perm", perms)
        .done()
        + "\n";
    let mut fields = String::new();
    fields_header(&mut fields, &r.header);
    for p in &r.perm {
        let kind = match p.perm_type {
            0 => "READ",
            1 => "WRITE",
            _ => "READWRITE",
        };
        fields.push_str(&format!(
            "\"PermType\" :  {kind}\n\"Key\" : {}\n\"RangeEnd\" : {}\n",
            go_quote(&p.key),
            go_quote(&p.range_end)
        ));
    }
    let mut out = format!("Role {role}\nKV Read:\n");
    let line = |p: &Permission| -> String {
        let key = crate::printer::raw(&p.key);
        if p.range_end.is_empty() {
            return format!("\t{key}\n");
        }
        let end = crate::printer::raw(&p.range_end);
        let mut s = if p.range_end != [0] {
            format!("\t[{key}, {end})")
        } else {
            format!("\t[{key}, <open ended>")
        };
        if super::prefix_end(&p.key) == p.range_end {
            s.push_str(&format!(" (prefix {key})"));
        }
        s.push('\n');
        s
    };
    for p in r
        .perm
        .iter()
        .filter(|p| p.perm_type == 0 || p.perm_type == 2)
    {
        out.push_str(&line(p));
    }
    out.push_str("KV Write:\n");
    for p in r
        .perm
        .iter()
        .filter(|p| p.perm_type == 1 || p.perm_type == 2)
    {
        out.push_str(&line(p));
    }
    Shown::rpc(out, json, r).fields(fields).pick(format)
}

/// etcdctl's `permRange`: the key and range end of a permission from the arguments and
/// `--prefix` / `--from-key`.
fn perm_range(f: &Parsed, args: &[String]) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let (prefix, from_key) = (f.bool("prefix"), f.bool("from-key"));
    let key = args[0].as_bytes().to_vec();
    if key.is_empty() {
        if prefix && from_key {
            return Err(Failure::bad_args(
                "--from-key and --prefix flags are mutually exclusive",
            ));
        }
        let end = if prefix || from_key {
            vec![0]
        } else {
            Vec::new()
        };
        return Ok((vec![0], end));
    }
    if args.len() == 1 {
        if prefix {
            if from_key {
                return Err(Failure::bad_args(
                    "--from-key and --prefix flags are mutually exclusive",
                ));
            }
            return Ok((key.clone(), super::prefix_end(&key)));
        }
        if from_key {
            return Ok((key, vec![0]));
        }
        return Ok((key, Vec::new()));
    }
    if prefix {
        return Err(Failure::bad_args(
            "unexpected endkey argument with --prefix flag",
        ));
    }
    if from_key {
        return Err(Failure::bad_args(
            "unexpected endkey argument with --from-key flag",
        ));
    }
    Ok((key, args[1].as_bytes().to_vec()))
}

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    match sub {
        "add" | "delete" | "get" => {
            let name = super::one_arg(
                f,
                &format!("role {sub} command requires role name as its argument"),
            )?;
            let conn = Conn::open(f).await?;
            let mut c = AuthClient::new(conn.channel.clone());
            match sub {
                "add" => {
                    let r = c
                        .role_add(conn.req(AuthRoleAddRequest { name: name.into() }))
                        .await?
                        .into_inner();
                    Shown::header_only(format!("Role {name} created\n"), &r.header, &r).pick(format)
                }
                "delete" => {
                    let r = c
                        .role_delete(conn.req(AuthRoleDeleteRequest { role: name.into() }))
                        .await?
                        .into_inner();
                    Shown::header_only(format!("Role {name} deleted\n"), &r.header, &r).pick(format)
                }
                _ => {
                    let r = c
                        .role_get(conn.req(AuthRoleGetRequest { role: name.into() }))
                        .await?
                        .into_inner();
                    print_role(name, &r, format)
                }
            }
        }
        "list" => {
            if !f.args.is_empty() {
                return Err(Failure::bad_args("role list command requires no arguments"));
            }
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .role_list(conn.req(AuthRoleListRequest {}))
                .await?
                .into_inner();
            let json = Obj::default()
                .raw("header", header_json(&r.header))
                .list("roles", quoted(&r.roles))
                .done()
                + "\n";
            let mut fields = String::new();
            fields_header(&mut fields, &r.header);
            fields.push_str("\"Roles\" :");
            for role in &r.roles {
                fields.push(' ');
                fields.push_str(&go_quote(role.as_bytes()));
            }
            fields.push('\n');
            let simple: String = r.roles.iter().map(|s| format!("{s}\n")).collect();
            Shown::rpc(simple, json, &r).fields(fields).pick(format)
        }
        "grant-permission" => {
            if f.args.len() < 3 {
                return Err(Failure::bad_args(
                    "role grant command requires role name, permission type, and key [endkey] as its argument",
                ));
            }
            let perm_type = match f.args[1].to_ascii_uppercase().as_str() {
                "READ" => 0,
                "WRITE" => 1,
                "READWRITE" => 2,
                _ => {
                    return Err(Failure::bad_args(format!(
                        "invalid permission type: {}",
                        f.args[1]
                    )))
                }
            };
            let (key, range_end) = perm_range(f, &f.args[2..])?;
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .role_grant_permission(conn.req(AuthRoleGrantPermissionRequest {
                    name: f.args[0].clone(),
                    perm: Some(Permission {
                        perm_type,
                        key,
                        range_end,
                    }),
                }))
                .await?
                .into_inner();
            Shown::header_only(format!("Role {} updated\n", f.args[0]), &r.header, &r).pick(format)
        }
        "revoke-permission" => {
            if f.args.len() < 2 {
                return Err(Failure::bad_args(
                    "role revoke-permission command requires role name and key [endkey] as its argument",
                ));
            }
            let (key, range_end) = perm_range(f, &f.args[1..])?;
            let conn = Conn::open(f).await?;
            let r = AuthClient::new(conn.channel.clone())
                .role_revoke_permission(conn.req(AuthRoleRevokePermissionRequest {
                    role: f.args[0].clone(),
                    key,
                    range_end: range_end.clone(),
                }))
                .await?
                .into_inner();
            let (role, key) = (&f.args[0], &f.args[1]);
            let end = String::from_utf8_lossy(&range_end);
            let simple = if range_end.is_empty() {
                format!("Permission of key {key} is revoked from role {role}\n")
            } else if range_end != [0] {
                format!("Permission of range [{key}, {end}) is revoked from role {role}\n")
            } else {
                format!("Permission of range [{key}, <open ended> is revoked from role {role}\n")
            };
            Shown::header_only(simple, &r.header, &r).pick(format)
        }
        other => Err(Failure::bad_args(format!(
            "unknown role subcommand {other}"
        ))),
    }
}
