//! Offline restore (`etcdutl snapshot restore`): builds a fresh data dir for one member of a
//! new cluster from a snapshot file, or from a raw copy of a member's database
//! (`--skip-hash-check`) — retcd's, or etcd's (bbolt, read by `bolt`). The keys, their history since the last compaction, leases and the
//! revision counter come from the source; membership does not: the member and cluster IDs are
//! derived anew from `--initial-cluster` and its token, so a restored member can never talk
//! to the cluster the snapshot was taken from.

use std::path::{Path, PathBuf};

use rocksdb::WriteBatch;

use crate::backend::{Backend, CF_KV, CF_META};
use crate::snapshot::{self, Record};

pub struct RestoreOptions {
    pub name: String,
    pub data_dir: PathBuf,
    pub wal_dir: Option<PathBuf>,
    pub initial_cluster: String,
    pub initial_cluster_token: String,
    pub initial_advertise_peer_urls: Vec<String>,
    pub skip_hash_check: bool,
    /// Added to the restored revision (etcdutl's --bump-revision), so that clients that
    /// cached revisions of the old cluster never see them reused.
    pub bump_revision: i64,
    /// Marks the (bumped) revision as compacted: watches from before it are refused.
    pub mark_compacted: bool,
}

/// What the restore produced.
#[derive(Debug)]
pub struct Restored {
    pub member_id: u64,
    pub cluster_id: u64,
    pub revision: i64,
    pub records: u64,
}

/// Meta records that describe the old cluster and are never carried over.
fn keep_meta(key: &str) -> bool {
    !(matches!(
        key,
        "applied" | "membership" | "member_id" | "cluster_id" | "snapshot_installing"
    ) || key.starts_with("member/"))
}

/// Where a raw copy's RocksDB lives: the path itself, `<path>/member/db` or `<path>/db`.
fn raw_db_dir(p: &Path) -> Option<PathBuf> {
    [p.to_path_buf(), crate::backend::db_path(p), p.join("db")]
        .into_iter()
        .find(|d| d.join("CURRENT").is_file())
}

pub fn restore(source: &Path, o: &RestoreOptions) -> Result<Restored, String> {
    let occupied = std::fs::read_dir(&o.data_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(o.data_dir.exists());
    if occupied {
        return Err(format!(
            "data-dir {:?} not empty or could not be read",
            o.data_dir.display().to_string()
        ));
    }
    if !source.exists() {
        return Err(format!(
            "open {}: no such file or directory",
            source.display()
        ));
    }
    let (member_id, cluster_id, nodes) = crate::server::bootstrap::plan_cluster(
        &o.name,
        &o.initial_cluster,
        &o.initial_cluster_token,
        &o.initial_advertise_peer_urls,
    )?;
    // Refuse what can be refused without reading. A snapshot file is checked while it is
    // copied (its hash before any record is handed out); a failure removes what was made.
    if source.is_dir() {
        if !o.skip_hash_check {
            return Err(format!(
                "{} is a raw database copy without an integrity hash; pass --skip-hash-check to restore from it",
                source.display()
            ));
        }
        if raw_db_dir(source).is_none() && crate::bolt::db_in_dir(source).is_none() {
            return Err(format!(
                "{}: no database found (expected a snapshot file, or a copy of a member's data dir or its member/db directory)",
                source.display()
            ));
        }
    }
    let tmp = o.data_dir.with_extension("restoring");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        let backend = Backend::open(&tmp, o.wal_dir.as_deref(), true).map_err(|e| e.to_string())?;
        let (mut revision, records) = if source.is_dir() {
            match (raw_db_dir(source), crate::bolt::db_in_dir(source)) {
                // A copy of an etcd member's data dir: its database, as etcd's restore reads it.
                (None, Some(db)) => copy_snapshot(&db, true, &backend)?,
                _ => copy_raw(source, &backend)?,
            }
        } else {
            copy_snapshot(source, o.skip_hash_check, &backend)?
        };
        if o.bump_revision > 0 || o.mark_compacted {
            revision += o.bump_revision;
            let mut b = WriteBatch::default();
            backend
                .put_meta(&mut b, "current_rev", &revision)
                .map_err(|e| e.to_string())?;
            if o.mark_compacted {
                backend
                    .put_meta(&mut b, "compact_rev", &revision)
                    .map_err(|e| e.to_string())?;
            }
            backend.write(b, true).map_err(|e| e.to_string())?;
        }
        crate::raft::log_store::seed_applied(&backend, nodes).map_err(|e| e.to_string())?;
        crate::server::bootstrap::persist_ids(&backend, member_id, cluster_id, "restored member")?;
        backend
            .db
            .flush_wal(true)
            .map_err(|e| format!("sync restored database: {e}"))?;
        Ok::<_, String>((revision, records))
    })();
    let (revision, records) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // An empty directory may be there already (as etcd allows); the restored one replaces it.
    let _ = std::fs::remove_dir(&o.data_dir);
    std::fs::rename(&tmp, &o.data_dir)
        .map_err(|e| format!("rename {} to {}: {e}", tmp.display(), o.data_dir.display()))?;
    Ok(Restored {
        member_id,
        cluster_id,
        revision,
        records,
    })
}

struct Writer<'a> {
    backend: &'a Backend,
    batch: WriteBatch,
    records: u64,
    revision: i64,
}

impl Writer<'_> {
    fn put(&mut self, cf: &str, k: &[u8], v: &[u8]) -> Result<(), String> {
        if cf == CF_META {
            let key = String::from_utf8_lossy(k);
            if !keep_meta(&key) {
                return Ok(());
            }
            if key == "current_rev" {
                self.revision = bincode::deserialize(v).unwrap_or(0);
            }
        }
        let h = self.backend.cf(cf).map_err(|e| e.to_string())?;
        self.batch.put_cf(h, k, v);
        self.records += 1;
        if self.batch.size_in_bytes() > 8 << 20 {
            self.backend
                .write(std::mem::take(&mut self.batch), false)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(i64, u64), String> {
        self.backend
            .write(self.batch, true)
            .map_err(|e| e.to_string())?;
        Ok((self.revision, self.records))
    }
}

fn copy_snapshot(source: &Path, skip: bool, backend: &Backend) -> Result<(i64, u64), String> {
    let mut w = Writer {
        backend,
        batch: WriteBatch::default(),
        records: 0,
        revision: 0,
    };
    let summary = snapshot::read(source, skip, |r| match r {
        Record::Kv(k, v) => w.put(CF_KV, &k, &v),
        Record::Meta(k, v) => w.put(CF_META, k.as_bytes(), &v),
    })?;
    let (rev, n) = w.finish()?;
    Ok((rev.max(summary.header.revision), n))
}

fn copy_raw(source: &Path, backend: &Backend) -> Result<(i64, u64), String> {
    let dir = raw_db_dir(source).ok_or_else(|| format!("{}: no database", source.display()))?;
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), &dir, &names, false)
        .map_err(|e| format!("open raw database {}: {e}", dir.display()))?;
    let mut w = Writer {
        backend,
        batch: WriteBatch::default(),
        records: 0,
        revision: 0,
    };
    for cf in [CF_KV, CF_META] {
        let h = db
            .cf_handle(cf)
            .ok_or_else(|| format!("{}: not a retcd database (no {cf})", dir.display()))?;
        for item in db.iterator_cf(h, rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(|e| format!("read {}: {e}", dir.display()))?;
            w.put(cf, &k, &v)?;
        }
    }
    w.finish()
}
