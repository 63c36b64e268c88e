//! `etcdctl compaction [options] <revision>`

use crate::client::{Conn, Failure};
use crate::etcdserverpb::CompactionRequest;
use crate::flags::{flag, Kind, Parsed, Spec};

pub const FLAGS: &[Spec] = &[flag("physical", Kind::Bool, "false")];

pub async fn run(f: &Parsed) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args("compaction command needs 1 argument"));
    }
    let rev: i64 = f.args[0].parse().map_err(|_| {
        Failure::error(format!(
            "strconv.ParseInt: parsing {:?}: invalid syntax",
            f.args[0]
        ))
    })?;
    let conn = Conn::open(f).await?;
    conn.kv()
        .compact(conn.req(CompactionRequest {
            revision: rev,
            physical: f.bool("physical"),
        }))
        .await?;
    Ok(format!("compacted revision {rev}\n"))
}
