//! `etcdctl put [options] <key> <value>` (value from stdin when absent)

use crate::client::{Conn, Failure};
use crate::etcdserverpb::PutRequest;
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[
    flag("lease", Kind::Value, "0"),
    flag("prev-kv", Kind::Bool, "false"),
    flag("ignore-value", Kind::Bool, "false"),
    flag("ignore-lease", Kind::Bool, "false"),
];

/// The Put request `put` sends for these flags and arguments.
pub fn build_request(f: &Parsed) -> Result<PutRequest, Failure> {
    build(f, true)
}

/// A put inside `txn`: txn has read standard input already, so a missing value is an error
/// (etcdctl finds its standard input drained there).
pub fn build_txn_request(f: &Parsed) -> Result<PutRequest, Failure> {
    build(f, false)
}

fn build(f: &Parsed, value_from_stdin: bool) -> Result<PutRequest, Failure> {
    let args = &f.args;
    let needs = "put command needs 1 argument and input from stdin or 2 arguments";
    let key = args
        .first()
        .ok_or_else(|| Failure::bad_args(needs))?
        .clone();
    let ignore_value = f.bool("ignore-value");
    if ignore_value && args.len() > 1 {
        return Err(Failure::bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let value = if ignore_value {
        String::new()
    } else {
        let value = if value_from_stdin {
            super::arg_or_stdin(args, 1)
        } else {
            args.get(1).cloned()
        };
        value.ok_or_else(|| Failure::bad_args(needs))?
    };
    let lease = super::parse_lease(&f.get("lease"))?;
    Ok(PutRequest {
        key: key.into_bytes(),
        value: value.into_bytes(),
        lease,
        prev_kv: f.bool("prev-kv"),
        ignore_value,
        ignore_lease: f.bool("ignore-lease"),
    })
}

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let req = build_request(f)?;
    let conn = Conn::open(f).await?;
    let resp = conn.kv().put(conn.req(req)).await?.into_inner();
    print(&resp, f, format)
}

/// Prints a Put response as `put` does.
pub fn print(
    resp: &crate::etcdserverpb::PutResponse,
    f: &Parsed,
    format: Format,
) -> Result<String, Failure> {
    let mut out = String::new();
    match format {
        Format::Json => {
            out.push_str(&printer::put_json(resp));
            out.push('\n');
        }
        Format::Fields => {
            printer::fields_header(&mut out, &resp.header);
            if let Some(kv) = &resp.prev_kv {
                printer::fields_kv_prefixed(&mut out, "Prev", kv);
            }
        }
        Format::Protobuf => return Ok(printer::protobuf(resp)),
        Format::Table => return Err(format.unsupported()),
        _ => {
            out.push_str("OK\n");
            if let Some(kv) = &resp.prev_kv {
                printer::simple_kv(&mut out, kv, f.bool("hex"), false);
            }
        }
    }
    Ok(out)
}
