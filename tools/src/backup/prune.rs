//! `etcd-backup prune --keep-...`: deletes the archives the retention policy does not keep.
//! The newest archive and the newest verified archive are never deleted. `save` applies the
//! same policy after every successful backup when one is configured.

use super::retention::{self, Policy};
use super::store::Store;
use super::{Error, Settings};

/// The retention policy the `--keep-*` settings give.
pub fn policy(s: &Settings) -> Result<Policy, Error> {
    let n = |k: &str| s.number(k).map(|v| v as usize);
    Ok(Policy {
        last: n("keep-last")?,
        hourly: n("keep-hourly")?,
        daily: n("keep-daily")?,
        weekly: n("keep-weekly")?,
        monthly: n("keep-monthly")?,
    })
}

pub async fn run(s: &Settings, store: &Store) -> Result<String, Error> {
    let policy = policy(s)?;
    if policy.is_empty() {
        return Err(Error::usage(
            "prune needs a retention policy: --keep-last N and/or --keep-hourly/--keep-daily/--keep-weekly/--keep-monthly N",
        ));
    }
    apply(s, store, policy).await
}

/// Deletes what `policy` does not keep (only reports it with `--dry-run`).
pub async fn apply(s: &Settings, store: &Store, policy: Policy) -> Result<String, Error> {
    let names: Vec<String> = store.list().await?.into_iter().map(|o| o.name).collect();
    let verified = store.verified().await?;
    let decision = retention::decide(&names, policy, &verified);
    let dry = s.bool("dry-run");
    let mut out = String::new();
    for (name, why) in &decision {
        if !why.is_empty() {
            if dry || s.verbose() {
                out.push_str(&format!("keep {name} ({})\n", why.join(", ")));
            }
            continue;
        }
        if dry {
            out.push_str(&format!("would delete {name}\n"));
            continue;
        }
        store.delete(name).await?;
        if s.verbose() {
            out.push_str(&format!("deleted {name}\n"));
        }
    }
    Ok(out)
}
