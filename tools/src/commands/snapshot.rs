//! `etcdctl snapshot save|status|restore` (status and restore are etcdutl's in etcd 3.5 and
//! kept here as etcdctl 3.5 keeps them; etcdutl calls the same code).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcdserverpb::SnapshotRequest;
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, Format};

/// etcdctl's exit code when `snapshot save` fails.
const EXIT_INTERRUPTED: i32 = 5;

pub const RESTORE_FLAGS: &[Spec] = &[
    flag("data-dir", Kind::Value, ""),
    flag("wal-dir", Kind::Value, ""),
    flag(
        "initial-cluster",
        Kind::Value,
        "default=http://localhost:2380",
    ),
    flag("initial-cluster-token", Kind::Value, "etcd-cluster"),
    flag(
        "initial-advertise-peer-urls",
        Kind::Value,
        "http://localhost:2380",
    ),
    flag("name", Kind::Value, "default"),
    flag("skip-hash-check", Kind::Bool, "false"),
    flag("bump-revision", Kind::Value, "0"),
    flag("mark-compacted", Kind::Bool, "false"),
];

pub async fn run(sub: &str, f: &Parsed, format: Format) -> Result<String, Failure> {
    match sub {
        "save" => save(f).await,
        "status" => {
            if f.args.len() != 1 {
                return Err(Failure::bad_args(
                    "snapshot status requires exactly one argument",
                ));
            }
            status(Path::new(&f.args[0]), format)
        }
        "restore" => restore(f),
        _ => Err(Failure::bad_args(
            "snapshot needs a subcommand: save, status or restore",
        )),
    }
}

fn interrupted(m: impl Into<String>) -> Failure {
    Failure {
        message: m.into(),
        code: EXIT_INTERRUPTED,
    }
}

/// Streams the snapshot into `<file>.part`, checks its sha256 trailer, fsyncs, renames.
async fn save(f: &Parsed) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args("snapshot save expects one argument"));
    }
    let path = PathBuf::from(&f.args[0]);
    let endpoints = crate::client::endpoints(f)?;
    if endpoints.len() != 1 {
        return Err(interrupted(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            endpoints.join(" ")
        )));
    }
    let part = PathBuf::from(format!("{}.part", path.display()));
    let result = fetch(f, &endpoints[0], &part).await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &path).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        interrupted(format!(
            "could not rename {} to {} ({e})",
            part.display(),
            path.display()
        ))
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(format!("Snapshot saved at {}\n", path.display()))
}

async fn fetch(f: &Parsed, ep: &str, part: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(|e| interrupted(format!("could not open {} ({e})", part.display())))?;
    let conn = Conn::open_endpoint(f, ep)
        .await
        .map_err(|e| interrupted(e.message))?;
    let mut req = tonic::Request::new(SnapshotRequest {});
    // Like etcdctl: no deadline unless --command-timeout is given.
    if f.is_set("command-timeout") {
        req.set_timeout(conn.command_timeout);
    }
    let mut stream = MaintenanceClient::new(conn.channel.clone())
        .snapshot(req)
        .await
        .map_err(|s| interrupted(status_message(&s)))?
        .into_inner();
    let progress = std::io::stderr().is_terminal();
    let mut check = TrailerCheck::default();
    while let Some(item) = stream.next().await {
        let r = item.map_err(|s| interrupted(status_message(&s)))?;
        file.write_all(&r.blob)
            .map_err(|e| interrupted(format!("write {}: {e}", part.display())))?;
        check.update(&r.blob);
        if progress {
            eprint!(
                "\rfetching snapshot: {}",
                printer::human_bytes(check.size as i64)
            );
        }
    }
    if progress {
        eprintln!();
    }
    check.finish().map_err(|e| match e {
        TrailerError::Missing(m) => interrupted(m),
        TrailerError::Mismatch(m) => interrupted(format!(
            "snapshot is damaged: {m} (nothing was saved; try again)"
        )),
    })?;
    file.sync_all()
        .map_err(|e| interrupted(format!("fsync {}: {e}", part.display())))?;
    Ok(())
}

/// Checks a snapshot as it streams past: etcd's (and retcd's) snapshot stream ends with the
/// sha256 of everything before it.
#[derive(Default)]
pub struct TrailerCheck {
    hasher: Sha256,
    tail: Vec<u8>,
    /// Bytes seen so far.
    pub size: u64,
}

/// Why a snapshot stream failed its check.
#[derive(Debug)]
pub enum TrailerError {
    /// The stream cannot carry a trailer (it was cut short).
    Missing(String),
    /// The data does not match its trailer.
    Mismatch(String),
}

impl TrailerCheck {
    pub fn update(&mut self, b: &[u8]) {
        self.size += b.len() as u64;
        self.tail.extend_from_slice(b);
        if self.tail.len() > 32 {
            let cut = self.tail.len() - 32;
            self.hasher.update(&self.tail[..cut]);
            self.tail.drain(..cut);
        }
    }

    pub fn finish(self) -> Result<(), TrailerError> {
        if self.size % 512 != 32 || self.tail.len() != 32 {
            return Err(TrailerError::Missing(format!(
                "sha256 checksum not found [bytes: {}]",
                self.size
            )));
        }
        let got: [u8; 32] = self.hasher.finalize().into();
        if got[..] != self.tail[..] {
            return Err(TrailerError::Mismatch(format!(
                "sha256 of the data is {}, its trailer says {}",
                retcd::snapshot::hex(&got),
                retcd::snapshot::hex(&self.tail)
            )));
        }
        Ok(())
    }
}

/// `snapshot status FILE`: hash, revision, total keys, total size.
pub fn status(path: &Path, format: Format) -> Result<String, Failure> {
    if let Err(e) = std::fs::metadata(path) {
        let shown = path.display().to_string();
        return Err(Failure::error(crate::client::go_path_error(
            "stat", &shown, &e,
        )));
    }
    // etcd's status of its own snapshots reads the database without checking the trailer.
    let skip = retcd::bolt::is_bolt(path);
    let s = retcd::snapshot::read(path, skip, |_| Ok(())).map_err(Failure::error)?;
    let (hash, rev, keys, size) = (s.kv_crc, s.header.revision, s.records, s.size);
    Ok(match format {
        Format::Json => format!(
            "{{\"hash\":{hash},\"revision\":{rev},\"totalKey\":{keys},\"totalSize\":{size}}}\n"
        ),
        Format::Fields => format!(
            "\"Hash\" : {hash}\n\"Revision\" : {rev}\n\"Keys\" : {keys}\n\"Size\" : {size}\n"
        ),
        Format::Table => printer::table(
            &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
            &[vec![
                format!("{hash:x}"),
                rev.to_string(),
                keys.to_string(),
                printer::human_bytes(size as i64),
            ]],
        ),
        Format::Simple => format!(
            "{hash:x}, {rev}, {keys}, {}\n",
            printer::human_bytes(size as i64)
        ),
        Format::Protobuf => return Err(format.unsupported()),
    })
}

/// `snapshot restore FILE --name ... --initial-cluster ...`: a fresh data dir for one member
/// of a new cluster.
pub fn restore(f: &Parsed) -> Result<String, Failure> {
    if f.args.len() != 1 {
        return Err(Failure::bad_args(
            "snapshot restore requires exactly one argument",
        ));
    }
    let bump: u64 = f.get("bump-revision").parse().map_err(|_| {
        Failure::bad_args(format!(
            "invalid argument {:?} for \"--bump-revision\" flag",
            f.get("bump-revision")
        ))
    })?;
    if bump > 0 && !f.bool("mark-compacted") {
        return Err(Failure::bad_args(
            "--mark-compacted required if --revision-bump > 0",
        ));
    }
    let name = f.get("name");
    let data_dir = match f.get("data-dir") {
        d if d.is_empty() => format!("{name}.etcd"),
        d => d,
    };
    let wal_dir = f.get("wal-dir");
    let opts = retcd::restore::RestoreOptions {
        name,
        data_dir: PathBuf::from(data_dir),
        wal_dir: (!wal_dir.is_empty()).then(|| PathBuf::from(wal_dir)),
        initial_cluster: f.get("initial-cluster"),
        initial_cluster_token: f.get("initial-cluster-token"),
        initial_advertise_peer_urls: f
            .get("initial-advertise-peer-urls")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        skip_hash_check: f.bool("skip-hash-check"),
        bump_revision: bump as i64,
        mark_compacted: f.bool("mark-compacted"),
    };
    let r = retcd::restore::restore(Path::new(&f.args[0]), &opts).map_err(Failure::error)?;
    eprintln!(
        "restored snapshot {} into {}: member {:x}, cluster {:x}, revision {}",
        f.args[0],
        opts.data_dir.display(),
        r.member_id,
        r.cluster_id,
        r.revision
    );
    Ok(String::new())
}
