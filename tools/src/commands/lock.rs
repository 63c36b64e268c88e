//! `etcdctl lock <lockname> [exec-command arg1 arg2 ...]`: holds a named lock until
//! interrupted, or for as long as the command runs (with `ETCD_LOCK_REV` in its environment).

use crate::client::{Conn, Failure};
use crate::concurrency::{self, Session};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::Format;

pub const FLAGS: &[Spec] = &[flag("ttl", Kind::Value, "10")];

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let Some(name) = f.args.first() else {
        return Err(Failure::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    };
    let ttl: i64 = f
        .get("ttl")
        .parse()
        .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --ttl", f.get("ttl"))))?;
    let conn = Conn::open(f).await?;
    let session = Session::new(&conn, ttl).await?;
    let held = tokio::select! {
        r = concurrency::lock(&conn, &session, name) => r?,
        _ = super::interrupted() => {
            let _ = concurrency::delete(&conn, &session.key(name)).await;
            return Err(Failure::error("context canceled"));
        }
    };
    if f.args.len() > 1 {
        let status = run_locked(&f.args[1..], held.revision).await;
        let unlocked = concurrency::delete(&conn, &held.key).await;
        status?;
        unlocked?;
        return Ok(String::new());
    }
    let k = concurrency::get(&conn, &held.key).await?;
    if k.kvs.is_empty() {
        return Err(Failure::error("lock lost on init"));
    }
    super::print_now(&super::get::print(&k, f, format)?);
    tokio::select! {
        _ = super::interrupted() => {
            concurrency::delete(&conn, &held.key).await?;
            Ok(String::new())
        }
        _ = session.done() => Err(Failure::error("session expired")),
    }
}

/// Runs the command while the lock is held; its failure becomes ours, exit status included.
async fn run_locked(argv: &[String], rev: i64) -> Result<(), Failure> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(std::process::Stdio::null());
    if std::env::var_os("ETCD_LOCK_REV").is_none() {
        cmd.env("ETCD_LOCK_REV", rev.to_string());
    }
    let status = cmd.status().await.map_err(|e| {
        Failure::error(if e.kind() == std::io::ErrorKind::NotFound {
            format!("exec: {:?}: executable file not found in $PATH", argv[0])
        } else {
            format!("exec: {:?}: {e}", argv[0])
        })
    })?;
    super::exit_status(status)
}
