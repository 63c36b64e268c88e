//! `etcd-backup verify NAME|--latest`: fetch and check an archive, then restore it into a
//! scratch data dir and compare what the restore found with the archive's metadata. A passing
//! archive is marked verified (prune always keeps the newest verified archive).

use super::store::Store;
use super::{fetch, Error, Settings};

pub async fn run(s: &Settings, store: &Store) -> Result<String, Error> {
    let arg = s.archive_arg("verify")?;
    let name = store.resolve(arg.as_deref()).await?;
    let scratch = fetch::Scratch::new(&s.tmp_dir(&std::env::temp_dir()), "verify")?;
    let file = scratch.0.join("snapshot.db");
    let meta = fetch::download(store, &name, &file).await?;
    let opts = retcd::restore::RestoreOptions {
        name: "verify".to_string(),
        data_dir: scratch.0.join("verify.etcd"),
        wal_dir: None,
        initial_cluster: "verify=http://127.0.0.1:2380".to_string(),
        initial_cluster_token: "etcd-backup-verify".to_string(),
        initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".to_string()],
        skip_hash_check: false,
        bump_revision: 0,
        mark_compacted: false,
    };
    let r = tokio::task::spawn_blocking(move || retcd::restore::restore(&file, &opts))
        .await
        .map_err(|e| Error::failed(format!("restore task: {e}")))?
        .map_err(|e| Error::corrupt(format!("archive {name} does not restore: {e}")))?;
    if r.revision != meta.revision {
        return Err(Error::corrupt(format!(
            "archive {name} restores to revision {}, its metadata says {}",
            r.revision, meta.revision
        )));
    }
    store.mark_verified(&name).await?;
    Ok(format!(
        "{name}: OK (revision {}, {} records, {} bytes, sha256 {}, restorable)\n",
        r.revision, r.records, meta.size, meta.sha256
    ))
}
