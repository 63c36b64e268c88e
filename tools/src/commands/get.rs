//! `etcdctl get [options] <key> [range_end]`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::{range_request, RangeRequest};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[
    flag("consistency", Kind::Value, "l"),
    flag("order", Kind::Value, ""),
    flag("sort-by", Kind::Value, ""),
    flag("limit", Kind::Value, "0"),
    flag("prefix", Kind::Bool, "false"),
    flag("from-key", Kind::Bool, "false"),
    flag("rev", Kind::Value, "0"),
    flag("keys-only", Kind::Bool, "false"),
    flag("count-only", Kind::Bool, "false"),
    flag("print-value-only", Kind::Bool, "false"),
];

/// The Range request `get` sends for these flags and arguments.
pub fn build_request(f: &Parsed) -> Result<RangeRequest, Failure> {
    let args = &f.args;
    if args.is_empty() || args.len() > 2 {
        return Err(Failure::bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (key, range_end) = super::key_range(args, f.bool("prefix"), f.bool("from-key"))?;
    let serializable = match f.get("consistency").as_str() {
        "l" => false,
        "s" => true,
        other => {
            return Err(Failure::bad_feature(format!(
                "unknown consistency flag {other:?}"
            )))
        }
    };
    use range_request::{SortOrder, SortTarget};
    let order = match f.get("order").to_ascii_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => {
            return Err(Failure::bad_feature(format!(
                "bad sort order {}",
                f.get("order")
            )))
        }
    };
    let target = match f.get("sort-by").to_ascii_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => {
            return Err(Failure::bad_feature(format!(
                "bad sort target {}",
                f.get("sort-by")
            )))
        }
    };
    // clientv3: sorting by key ascending is what the server does anyway.
    let order = if target == SortTarget::Key && order == SortOrder::Ascend {
        SortOrder::None
    } else {
        order
    };
    let num = |n: &str| {
        f.get(n)
            .parse::<i64>()
            .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --{n}", f.get(n))))
    };
    Ok(RangeRequest {
        key,
        range_end,
        limit: num("limit")?,
        revision: num("rev")?,
        sort_order: order as i32,
        sort_target: target as i32,
        serializable,
        keys_only: f.bool("keys-only"),
        count_only: f.bool("count-only"),
        ..Default::default()
    })
}

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let req = build_request(f)?;
    let conn = Conn::open(f).await?;
    let resp = conn.kv().range(conn.req(req)).await?.into_inner();
    print(&resp, f, format)
}

/// Prints a Range response as `get` does.
pub fn print(
    resp: &crate::etcdserverpb::RangeResponse,
    f: &Parsed,
    format: Format,
) -> Result<String, Failure> {
    let mut out = String::new();
    match format {
        Format::Json => {
            out.push_str(&printer::range_json(resp));
            out.push('\n');
        }
        Format::Fields => {
            printer::fields_header(&mut out, &resp.header);
            for kv in &resp.kvs {
                printer::fields_kv(&mut out, kv);
            }
            out.push_str(&format!("\"More\" : {}\n", resp.more));
            out.push_str(&format!("\"Count\" : {}\n", resp.count));
        }
        Format::Protobuf => return Ok(printer::protobuf(resp)),
        Format::Table => return Err(format.unsupported()),
        _ => {
            for kv in &resp.kvs {
                printer::simple_kv(&mut out, kv, f.bool("hex"), f.bool("print-value-only"));
            }
        }
    }
    Ok(out)
}
