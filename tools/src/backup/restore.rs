//! `etcd-backup restore` and `restore-cluster`: fetch and check an archive, then restore it as
//! etcdutl does (one member's data dir, or every member's data dir and env file at once), so a
//! quorum-lost cluster comes back from S3 in one command.

use std::path::{Path, PathBuf};

use super::store::Store;
use super::{fetch, Error, Settings};

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub async fn single(s: &Settings, store: &Store) -> Result<String, Error> {
    let arg = s.archive_arg("restore")?;
    let name = s.get("name");
    let data_dir = match s.get("data-dir") {
        d if d.is_empty() => PathBuf::from(format!("{name}.etcd")),
        d => PathBuf::from(d),
    };
    if data_dir.exists() {
        return Err(Error::usage(format!(
            "data dir {} already exists; restore makes a new one (move the old one away first)",
            data_dir.display()
        )));
    }
    let bump = s.number("bump-revision")? as i64;
    if bump > 0 && !s.bool("mark-compacted") {
        return Err(Error::usage(
            "--mark-compacted required if --bump-revision > 0",
        ));
    }
    let archive = store.resolve(arg.as_deref()).await?;
    // The download goes next to the data dir: same file system, and no small /tmp to fill.
    let parent = parent_of(&data_dir);
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::failed(format!("create {}: {e}", parent.display())))?;
    let scratch = fetch::Scratch::new(&s.tmp_dir(&parent), "restore")?;
    let file = scratch.0.join("snapshot.db");
    fetch::download(store, &archive, &file).await?;
    let wal_dir = s.get("wal-dir");
    let opts = retcd::restore::RestoreOptions {
        name,
        data_dir: data_dir.clone(),
        wal_dir: (!wal_dir.is_empty()).then(|| PathBuf::from(wal_dir)),
        initial_cluster: s.get("initial-cluster"),
        initial_cluster_token: s.get("initial-cluster-token"),
        initial_advertise_peer_urls: s
            .get("initial-advertise-peer-urls")
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        // The archive's sha256 was checked on download; the snapshot's own hash still is.
        skip_hash_check: s.bool("skip-hash-check"),
        bump_revision: bump,
        mark_compacted: s.bool("mark-compacted"),
    };
    let r = tokio::task::spawn_blocking(move || retcd::restore::restore(&file, &opts))
        .await
        .map_err(|e| Error::failed(format!("restore task: {e}")))?
        .map_err(Error::failed)?;
    Ok(format!(
        "restored {} into {}: member {:x}, cluster {:x}, revision {}\n",
        store.url(&archive),
        data_dir.display(),
        r.member_id,
        r.cluster_id,
        r.revision
    ))
}

pub async fn cluster(s: &Settings, store: &Store) -> Result<String, Error> {
    let arg = s.archive_arg("restore-cluster")?;
    let out = s.get("output-dir");
    if out.is_empty() {
        return Err(Error::usage(
            "restore-cluster needs --output-dir DIR (one data dir and env file per member go there)",
        ));
    }
    if s.get("initial-cluster").is_empty() {
        return Err(Error::usage(
            "restore-cluster needs --initial-cluster name=peerURL,... for every member of the new cluster",
        ));
    }
    let archive = store.resolve(arg.as_deref()).await?;
    std::fs::create_dir_all(&out).map_err(|e| Error::failed(format!("create {out}: {e}")))?;
    let scratch = fetch::Scratch::new(&s.tmp_dir(Path::new(&out)), "restore")?;
    let file = scratch.0.join("snapshot.db");
    fetch::download(store, &archive, &file).await?;
    let (ic, token, label) = (
        s.get("initial-cluster"),
        s.get("initial-cluster-token"),
        store.url(&archive),
    );
    tokio::task::spawn_blocking(move || {
        crate::etcdutl::restore_cluster_files(
            &file.display().to_string(),
            &label,
            &ic,
            &token,
            &out,
            false,
        )
    })
    .await
    .map_err(|e| Error::failed(format!("restore task: {e}")))?
    .map_err(|f| {
        if f.code == crate::client::EXIT_BAD_ARGS {
            Error::usage(f.message)
        } else {
            Error::failed(f.message)
        }
    })
}
