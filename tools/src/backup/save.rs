//! `etcd-backup save`: a snapshot from the first healthy member of `--endpoints`, checked
//! against its own sha256 trailer while it streams, compressed with zstd and uploaded part by
//! part. Memory stays bounded by (upload concurrency + 1) parts, whatever the snapshot size;
//! nothing touches the local disk.

use std::io::{IsTerminal, Write};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;

use super::archive::{self, Meta};
use super::store::{Store, Upload};
use super::{metrics, Error, Settings};
use crate::client::{status_message, Conn};
use crate::commands::snapshot::{TrailerCheck, TrailerError};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::{SnapshotRequest, StatusRequest};

/// What a finished save reports.
struct Saved {
    url: String,
    meta: Meta,
    stored: u64,
}

/// Whose fault a failure was: the member's (try the next one) or the store's (stop).
enum Failed {
    Member(Error),
    Store(Error),
}

pub async fn run(s: &Settings, store: &Store) -> Result<String, Error> {
    let started = Instant::now();
    let metrics_file = s.get("metrics-file");
    let result = save(s, store).await;
    let now = super::store::file::now_secs() as f64;
    let metrics_result = if metrics_file.is_empty() {
        Ok(())
    } else {
        match &result {
            Ok(saved) => metrics::write(
                &metrics_file,
                &[
                    ("etcd_backup_last_success_timestamp_seconds", now),
                    ("etcd_backup_last_run_success", 1.0),
                    ("etcd_backup_last_size_bytes", saved.stored as f64),
                    (
                        "etcd_backup_last_snapshot_size_bytes",
                        saved.meta.size as f64,
                    ),
                    ("etcd_backup_last_revision", saved.meta.revision as f64),
                    (
                        "etcd_backup_last_duration_seconds",
                        started.elapsed().as_secs_f64(),
                    ),
                ],
            ),
            Err(_) => metrics::write(
                &metrics_file,
                &[
                    ("etcd_backup_last_failure_timestamp_seconds", now),
                    ("etcd_backup_last_run_success", 0.0),
                ],
            ),
        }
    };
    let saved = result?;
    metrics_result.map_err(|e| Error::failed(format!("the backup was saved, but {e}")))?;
    if !s.verbose() {
        return Ok(String::new());
    }
    Ok(format!(
        "saved {}: revision {}, snapshot {} bytes, stored {} bytes, {:.1}s\n",
        saved.url,
        saved.meta.revision,
        saved.meta.size,
        saved.stored,
        started.elapsed().as_secs_f64()
    ))
}

async fn save(s: &Settings, store: &Store) -> Result<Saved, Error> {
    let level = s.number("compression-level")?;
    if level > 19 {
        return Err(Error::usage(format!(
            "--compression-level {level}: zstd levels are 1 to 19"
        )));
    }
    let part_size = s.number("part-size")?;
    if !(5..=5120).contains(&part_size) {
        return Err(Error::usage(format!(
            "--part-size {part_size}: S3 parts are 5 to 5120 MiB"
        )));
    }
    for removed in store.cleanup().await? {
        if s.verbose() {
            eprintln!("removed what an earlier failed run left: {removed}");
        }
    }
    let endpoints = crate::client::endpoints(&s.p)?;
    if endpoints.is_empty() {
        return Err(Error::usage("--endpoints is empty"));
    }
    let mut failures = Vec::new();
    for ep in &endpoints {
        match save_from(s, store, ep, level as i32, (part_size << 20) as usize).await {
            Ok(saved) => return Ok(saved),
            Err(Failed::Store(e)) => return Err(e),
            Err(Failed::Member(e)) => {
                if s.verbose() {
                    eprintln!("{ep}: {}", e.message);
                }
                failures.push((ep.clone(), e));
            }
        }
    }
    let code = failures
        .iter()
        .map(|(_, e)| e.code)
        .max()
        .unwrap_or(super::EXIT_FAILED);
    Err(Error {
        message: format!(
            "no member could give a snapshot: {}",
            failures
                .iter()
                .map(|(ep, e)| format!("{ep}: {}", e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        code,
    })
}

async fn save_from(
    s: &Settings,
    store: &Store,
    ep: &str,
    level: i32,
    part_size: usize,
) -> Result<Saved, Failed> {
    let member = |m: String| Failed::Member(Error::failed(m));
    let conn = Conn::open_endpoint(&s.p, ep)
        .await
        .map_err(|f| member(format!("cannot connect ({})", f.message)))?;
    let status = MaintenanceClient::new(conn.channel.clone())
        .status(conn.req(StatusRequest {}))
        .await
        .map_err(|e| member(format!("status: {}", status_message(&e))))?
        .into_inner();
    if status.leader == 0 {
        return Err(member("the member has no leader".into()));
    }
    let header = status.header.unwrap_or_default();
    let mut stream = MaintenanceClient::new(conn.channel.clone())
        .snapshot(tonic::Request::new(SnapshotRequest {}))
        .await
        .map_err(|e| member(format!("snapshot: {}", status_message(&e))))?
        .into_inner();
    // Read up to the snapshot's own header, which names its exact revision and cluster.
    let mut first: Vec<u8> = Vec::new();
    let mut ended = false;
    while first.len() < retcd::snapshot::HEADER_LEN {
        match stream.next().await {
            Some(Ok(r)) => first.extend_from_slice(&r.blob),
            Some(Err(e)) => return Err(member(format!("snapshot: {}", status_message(&e)))),
            None => {
                ended = true;
                break;
            }
        }
    }
    let (cluster_id, member_id, revision) = match retcd::snapshot::Header::parse(&first) {
        Ok(h) => (h.cluster_id, h.member_id, h.revision),
        // Not a retcd snapshot (real etcd's bbolt file): the revision when it was asked for.
        Err(_) => (header.cluster_id, header.member_id, header.revision),
    };
    let taken = SystemTime::now();
    let name = archive::name(taken, cluster_id, revision);
    let mut meta = Meta {
        sha256: String::new(),
        size: 0,
        revision,
        cluster_id,
        member_id,
        endpoint: ep.to_string(),
        version: retcd::version::ETCD_SERVER_VERSION.to_string(),
        compression: "zstd".to_string(),
        created: archive::rfc3339(
            taken
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        ),
    };
    let mut upload = store.begin(&name, &meta).await.map_err(Failed::Store)?;
    let mut pipe = Pipe::new(level, part_size).map_err(Failed::Store)?;
    let progress = std::io::stderr().is_terminal();
    let streaming = async {
        pipe.push(&first, &mut upload).await?;
        while !ended {
            match stream.next().await {
                Some(Ok(r)) => pipe.push(&r.blob, &mut upload).await?,
                Some(Err(e)) => {
                    return Err(member(format!(
                        "snapshot stream broke after {} bytes: {}",
                        pipe.check.size,
                        status_message(&e)
                    )))
                }
                None => ended = true,
            }
            if progress {
                eprint!(
                    "\r{name}: {} MiB read, {} MiB uploaded",
                    pipe.check.size >> 20,
                    pipe.uploaded >> 20
                );
            }
        }
        if progress {
            eprintln!();
        }
        pipe.finish(&mut upload).await
    };
    let streamed = tokio::select! {
        r = streaming => r,
        sig = interrupted() => Err(Failed::Store(Error::failed(format!(
            "stopped by {sig} before the upload finished"
        )))),
    };
    let (sha256, size) = match streamed {
        Ok(v) => v,
        Err(e) => {
            let Err(a) = upload.abort().await else {
                return Err(e);
            };
            // One line for cron: the failure, then what is left behind.
            let add = |mut e: Error| {
                e.message = format!("{}; and could not {}", e.message, a.message);
                e
            };
            return Err(match e {
                Failed::Member(e) => Failed::Member(add(e)),
                Failed::Store(e) => Failed::Store(add(e)),
            });
        }
    };
    meta.sha256 = sha256;
    meta.size = size;
    let stored = upload.complete(&meta).await.map_err(Failed::Store)?;
    Ok(Saved {
        url: store.url(&name),
        meta,
        stored,
    })
}

/// Resolves on SIGINT or SIGTERM (systemd stopping the unit), naming the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Snapshot bytes in, checked and hashed, zstd frames out in parts of `part_size`.
struct Pipe {
    check: TrailerCheck,
    sha: Sha256,
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    part_size: usize,
    uploaded: u64,
}

impl Pipe {
    fn new(level: i32, part_size: usize) -> Result<Pipe, Error> {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::with_capacity(part_size), level)
            .map_err(|e| Error::failed(format!("zstd: {e}")))?;
        encoder
            .include_checksum(true)
            .map_err(|e| Error::failed(format!("zstd: {e}")))?;
        Ok(Pipe {
            check: TrailerCheck::default(),
            sha: Sha256::new(),
            encoder,
            part_size,
            uploaded: 0,
        })
    }

    async fn push(&mut self, b: &[u8], upload: &mut Upload) -> Result<(), Failed> {
        self.check.update(b);
        self.sha.update(b);
        self.encoder
            .write_all(b)
            .map_err(|e| Failed::Store(Error::failed(format!("zstd: {e}"))))?;
        if self.encoder.get_ref().len() >= self.part_size {
            let part =
                std::mem::replace(self.encoder.get_mut(), Vec::with_capacity(self.part_size));
            self.uploaded += part.len() as u64;
            upload.part(part).await.map_err(Failed::Store)?;
        }
        Ok(())
    }

    /// Checks the trailer, flushes the last part; the sha256 (hex) and size of the snapshot.
    async fn finish(self, upload: &mut Upload) -> Result<(String, u64), Failed> {
        let size = self.check.size;
        self.check.finish().map_err(|e| {
            Failed::Member(match e {
                TrailerError::Missing(m) => Error::failed(format!("snapshot cut short: {m}")),
                TrailerError::Mismatch(m) => {
                    Error::corrupt(format!("the member sent a damaged snapshot: {m}"))
                }
            })
        })?;
        let last = self
            .encoder
            .finish()
            .map_err(|e| Failed::Store(Error::failed(format!("zstd: {e}"))))?;
        upload.part(last).await.map_err(Failed::Store)?;
        let sha = self.sha.finalize();
        Ok((retcd::snapshot::hex(&sha), size))
    }
}
