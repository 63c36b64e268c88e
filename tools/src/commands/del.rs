//! `etcdctl del [options] <key> [range_end]`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::DeleteRangeRequest;
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[
    flag("prefix", Kind::Bool, "false"),
    flag("prev-kv", Kind::Bool, "false"),
    flag("from-key", Kind::Bool, "false"),
];

/// The DeleteRange request `del` sends for these flags and arguments.
pub fn build_request(f: &Parsed) -> Result<DeleteRangeRequest, Failure> {
    let args = &f.args;
    if args.is_empty() || args.len() > 2 {
        return Err(Failure::bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (key, range_end) = super::key_range(args, f.bool("prefix"), f.bool("from-key"))?;
    Ok(DeleteRangeRequest {
        key,
        range_end,
        prev_kv: f.bool("prev-kv"),
    })
}

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let req = build_request(f)?;
    let conn = Conn::open(f).await?;
    let resp = conn.kv().delete_range(conn.req(req)).await?.into_inner();
    print(&resp, f, format)
}

/// Prints a DeleteRange response as `del` does.
pub fn print(
    resp: &crate::etcdserverpb::DeleteRangeResponse,
    f: &Parsed,
    format: Format,
) -> Result<String, Failure> {
    let mut out = String::new();
    match format {
        Format::Json => {
            out.push_str(&printer::delete_json(resp));
            out.push('\n');
        }
        Format::Fields => {
            printer::fields_header(&mut out, &resp.header);
            out.push_str(&format!("\"Deleted\" : {}\n", resp.deleted));
            for kv in &resp.prev_kvs {
                printer::fields_kv_prefixed(&mut out, "Prev", kv);
            }
        }
        Format::Protobuf => return Ok(printer::protobuf(resp)),
        Format::Table => return Err(format.unsupported()),
        _ => {
            out.push_str(&format!("{}\n", resp.deleted));
            for kv in &resp.prev_kvs {
                printer::simple_kv(&mut out, kv, f.bool("hex"), false);
            }
        }
    }
    Ok(out)
}
