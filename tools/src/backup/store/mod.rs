//! Where archives live: an S3 bucket (`s3://BUCKET/PREFIX`) or a local directory
//! (`file:///DIR`). Both publish an archive only once it is complete and checked: the data goes
//! to `.incomplete/<host>/NAME` first and reaches `NAME` together with its metadata, so a
//! failed or killed run never leaves something `list` shows as an archive.

pub mod file;
pub mod s3;

use std::collections::HashSet;

use super::archive::{self, Meta};
use super::{Error, Settings};

/// One archive as `list` sees it.
#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    /// Stored (compressed) size in bytes.
    pub size: u64,
}

pub enum Store {
    S3(s3::S3Store),
    File(file::FileStore),
}

pub enum Upload {
    S3(s3::S3Upload),
    File(file::FileUpload),
}

pub enum Download {
    S3(aws_sdk_s3::primitives::ByteStream),
    File(std::fs::File),
}

/// Where the stale uploads of this host go: every run holds the local lock, so whatever a
/// previous run of this host left under it is garbage.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".to_string()
    } else {
        clean
    }
}

impl Store {
    pub async fn open(s: &Settings) -> Result<Store, Error> {
        let url = s.get("store");
        if url.is_empty() {
            return Err(Error::usage(
                "no archive store: give --store s3://BUCKET/PREFIX or --store file:///DIR (or ETCD_BACKUP_STORE)",
            ));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::usage(format!("--store {url}: no bucket name")));
            }
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(Store::S3(s3::S3Store::open(s, bucket, &prefix).await?));
        }
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(Error::usage(format!(
                    "--store {url}: a file store needs an absolute path (file:///var/backups/etcd)"
                )));
            }
            return Ok(Store::File(file::FileStore::open(dir)?));
        }
        Err(Error::usage(format!(
            "--store {url}: not an s3:// or file:// URL"
        )))
    }

    /// Where `name` lives, for messages.
    pub fn url(&self, name: &str) -> String {
        match self {
            Store::S3(s) => s.url(name),
            Store::File(f) => f.url(name),
        }
    }

    /// Removes what earlier failed runs of this host left behind (and anything older than a
    /// day from other hosts); returns what was removed.
    pub async fn cleanup(&self) -> Result<Vec<String>, Error> {
        match self {
            Store::S3(s) => s.cleanup(&host_name()).await,
            Store::File(f) => f.cleanup(&host_name()),
        }
    }

    pub async fn begin(&self, name: &str, meta: &Meta) -> Result<Upload, Error> {
        Ok(match self {
            Store::S3(s) => Upload::S3(s.begin(&host_name(), name, meta).await?),
            Store::File(f) => Upload::File(f.begin(&host_name(), name)?),
        })
    }

    /// Every published archive, oldest first.
    pub async fn list(&self) -> Result<Vec<Object>, Error> {
        let mut v = match self {
            Store::S3(s) => s.list().await?,
            Store::File(f) => f.list()?,
        };
        v.retain(|o| archive::parse(&o.name).is_some());
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// `name`, or the newest archive for `--latest`.
    pub async fn resolve(&self, name: Option<&str>) -> Result<String, Error> {
        match name {
            Some(n) => {
                if archive::parse(n).is_none() {
                    return Err(Error::usage(format!(
                        "{n:?} is not an archive name (see 'etcd-backup list')"
                    )));
                }
                Ok(n.to_string())
            }
            None => self
                .list()
                .await?
                .pop()
                .map(|o| o.name)
                .ok_or_else(|| Error::failed("there are no archives in the store")),
        }
    }

    pub async fn meta(&self, name: &str) -> Result<Meta, Error> {
        match self {
            Store::S3(s) => s.meta(name).await,
            Store::File(f) => f.meta(name),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Download, Error> {
        Ok(match self {
            Store::S3(s) => Download::S3(s.get(name).await?),
            Store::File(f) => Download::File(f.get(name)?),
        })
    }

    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        match self {
            Store::S3(s) => s.delete(name).await,
            Store::File(f) => f.delete(name),
        }
    }

    pub async fn mark_verified(&self, name: &str) -> Result<(), Error> {
        match self {
            Store::S3(s) => s.mark_verified(name).await,
            Store::File(f) => f.mark_verified(name),
        }
    }

    pub async fn verified(&self) -> Result<HashSet<String>, Error> {
        match self {
            Store::S3(s) => s.verified().await,
            Store::File(f) => f.verified(),
        }
    }
}

impl Upload {
    /// Stores the next part (at least 5 MiB except the last, for S3).
    pub async fn part(&mut self, data: Vec<u8>) -> Result<(), Error> {
        match self {
            Upload::S3(u) => u.part(data).await,
            Upload::File(u) => u.part(&data),
        }
    }

    /// Publishes the archive under its name with `meta`; returns the stored size.
    pub async fn complete(self, meta: &Meta) -> Result<u64, Error> {
        match self {
            Upload::S3(u) => u.complete(meta).await,
            Upload::File(u) => u.complete(meta),
        }
    }

    /// Throws the upload away.
    pub async fn abort(self) -> Result<(), Error> {
        match self {
            Upload::S3(u) => u.abort().await,
            Upload::File(u) => u.abort(),
        }
    }
}

impl Download {
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Download::S3(b) => match b.next().await {
                None => Ok(None),
                Some(Ok(bytes)) => Ok(Some(bytes.to_vec())),
                Some(Err(e)) => {
                    let mut m = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        m.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    Err(Error::failed(format!("download interrupted: {m}")))
                }
            },
            Download::File(f) => {
                use std::io::Read;
                let mut buf = vec![0u8; 256 * 1024];
                let n = f
                    .read(&mut buf)
                    .map_err(|e| Error::failed(format!("read archive: {e}")))?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf))
            }
        }
    }
}
