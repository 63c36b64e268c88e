//! The one RocksDB instance a member keeps in `<data-dir>/member/db`, and its column families.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log`   | log index (u64 big-endian) | bincode raft entry |
//! | `raft_state` | `vote`, `committed`, `purged` | bincode |
//! | `kv`         | revision: main (8 bytes BE) + sub (8 bytes BE) | kind byte + mvccpb.KeyValue |
//! | `meta`       | `applied`, `membership`, `current_rev`, `compact_rev`, `member_id`, `cluster_id` | bincode |

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

pub const CF_RAFT_LOG: &str = "raft_log";
pub const CF_RAFT_STATE: &str = "raft_state";
pub const CF_KV: &str = "kv";
pub const CF_META: &str = "meta";
const CFS: [&str; 4] = [CF_RAFT_LOG, CF_RAFT_STATE, CF_KV, CF_META];
/// Write-ahead logs kept for reuse, and how much a new database writes to have the first.
const WAL_RECYCLE: usize = 2;
const WAL_PRIME_MIB: u32 = 20;
const WAL_PRIME_LOGS: u32 = 2;
const WAL_PRIME_MARKER: &str = "wal-prime";

/// Options of a column family. Memtables take memory in arena blocks; RocksDB's default
/// block (1 MiB here) would count as "in use" for the backend quota as soon as one small write
/// lands in a family, so small quotas would trip early. 64 KiB keeps the estimate close to the
/// data.
///
/// Memtable sizes bound the memory RocksDB holds for writes not yet flushed (up to two per
/// family: the one filling and the one flushing). RocksDB's default, 64 MiB per family, let a
/// member hold ~130 MiB of memtables after 200k puts — raft entries and their MVCC records
/// both — more than the key index and the rest of the member together. The raft log is read
/// back only by lagging followers (recent entries come from the in-memory tail) and purged in
/// ranges; `meta` and `raft_state` hold a few keys rewritten at every apply and append, whose
/// memtables would otherwise fill with superseded versions.
fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    o.set_arena_block_size(64 << 10);
    let mib = match name {
        CF_KV => 16,
        CF_RAFT_LOG => 8,
        _ => 1,
    };
    o.set_write_buffer_size(mib << 20);
    o
}

/// Where the database of a data dir lives.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("db")
}

/// Files an etcd member keeps in `data_dir` (its bbolt database, its write-ahead log
/// segments, also in a dedicated `wal_dir`), which this implementation cannot read.
pub fn etcd_member_files(data_dir: &Path, wal_dir: Option<&Path>) -> Vec<PathBuf> {
    let member = data_dir.join("member");
    let mut found = Vec::new();
    let bolt = member.join("snap").join("db");
    if bolt.is_file() {
        found.push(bolt);
    }
    for dir in std::iter::once(member.join("wal")).chain(wal_dir.map(Path::to_path_buf)) {
        let has_segments = std::fs::read_dir(&dir).is_ok_and(|mut it| {
            it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".wal")))
        });
        if has_segments {
            found.push(dir);
        }
    }
    found
}

/// Errors from the backend carry what failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("rocksdb: {context}: {source}")]
    Rocks {
        context: String,
        source: rocksdb::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, BackendError>;

pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, rocksdb::Error> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|source| BackendError::Rocks {
            context: what.to_string(),
            source,
        })
    }
}

/// RocksDB's answer when another process holds the database's `LOCK` file.
fn is_lock_held(e: &rocksdb::Error) -> bool {
    let m = e.to_string();
    m.contains("LOCK") && (m.contains("temporarily unavailable") || m.contains("lock hold"))
}

pub struct Backend {
    pub db: DB,
    /// fsync raft log writes (false only with --unsafe-no-fsync).
    pub sync: bool,
    pub path: PathBuf,
}

impl Backend {
    /// Opens (creating if needed) the database of `data_dir`. With `wal_dir`, RocksDB's
    /// write-ahead log lives there (etcd's --wal-dir).
    pub fn open(data_dir: &Path, wal_dir: Option<&Path>, sync: bool) -> Result<Backend> {
        let path = db_path(data_dir);
        std::fs::create_dir_all(&path).map_err(|e| {
            BackendError::Other(format!("cannot create data dir {}: {e}", path.display()))
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(3);
        if let Some(w) = wal_dir {
            std::fs::create_dir_all(w).map_err(|e| {
                BackendError::Other(format!("cannot create wal dir {}: {e}", w.display()))
            })?;
            opts.set_wal_dir(w);
        }
        // Write-ahead logs are reused rather than created: see `prime_wal`.
        opts.set_recycle_log_file_num(WAL_RECYCLE);
        let fresh = !path.join("CURRENT").exists();
        let cfs = CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n)));
        let db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(|e| {
            if is_lock_held(&e) {
                BackendError::Other(format!(
                    "database {} is in use by another process (is another member running \
                     with this data dir?): {e}",
                    path.display()
                ))
            } else {
                BackendError::Rocks {
                    context: format!("open database {}", path.display()),
                    source: e,
                }
            }
        })?;
        let backend = Backend { db, sync, path };
        if fresh && sync {
            backend.prime_wal()?;
        }
        Ok(backend)
    }

    /// Every acknowledged write waits for an fdatasync of RocksDB's write-ahead log. A log
    /// that grows makes each of those also write the file's inode (its size changed); a log
    /// reused in place (`recycle_log_file_num`) is overwritten within its old size, so the
    /// sync writes data only — what etcd gets from its preallocated 64 MB WAL segments. A new
    /// database has no log to reuse yet: this twice writes 20 MiB of log-only records
    /// (RocksDB's `LogData`: in the log, never in a memtable, so they cost no memory) and a
    /// marker key (then its deletion), and flushes, which switches to another log and keeps
    /// the old one for reuse: the log in use and the one kept are both full-size. Later logs
    /// are recycled as they retire.
    ///
    /// RocksDB cuts a log back to what was written into it when it retires it, and freeing
    /// blocks stalls every fsync on the file system meanwhile (a cut from 64 MiB took
    /// 70-135 ms while raft appends waited). 20 MiB is about what one log takes before the
    /// raft log's 8 MiB memtable switches it (raft entries and their MVCC records, ~17 MB),
    /// so a retiring log loses little.
    fn prime_wal(&self) -> Result<()> {
        let cf = self
            .db
            .cf_handle("default")
            .ok_or_else(|| BackendError::Other("column family default missing".into()))?;
        let chunk = vec![0u8; 1 << 20];
        for round in 0..WAL_PRIME_LOGS {
            for _ in 0..WAL_PRIME_MIB {
                let mut b = WriteBatch::default();
                b.put_log_data(&chunk);
                self.db.write(b).ctx("prime the write-ahead log")?;
            }
            // The flush needs something to flush before it switches logs: the marker, then
            // its deletion.
            let mut b = WriteBatch::default();
            if round == 0 {
                b.put_cf(cf, WAL_PRIME_MARKER, b"");
            } else {
                b.delete_cf(cf, WAL_PRIME_MARKER);
            }
            self.db.write(b).ctx("prime the write-ahead log")?;
            self.db.flush_wal(true).ctx("prime the write-ahead log")?;
            self.db.flush_cf(cf).ctx("prime the write-ahead log")?;
        }
        self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    pub fn cf(&self, name: &str) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| BackendError::Other(format!("column family {name} missing")))
    }

    /// Writes `batch`; `durable` asks for an fsync (skipped with --unsafe-no-fsync).
    pub fn write(&self, batch: WriteBatch, durable: bool) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(durable && self.sync);
        self.db.write_opt(batch, &wo).ctx("write batch")
    }

    pub fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let cf = self.cf(CF_META)?;
        match self.db.get_cf(cf, key).ctx("read meta")? {
            None => Ok(None),
            Some(b) => bincode::deserialize(&b)
                .map(Some)
                .map_err(|e| BackendError::Other(format!("corrupt meta record {key}: {e}"))),
        }
    }

    pub fn put_meta<T: serde::Serialize>(
        &self,
        batch: &mut WriteBatch,
        key: &str,
        v: &T,
    ) -> Result<()> {
        let b = bincode::serialize(v)
            .map_err(|e| BackendError::Other(format!("encode meta record {key}: {e}")))?;
        batch.put_cf(self.cf(CF_META)?, key, b);
        Ok(())
    }

    /// Every meta record whose key starts with `prefix`.
    pub fn meta_with_prefix<T: serde::de::DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let cf = self.cf(CF_META)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            cf,
            rocksdb::IteratorMode::From(prefix.as_bytes(), rocksdb::Direction::Forward),
        ) {
            let (k, v) = item.ctx("scan meta")?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            out.push(bincode::deserialize(&v).map_err(|e| {
                BackendError::Other(format!(
                    "corrupt meta record {}: {e}",
                    String::from_utf8_lossy(&k)
                ))
            })?);
        }
        Ok(out)
    }

    /// Bytes the database's files occupy on disk, its write-ahead logs left out — as etcd's
    /// dbSize is its bbolt file, not its WAL (ours are recycled at a fixed size, see
    /// `prime_wal`).
    pub fn size_on_disk(&self) -> u64 {
        dir_size(&self.path)
    }

    /// Rewrites every column family's files, dropping deleted and overwritten data (etcd's
    /// defragmentation). RocksDB compacts in the background of its own locks: reads and
    /// writes go on meanwhile.
    pub fn compact_all(&self) -> Result<()> {
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for name in CFS {
            let cf = self.cf(name)?;
            self.db
                .compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    /// Bytes of live data (SST files plus memtables), RocksDB's estimate.
    pub fn size_in_use(&self) -> u64 {
        let p = |name: &str| {
            CFS.iter()
                .filter_map(|cf| self.db.cf_handle(cf))
                .filter_map(|h| self.db.property_int_value_cf(h, name).ok().flatten())
                .sum::<u64>()
        };
        p("rocksdb.live-sst-files-size") + p("rocksdb.cur-size-all-mem-tables")
    }
}

/// Bytes of the files in `p`, RocksDB's write-ahead logs (`NNNNNN.log`) left out.
fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".log"))
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Meta key present while a received snapshot is being copied in.
pub const INSTALLING_MARKER: &str = "snapshot_installing";
/// Meta keys that belong to this member and are never copied from a peer's snapshot.
const LOCAL_META: [&str; 2] = ["member_id", INSTALLING_MARKER];

impl Backend {
    /// Takes a point-in-time checkpoint (hard links) of the whole database into `dir`.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| BackendError::Other(format!("create {}: {e}", parent.display())))?;
        }
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).ctx("start checkpoint")?;
        cp.create_checkpoint(dir)
            .ctx(&format!("create checkpoint {}", dir.display()))
    }

    /// Replaces this member's KV and meta state with a peer's checkpoint in `dir`, copying in
    /// bounded batches. A crash midway leaves the install marker, which `check_installing`
    /// reports at the next start.
    pub fn install_checkpoint(&self, dir: &Path) -> Result<()> {
        let opts = Options::default();
        let snap = DB::open_cf_for_read_only(&opts, dir, CFS, false)
            .ctx(&format!("open received snapshot {}", dir.display()))?;
        let kv = self.cf(CF_KV)?;
        let meta = self.cf(CF_META)?;
        let mut b = WriteBatch::default();
        self.put_meta(&mut b, INSTALLING_MARKER, &true)?;
        self.write(b, true)?;

        let mut b = WriteBatch::default();
        b.delete_range_cf(kv, &[0u8; 0][..], &[0xffu8; 17][..]);
        for item in self.db.iterator_cf(meta, rocksdb::IteratorMode::Start) {
            let (k, _) = item.ctx("scan meta")?;
            let name = String::from_utf8_lossy(&k);
            if !LOCAL_META.contains(&name.as_ref()) {
                b.delete_cf(meta, &k);
            }
        }
        self.write(b, false)?;

        for (from_cf, to_cf) in [(CF_KV, kv), (CF_META, meta)] {
            let src = snap
                .cf_handle(from_cf)
                .ok_or_else(|| BackendError::Other(format!("snapshot lacks {from_cf}")))?;
            let mut b = WriteBatch::default();
            for item in snap.iterator_cf(src, rocksdb::IteratorMode::Start) {
                let (k, v) = item.ctx("read snapshot")?;
                if from_cf == CF_META && LOCAL_META.contains(&String::from_utf8_lossy(&k).as_ref())
                {
                    continue;
                }
                b.put_cf(to_cf, &k, &v);
                if b.size_in_bytes() > 8 * 1024 * 1024 {
                    self.write(std::mem::take(&mut b), false)?;
                }
            }
            self.write(b, false)?;
        }
        let mut b = WriteBatch::default();
        b.delete_cf(meta, INSTALLING_MARKER);
        self.write(b, true)?;
        self.db
            .flush_wal(true)
            .ctx("sync WAL after snapshot install")
    }

    /// Fails when a snapshot install was interrupted: the state is partial.
    pub fn check_installing(&self) -> Result<()> {
        if self.get_meta::<bool>(INSTALLING_MARKER)?.unwrap_or(false) {
            return Err(BackendError::Other(format!(
                "{}: a snapshot from the leader was being installed when this member stopped, so its data is incomplete; remove the member (etcdctl member remove), wipe this data dir and add it again",
                self.path.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
