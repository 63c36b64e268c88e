//! `--metrics-file`: the outcome of the last runs in Prometheus text format, for
//! node-exporter's textfile collector. A failed run keeps the last success's figures.

use std::collections::BTreeMap;

const HELP: &[(&str, &str)] = &[
    (
        "etcd_backup_last_success_timestamp_seconds",
        "When the last successful backup finished (Unix time).",
    ),
    (
        "etcd_backup_last_failure_timestamp_seconds",
        "When the last failed backup run ended (Unix time).",
    ),
    (
        "etcd_backup_last_run_success",
        "1 if the last backup run succeeded, 0 if it failed.",
    ),
    (
        "etcd_backup_last_size_bytes",
        "Stored (compressed) size of the last successful backup.",
    ),
    (
        "etcd_backup_last_snapshot_size_bytes",
        "Uncompressed snapshot size of the last successful backup.",
    ),
    (
        "etcd_backup_last_revision",
        "Revision of the last successful backup.",
    ),
    (
        "etcd_backup_last_duration_seconds",
        "How long the last successful backup took.",
    ),
];

/// Updates `path` with `values` (other metrics keep their previous values).
pub fn write(path: &str, values: &[(&str, f64)]) -> Result<(), String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(old) = std::fs::read_to_string(path) {
        for line in old.lines().filter(|l| !l.starts_with('#')) {
            if let Some((k, v)) = line.split_once(' ') {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }
    for (k, v) in values {
        m.insert(k.to_string(), format!("{v}"));
    }
    let mut out = String::new();
    for (name, help) in HELP {
        if let Some(v) = m.get(*name) {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        }
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, out).map_err(|e| format!("write {tmp}: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename {tmp} to {path}: {e}"))
}
