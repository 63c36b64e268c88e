//! `etcdctl defrag [--cluster | --data-dir DIR]`: online on each endpoint (retcd's never
//! blocks reads or writes), or offline on a stopped member's data dir.

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::DefragmentRequest;
use crate::flags::{flag, Kind, Parsed, Spec};

pub const FLAGS: &[Spec] = &[
    flag("cluster", Kind::Bool, "false"),
    flag("data-dir", Kind::Value, ""),
];

pub async fn run(f: &Parsed) -> Result<String, Failure> {
    let data_dir = f.get("data-dir");
    if !data_dir.is_empty() {
        return offline(&data_dir).map(|_| String::new()).map_err(|e| {
            eprintln!("Failed to defragment etcd data[{data_dir}] ({})", e.message);
            Failure::error(e.message)
        });
    }
    let mut failures = 0;
    for ep in super::endpoint::endpoints(f).await? {
        let res = match Conn::open_endpoint(f, &ep).await {
            Ok(conn) => MaintenanceClient::new(conn.channel.clone())
                .defragment(conn.req(DefragmentRequest {}))
                .await
                .map(|_| ())
                .map_err(|s| status_message(&s)),
            Err(e) => Err(e.message),
        };
        match res {
            Ok(()) => super::print_now(&format!("Finished defragmenting etcd member[{ep}]\n")),
            Err(e) => {
                eprintln!("Failed to defragment etcd member[{ep}] ({e})");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        // etcdctl exits 1 after the per-member lines, with nothing more.
        return Err(Failure::error(""));
    }
    Ok(String::new())
}

/// Compacts the database of a stopped member's data dir; returns sizes before and after.
pub fn offline(data_dir: &str) -> Result<(u64, u64), Failure> {
    let path = std::path::Path::new(data_dir);
    if !retcd::backend::db_path(path).join("CURRENT").is_file() {
        return Err(Failure::error(format!(
            "{data_dir}: no retcd database in this data dir"
        )));
    }
    let b = retcd::backend::Backend::open(path, None, true).map_err(|e| {
        Failure::error(format!(
            "cannot open {data_dir} (is the member still running? stop it first): {e}"
        ))
    })?;
    let before = b.size_on_disk();
    b.compact_all().map_err(|e| Failure::error(e.to_string()))?;
    Ok((before, b.size_on_disk()))
}
