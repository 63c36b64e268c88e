//! `etcd-backup list`: the archives, oldest first, one per line with the name first
//! (`-w table` and `-w json` for more).

use super::store::Store;
use super::{archive, Error, Settings};
use crate::printer;

fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub async fn run(s: &Settings, store: &Store) -> Result<String, Error> {
    let objects = store.list().await?;
    let now = super::store::file::now_secs();
    let rows: Vec<(String, archive::NameInfo, u64)> = objects
        .into_iter()
        .filter_map(|o| archive::parse(&o.name).map(|i| (o.name, i, o.size)))
        .collect();
    match s.get("write-out").as_str() {
        "simple" => Ok(rows
            .iter()
            .map(|(n, i, size)| {
                format!(
                    "{n} {} {} {size}\n",
                    archive::rfc3339(i.millis / 1000),
                    i.revision
                )
            })
            .collect()),
        "table" => Ok(printer::table(
            &["NAME", "TIME", "REVISION", "SIZE", "AGE"],
            &rows
                .iter()
                .map(|(n, i, size)| {
                    vec![
                        n.clone(),
                        archive::rfc3339(i.millis / 1000),
                        i.revision.to_string(),
                        printer::human_bytes(*size as i64),
                        age(now - i.millis / 1000),
                    ]
                })
                .collect::<Vec<_>>(),
        )),
        "json" => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(n, i, size)| {
                    serde_json::json!({
                        "name": n,
                        "time": archive::rfc3339(i.millis / 1000),
                        "revision": i.revision,
                        "cluster_id": format!("{:x}", i.cluster_id),
                        "size": size,
                        "age_seconds": (now - i.millis / 1000).max(0),
                    })
                })
                .collect();
            Ok(format!("{}\n", serde_json::Value::Array(v)))
        }
        other => Err(Error::usage(format!(
            "-w {other}: list writes simple, table or json"
        ))),
    }
}
