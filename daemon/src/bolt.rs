//! etcd's database files, read-only: an etcd snapshot (`etcdctl snapshot save` against etcd)
//! or an etcd member's `member/snap/db` is a bbolt database (plus a sha256 trailer for a
//! snapshot). `etcdutl snapshot status|restore` read it through here, so etcd's data comes
//! over into a retcd member with its revisions, history, leases, users and roles.
//!
//! bbolt's layout, as far as reading needs it (integers little-endian):
//!
//! ```text
//! page       id u64 | flags u16 | count u16 | overflow u32 | data ...   (1 + overflow pages)
//! meta       (pages 0 and 1) magic u32 | version u32 | page size u32 | flags u32
//!            | root bucket: root page u64, sequence u64 | freelist u64 | page count u64
//!            | txid u64 | checksum u64 (FNV-1a 64 of the fields before it)
//! branch     elements: pos u32 | key size u32 | child page u64    (key at element + pos)
//! leaf       elements: flags u32 | pos u32 | key size u32 | value size u32
//! bucket     a leaf value flagged 1: root page u64 | sequence u64, then, when the root is
//!            0, the bucket's one page inline
//! ```
//!
//! etcd's buckets: `key` (revision `main_sub` big-endian, `t` appended for a deletion →
//! mvccpb.KeyValue), `meta` (compaction revisions), `lease` (leasepb.Lease), `auth`,
//! `authUsers`, `authRoles` (authpb), and membership (`members`, `cluster`, ...), which a
//! restore never carries over.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use prost::Message;

use crate::api::authpb;
use crate::api::mvccpb::KeyValue;
use crate::mvcc::Revision;
use crate::snapshot::{Crc32c, Record};

/// bbolt's magic number, in each meta page.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const BUCKET_LEAF: u32 = 0x01;
/// Deeper than any real tree: a cycle in a damaged file ends here.
const MAX_DEPTH: usize = 64;

/// What a tree walk hands each key and value to (with the leaf element's flags).
type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8], u32) -> Result<(), String>;

/// A top-level bucket: its name and its leaf value (header, and the page when inline).
type Bucket = (Vec<u8>, Vec<u8>);

/// Whether `path` is a bbolt file (etcd's database or snapshot): one of its two meta pages
/// (the first page, and the second at a usual page size) carries bbolt's magic.
pub fn is_bolt(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    [0u64, 4096, 16384].into_iter().any(|off| {
        let mut b = [0u8; 20];
        f.read_exact_at(&mut b, off).is_ok() && b[16..20] == MAGIC.to_le_bytes()
    })
}

/// Where an etcd member's database is inside a copy of its data dir, if there is one.
pub fn db_in_dir(dir: &Path) -> Option<std::path::PathBuf> {
    [dir.join("member/snap/db"), dir.join("snap/db")]
        .into_iter()
        .find(|p| p.is_file() && is_bolt(p))
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

struct Meta {
    page_size: usize,
    root: u64,
    pages: u64,
    txid: u64,
}

/// The meta page at the start of `page` (None if it is not a valid one).
fn parse_meta(page: &[u8]) -> Option<Meta> {
    let m = page.get(PAGE_HEADER..PAGE_HEADER + 64)?;
    if u32_at(m, 0)? != MAGIC || u32_at(m, 4)? != VERSION {
        return None;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &m[..56] {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if h != u64_at(m, 56)? {
        return None;
    }
    let page_size = u32_at(m, 8)? as usize;
    if !(512..=1 << 20).contains(&page_size) {
        return None;
    }
    Some(Meta {
        page_size,
        root: u64_at(m, 16)?,
        pages: u64_at(m, 40)?,
        txid: u64_at(m, 48)?,
    })
}

/// An open bbolt file, read page by page (memory stays bounded whatever its size).
pub struct Bolt {
    file: File,
    name: String,
    len: u64,
    page_size: usize,
    root: u64,
    pages: u64,
    /// Pages read so far: a valid file's trees reach each page once, a damaged one's may loop.
    reads: std::cell::Cell<u64>,
}

impl Bolt {
    pub fn open(path: &Path) -> Result<Bolt, String> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("open {name}: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("stat {name}: {e}"))?
            .len();
        let read = |off: u64, n: usize| -> Option<Vec<u8>> {
            let mut b = vec![0u8; n];
            file.read_exact_at(&mut b, off).ok().map(|_| b)
        };
        let first = read(0, 4096).or_else(|| read(0, 512));
        let m0 = first.as_deref().and_then(parse_meta);
        // The second meta page sits one page in; its size comes from the first, or is guessed.
        let m1 = [m0.as_ref().map(|m| m.page_size), Some(4096), Some(16384)]
            .into_iter()
            .flatten()
            .find_map(|ps| {
                read(ps as u64, 4096.min(ps))
                    .as_deref()
                    .and_then(parse_meta)
            });
        let meta = match (m0, m1) {
            (Some(a), Some(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) => {
                return Err(format!(
                    "{name}: not a valid etcd database (its bbolt meta pages are damaged)"
                ))
            }
        };
        let bolt = Bolt {
            file,
            name,
            len,
            page_size: meta.page_size,
            root: meta.root,
            pages: meta.pages,
            reads: std::cell::Cell::new(0),
        };
        if bolt.size() > len {
            return Err(format!(
                "{}: truncated etcd database ({} bytes, its pages need {})",
                bolt.name,
                len,
                bolt.size()
            ));
        }
        Ok(bolt)
    }

    /// The database's size as bbolt reports it (pages in use × page size).
    pub fn size(&self) -> u64 {
        self.pages.saturating_mul(self.page_size as u64)
    }

    fn damaged(&self, what: &str) -> String {
        format!("{}: damaged etcd database ({what})", self.name)
    }

    /// Page `id` with its overflow pages.
    fn page(&self, id: u64) -> Result<Vec<u8>, String> {
        if id < 2 || id >= self.pages {
            return Err(self.damaged(&format!("page {id} out of range")));
        }
        self.reads.set(self.reads.get() + 1);
        if self.reads.get() > self.pages {
            return Err(self.damaged("pages reached more than once"));
        }
        let off = id * self.page_size as u64;
        let mut head = [0u8; PAGE_HEADER];
        self.file
            .read_exact_at(&mut head, off)
            .map_err(|e| format!("read {}: {e}", self.name))?;
        let overflow = u64::from(u32_at(&head, 12).unwrap_or(0));
        let n = (1 + overflow) * self.page_size as u64;
        if off + n > self.len {
            return Err(self.damaged(&format!("page {id} runs past the end of the file")));
        }
        let mut b = vec![0u8; n as usize];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| format!("read {}: {e}", self.name))?;
        Ok(b)
    }

    /// Every key and value of the tree in `page` (a whole page buffer), in key order; `f`
    /// gets the leaf flags too.
    fn walk(&self, page: &[u8], depth: usize, f: Visit<'_>) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.damaged("tree too deep"));
        }
        let flags = u16_at(page, 8).ok_or_else(|| self.damaged("short page"))?;
        let count = usize::from(u16_at(page, 10).ok_or_else(|| self.damaged("short page"))?);
        for i in 0..count {
            let e = PAGE_HEADER + i * ELEMENT;
            let bad = || self.damaged("element out of its page");
            if flags & LEAF_PAGE != 0 {
                let lflags = u32_at(page, e).ok_or_else(bad)?;
                let pos = u32_at(page, e + 4).ok_or_else(bad)? as usize;
                let ks = u32_at(page, e + 8).ok_or_else(bad)? as usize;
                let vs = u32_at(page, e + 12).ok_or_else(bad)? as usize;
                let k0 = e + pos;
                let k = page.get(k0..k0 + ks).ok_or_else(bad)?;
                let v = page.get(k0 + ks..k0 + ks + vs).ok_or_else(bad)?;
                f(k, v, lflags)?;
            } else if flags & BRANCH_PAGE != 0 {
                let child = u64_at(page, e + 8).ok_or_else(bad)?;
                let child = self.page(child)?;
                self.walk(&child, depth + 1, f)?;
            } else {
                return Err(self.damaged(&format!("unexpected page type {flags:#x}")));
            }
        }
        Ok(())
    }

    /// Every key and value of the bucket whose leaf value is `bucket`.
    fn walk_bucket(&self, bucket: &[u8], f: Visit<'_>) -> Result<(), String> {
        let root = u64_at(bucket, 0).ok_or_else(|| self.damaged("short bucket header"))?;
        if root == 0 {
            // An inline bucket: its one page follows the header.
            let page = bucket
                .get(16..)
                .ok_or_else(|| self.damaged("short inline bucket"))?;
            return self.walk(page, 0, f);
        }
        let page = self.page(root)?;
        self.walk(&page, 0, f)
    }

    /// The top-level buckets, by name (in bbolt's order: bytewise).
    pub fn buckets(&self) -> Result<Vec<Bucket>, String> {
        let mut out = Vec::new();
        let root = self.page(self.root)?;
        self.walk(&root, 0, &mut |k, v, flags| {
            if flags & BUCKET_LEAF != 0 {
                out.push((k.to_vec(), v.to_vec()));
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// etcd's `Lease` as its `lease` bucket stores it.
#[derive(Clone, PartialEq, Message)]
struct StoredLease {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(int64, tag = "2")]
    ttl: i64,
    #[prost(int64, tag = "3")]
    remaining_ttl: i64,
}

/// A revision as etcd's `key` bucket spells it: main, `_`, sub (big-endian), and `t` for a
/// deletion.
fn etcd_revision(k: &[u8]) -> Option<(Revision, bool)> {
    if !(k.len() == 17 || (k.len() == 18 && k[17] == b't')) || k[8] != b'_' {
        return None;
    }
    let main = u64::from_be_bytes(k[..8].try_into().ok()?) as i64;
    let sub = u64::from_be_bytes(k[9..17].try_into().ok()?) as i64;
    Some((Revision { main, sub }, k.len() == 18))
}

/// What etcd's `snapshot status` shows for a database, and what reading it handed out.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// CRC-32C over every bucket's name and its keys and values, as etcd's status computes it.
    pub hash: u32,
    /// The newest revision in the `key` bucket.
    pub revision: i64,
    pub compact_revision: i64,
    /// Keys in all buckets.
    pub total_keys: u64,
    pub total_size: u64,
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).unwrap_or_default()
}

/// Reads etcd's database at `path`: the values etcd's `snapshot status` shows, and each of
/// its revisions, leases, users, roles and auth settings handed to `each` as the records of
/// a retcd snapshot would carry them (the same column families and encodings). Membership is
/// not handed out: a restore makes its own.
pub fn read(
    path: &Path,
    mut each: impl FnMut(Record) -> Result<(), String>,
) -> Result<Summary, String> {
    let db = Bolt::open(path)?;
    let mut crc = Crc32c::default();
    let mut s = Summary {
        total_size: db.size(),
        ..Summary::default()
    };
    let (mut finished, mut scheduled) = (0i64, 0i64);
    for (name, bucket) in db.buckets()? {
        crc.update(&name);
        let mut f = |k: &[u8], v: &[u8], _flags: u32| -> Result<(), String> {
            crc.update(k);
            crc.update(v);
            s.total_keys += 1;
            let bad = |what: &str| {
                format!(
                    "{}: unexpected {what} in etcd's {:?} bucket",
                    db.name,
                    String::from_utf8_lossy(&name)
                )
            };
            match name.as_slice() {
                b"key" => {
                    let (rev, deleted) = etcd_revision(k).ok_or_else(|| bad("key"))?;
                    let mut kv = KeyValue::decode(v).map_err(|_| bad("value"))?;
                    s.revision = rev.main;
                    let kind = if deleted {
                        kv = KeyValue {
                            key: kv.key,
                            mod_revision: rev.main,
                            ..KeyValue::default()
                        };
                        1
                    } else {
                        0
                    };
                    let mut value = Vec::with_capacity(1 + kv.encoded_len());
                    value.push(kind);
                    kv.encode(&mut value).map_err(|_| bad("value"))?;
                    each(Record::Kv(rev.encode().to_vec(), value))?;
                }
                b"meta" => {
                    let main = etcd_revision(v).map(|(r, _)| r.main);
                    match (k, main) {
                        (b"finishedCompactRev", Some(m)) => finished = m,
                        (b"scheduledCompactRev", Some(m)) => scheduled = m,
                        _ => {}
                    }
                }
                b"lease" => {
                    let l = StoredLease::decode(v).map_err(|_| bad("lease"))?;
                    let rec = crate::lease::LeaseRecord {
                        id: l.id,
                        ttl: l.ttl,
                        remaining: l.remaining_ttl,
                    };
                    each(Record::Meta(crate::lease::lease_key(l.id), encode(&rec)))?;
                }
                b"auth" => match k {
                    b"authEnabled" => each(Record::Meta(
                        "auth/enabled".into(),
                        encode(&(v.first() == Some(&1))),
                    ))?,
                    b"authRevision" => {
                        let r = v
                            .try_into()
                            .map(u64::from_be_bytes)
                            .map_err(|_| bad("auth revision"))?;
                        each(Record::Meta("auth/revision".into(), encode(&r)))?
                    }
                    _ => {}
                },
                b"authUsers" => {
                    let u = authpb::User::decode(v).map_err(|_| bad("user"))?;
                    let mut roles = u.roles;
                    roles.sort();
                    let user = crate::auth::User {
                        name: String::from_utf8_lossy(&u.name).into_owned(),
                        password: u.password,
                        roles,
                        no_password: u.options.is_some_and(|o| o.no_password),
                    };
                    each(Record::Meta(
                        crate::auth::user_key(&user.name),
                        encode(&user),
                    ))?;
                }
                b"authRoles" => {
                    let r = authpb::Role::decode(v).map_err(|_| bad("role"))?;
                    let mut perms: Vec<crate::auth::Perm> = r
                        .key_permission
                        .into_iter()
                        .map(|p| crate::auth::Perm {
                            perm_type: p.perm_type,
                            key: p.key,
                            range_end: p.range_end,
                        })
                        .collect();
                    perms.sort_by(|a, b| a.key.cmp(&b.key));
                    let role = crate::auth::Role {
                        name: String::from_utf8_lossy(&r.name).into_owned(),
                        perms,
                    };
                    each(Record::Meta(
                        crate::auth::role_key(&role.name),
                        encode(&role),
                    ))?;
                }
                _ => {}
            }
            Ok(())
        };
        db.walk_bucket(&bucket, &mut f)?;
    }
    // A compaction etcd had scheduled but not finished is finished on its next start; the
    // revisions it would have removed are out of reach here as they would be there.
    s.compact_revision = finished.max(scheduled);
    let current = s.revision.max(s.compact_revision);
    each(Record::Meta("current_rev".into(), encode(&current)))?;
    if s.compact_revision > 0 {
        each(Record::Meta(
            "compact_rev".into(),
            encode(&s.compact_revision),
        ))?;
    }
    s.hash = crc.finish();
    Ok(s)
}
