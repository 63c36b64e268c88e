//! The snapshot file: what `Maintenance.Snapshot` streams, `etcdctl snapshot save` stores and
//! `etcdutl snapshot restore` rebuilds a member from. Format in docs/snapshot-format.md:
//!
//! ```text
//! header   "retcd snapshot\n\0" (16) | version u32 | revision i64 | compact revision i64
//!          | cluster ID u64 | member ID u64                      (all big-endian)
//! records  tag u8 (1 kv, 2 meta) | key length u32 | key | value length u32 | value
//! end      tag 0 | record count u64
//! padding  zeros up to a multiple of 512 bytes
//! hash     sha256 of everything before it (32 bytes)
//! ```
//!
//! So `size % 512 == 32` holds, the rule etcd uses to tell a hashed snapshot from a raw copy.
//! The records are taken from one RocksDB snapshot (a consistent point in time) and streamed
//! in chunks, so taking a snapshot never blocks writes and memory stays bounded.

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::backend::{Backend, CF_KV, CF_META};

pub const MAGIC: &[u8; 16] = b"retcd snapshot\n\0";

/// What parsing a retcd header answers for the start of an etcd (bbolt) file.
const BOLT_FILE: &str = "an etcd (bbolt) snapshot, not a retcd one";

/// The format version this build writes; it reads every version up to this one.
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 16 + 4 + 8 + 8 + 8 + 8;
pub const TAG_END: u8 = 0;
pub const TAG_KV: u8 = 1;
pub const TAG_META: u8 = 2;
/// Bytes per streamed chunk.
pub const CHUNK: usize = 64 * 1024;

/// Meta records that describe the member that took the snapshot, never its data.
const MEMBER_LOCAL_META: [&str; 2] = ["member_id", crate::backend::INSTALLING_MARKER];

/// What a snapshot's header says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub revision: i64,
    pub compact_revision: i64,
    pub cluster_id: u64,
    pub member_id: u64,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.revision.to_be_bytes());
        b.extend_from_slice(&self.compact_revision.to_be_bytes());
        b.extend_from_slice(&self.cluster_id.to_be_bytes());
        b.extend_from_slice(&self.member_id.to_be_bytes());
        b
    }

    /// The header at the start of a snapshot (its first [`HEADER_LEN`] bytes).
    pub fn parse(b: &[u8]) -> Result<Header, String> {
        let h: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or("snapshot too short for its header")?;
        Header::decode(h)
    }

    fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
        if &b[..16] != MAGIC {
            // A bbolt file starts with its meta page: a 16-byte page header, then the magic.
            if b[16..20] == crate::bolt::MAGIC.to_le_bytes() {
                return Err(BOLT_FILE.into());
            }
            return Err("not a retcd snapshot (bad magic)".into());
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let mut v = [0u8; 4];
        v.copy_from_slice(&b[16..20]);
        let h = Header {
            version: u32::from_be_bytes(v),
            revision: u64_at(20) as i64,
            compact_revision: u64_at(28) as i64,
            cluster_id: u64_at(36),
            member_id: u64_at(44),
        };
        if h.version == 0 || h.version > VERSION {
            return Err(format!(
                "snapshot format version {} is newer than this retcd understands ({VERSION}); restore it with a newer etcdutl",
                h.version
            ));
        }
        Ok(h)
    }
}

fn record(out: &mut Vec<u8>, tag: u8, k: &[u8], v: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(k.len() as u32).to_be_bytes());
    out.extend_from_slice(k);
    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
    out.extend_from_slice(v);
}

/// Writes the snapshot of `backend` as chunks of about [`CHUNK`] bytes to `send`, which
/// returns false when the receiver is gone (the snapshot is then abandoned). Blocking: run it
/// on a blocking thread.
pub fn write(
    backend: &Backend,
    cluster_id: u64,
    member_id: u64,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), String> {
    let snap = backend.db.snapshot();
    let meta_cf = backend.cf(CF_META).map_err(|e| e.to_string())?;
    let kv_cf = backend.cf(CF_KV).map_err(|e| e.to_string())?;
    let meta_i64 = |k: &str| -> Result<i64, String> {
        Ok(snap
            .get_cf(meta_cf, k)
            .map_err(|e| format!("read {k}: {e}"))?
            .and_then(|b| bincode::deserialize::<i64>(&b).ok())
            .unwrap_or(0))
    };
    let header = Header {
        version: VERSION,
        revision: meta_i64("current_rev")?,
        compact_revision: meta_i64("compact_rev")?,
        cluster_id,
        member_id,
    };
    let mut hasher = Sha256::new();
    let mut buf = header.encode();
    let mut total = 0u64;
    let mut count = 0u64;
    let mut flush = |buf: &mut Vec<u8>, hasher: &mut Sha256, total: &mut u64| -> bool {
        hasher.update(&buf[..]);
        *total += buf.len() as u64;
        send(std::mem::take(buf))
    };
    for (tag, cf) in [(TAG_KV, kv_cf), (TAG_META, meta_cf)] {
        for item in snap.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(|e| format!("read snapshot: {e}"))?;
            if tag == TAG_META && MEMBER_LOCAL_META.contains(&String::from_utf8_lossy(&k).as_ref())
            {
                continue;
            }
            record(&mut buf, tag, &k, &v);
            count += 1;
            if buf.len() >= CHUNK && !flush(&mut buf, &mut hasher, &mut total) {
                return Err("snapshot receiver went away".into());
            }
        }
    }
    buf.push(TAG_END);
    buf.extend_from_slice(&count.to_be_bytes());
    let body = total + buf.len() as u64;
    let pad = (512 - body % 512) % 512;
    buf.resize(buf.len() + pad as usize, 0);
    hasher.update(&buf[..]);
    buf.extend_from_slice(&hasher.finalize());
    if !send(buf) {
        return Err("snapshot receiver went away".into());
    }
    Ok(())
}

/// One record of a snapshot.
pub enum Record {
    Kv(Vec<u8>, Vec<u8>),
    Meta(String, Vec<u8>),
}

/// What reading a whole snapshot file found. For an etcd (bbolt) file: the values etcd's
/// `snapshot status` shows (every bucket's keys, its hash, bbolt's size); header version 0.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub header: Header,
    /// Records in the file (KV revisions plus metadata).
    pub records: u64,
    /// CRC-32C over the KV records' keys and values.
    pub kv_crc: u32,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Reads `path`, checking its sha256 trailer (unless `skip_hash_check`), its header and every
/// record, and hands each record to `each`. Nothing is handed out from a file whose hash does
/// not match: the hash is checked in a first pass. An etcd snapshot or database (bbolt) is
/// read through [`crate::bolt`], its data handed out as the same records.
pub fn read(
    path: &Path,
    skip_hash_check: bool,
    mut each: impl FnMut(Record) -> Result<(), String>,
) -> Result<Summary, String> {
    let open =
        || std::fs::File::open(path).map_err(|e| format!("open snapshot {}: {e}", path.display()));
    let size = open()?
        .metadata()
        .map_err(|e| format!("stat {}: {e}", path.display()))?
        .len();
    let has_hash = size % 512 == 32;
    let mut sha = [0u8; 32];
    if has_hash {
        let mut f = BufReader::with_capacity(1 << 20, open()?);
        let mut hasher = Sha256::new();
        let mut left = size - 32;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let n = (left as usize).min(buf.len());
            f.read_exact(&mut buf[..n])
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        f.read_exact(&mut sha)
            .map_err(|e| format!("read {}: {e}", path.display()))?;
        let got: [u8; 32] = hasher.finalize().into();
        if got != sha && !skip_hash_check {
            return Err(format!(
                "expected sha256 {}, got {} (the snapshot file is damaged; take a new one, or pass --skip-hash-check to use it anyway)",
                hex(&sha),
                hex(&got)
            ));
        }
    } else if !skip_hash_check {
        return Err("snapshot missing hash but --skip-hash-check=false".into());
    }
    if crate::bolt::is_bolt(path) {
        // etcd's snapshot (or an etcd member's database): read as etcd's tools read it.
        let b = crate::bolt::read(path, each)?;
        return Ok(Summary {
            header: Header {
                version: 0,
                revision: b.revision,
                compact_revision: b.compact_revision,
                cluster_id: 0,
                member_id: 0,
            },
            records: b.total_keys,
            kv_crc: b.hash,
            size: b.total_size,
            sha256: sha,
        });
    }
    let mut f = BufReader::with_capacity(1 << 20, open()?);
    let mut hb = [0u8; HEADER_LEN];
    f.read_exact(&mut hb)
        .map_err(|_| format!("{}: not a retcd snapshot (too short)", path.display()))?;
    let header = Header::decode(&hb).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut crc = Crc32c::default();
    let mut records = 0u64;
    let damaged = |what: &str| format!("{}: damaged snapshot ({what})", path.display());
    let read_len = |f: &mut BufReader<std::fs::File>| -> Result<usize, String> {
        let mut l = [0u8; 4];
        f.read_exact(&mut l)
            .map_err(|_| damaged("truncated record"))?;
        Ok(u32::from_be_bytes(l) as usize)
    };
    loop {
        let mut tag = [0u8; 1];
        f.read_exact(&mut tag)
            .map_err(|_| damaged("no end record"))?;
        if tag[0] == TAG_END {
            let mut c = [0u8; 8];
            f.read_exact(&mut c)
                .map_err(|_| damaged("truncated end record"))?;
            if u64::from_be_bytes(c) != records {
                return Err(damaged("record count does not match"));
            }
            break;
        }
        let kl = read_len(&mut f)?;
        let mut k = vec![0u8; kl];
        f.read_exact(&mut k).map_err(|_| damaged("truncated key"))?;
        let vl = read_len(&mut f)?;
        let mut v = vec![0u8; vl];
        f.read_exact(&mut v)
            .map_err(|_| damaged("truncated value"))?;
        records += 1;
        match tag[0] {
            TAG_KV => {
                crc.update(&k);
                crc.update(&v);
                each(Record::Kv(k, v))?;
            }
            TAG_META => each(Record::Meta(String::from_utf8_lossy(&k).into_owned(), v))?,
            other => return Err(damaged(&format!("unknown record tag {other}"))),
        }
    }
    Ok(Summary {
        header,
        records,
        kv_crc: crc.finish(),
        size,
        sha256: sha,
    })
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// CRC-32C (Castagnoli), the checksum etcd's snapshot status shows.
#[derive(Default, Clone, Copy)]
pub struct Crc32c(u32);

impl Crc32c {
    const POLY: u32 = 0x82f6_3b78;
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ Self::POLY
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };

    pub fn update(&mut self, data: &[u8]) {
        let mut c = !self.0;
        for &b in data {
            c = Self::TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = !c;
    }

    pub fn finish(&self) -> u32 {
        self.0
    }
}

/// Writes a whole snapshot of `backend` to `w` (used by tests and tools on a stopped member).
pub fn write_to(backend: &Backend, w: &mut impl Write) -> Result<(), String> {
    let mut err = None;
    write(backend, 0, 0, |chunk| match w.write_all(&chunk) {
        Ok(()) => true,
        Err(e) => {
            err = Some(e.to_string());
            false
        }
    })?;
    err.map_or(Ok(()), Err)
}

/// Streams a snapshot of `backend` through a bounded channel from a blocking thread.
pub fn stream(
    backend: Arc<Backend>,
    cluster_id: u64,
    member_id: u64,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let r = write(&backend, cluster_id, member_id, |chunk| {
            tx.blocking_send(Ok(chunk)).is_ok()
        });
        if let Err(e) = r {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        let mut c = Crc32c::default();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xe306_9283);
    }
}
