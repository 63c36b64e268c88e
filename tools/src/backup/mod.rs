//! `etcd-backup`: scheduled, compressed, verified snapshot archives in S3 (or a directory),
//! and restore from them. One file per command; settings come from flags, `ETCD_BACKUP_*`
//! variables and `/etc/etcd/backup.conf`, in that order of precedence.

pub mod archive;
mod fetch;
mod list;
mod lock;
mod metrics;
mod prune;
mod restore;
pub mod retention;
mod save;
pub mod store;
mod verify;

use std::io::Write;

use crate::flags::{self, flag, short, Kind, Parsed, Spec};

/// Exit codes (documented in docs/backup.md).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_LOCKED: i32 = 3;
pub const EXIT_CORRUPT: i32 = 4;

const DEFAULT_CONFIG: &str = "/etc/etcd/backup.conf";

/// A failed command: one line for stderr and the exit code.
#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub code: i32,
}

impl Error {
    pub fn failed(m: impl Into<String>) -> Error {
        Error {
            message: m.into(),
            code: EXIT_FAILED,
        }
    }

    pub fn usage(m: impl Into<String>) -> Error {
        Error {
            message: m.into(),
            code: EXIT_USAGE,
        }
    }

    pub fn corrupt(m: impl Into<String>) -> Error {
        Error {
            message: m.into(),
            code: EXIT_CORRUPT,
        }
    }
}

impl From<crate::client::Failure> for Error {
    fn from(f: crate::client::Failure) -> Error {
        Error::failed(f.message)
    }
}

/// Settings every command takes.
const COMMON: &[Spec] = &[
    flag("store", Kind::Value, ""),
    flag("config", Kind::Value, ""),
    short("verbose", 'v', Kind::Bool, "false"),
    short("write-out", 'w', Kind::Value, "simple"),
    short("help", 'h', Kind::Bool, "false"),
    flag("s3-endpoint", Kind::Value, ""),
    flag("s3-region", Kind::Value, ""),
    flag("s3-path-style", Kind::Bool, "false"),
    flag("s3-ca-file", Kind::Value, ""),
    flag("s3-max-attempts", Kind::Value, "5"),
    flag("s3-sse", Kind::Value, ""),
    flag("s3-sse-kms-key-id", Kind::Value, ""),
    flag("s3-storage-class", Kind::Value, ""),
    flag("s3-copy-part-size", Kind::Value, "1024"),
    flag("part-size", Kind::Value, "16"),
    flag("upload-concurrency", Kind::Value, "2"),
    flag("lock-file", Kind::Value, ""),
    flag("tmp-dir", Kind::Value, ""),
];

/// How to reach the cluster (as etcdctl's flags).
const ETCD: &[Spec] = &[
    flag("endpoints", Kind::Value, "127.0.0.1:2379"),
    flag("dial-timeout", Kind::Value, "2s"),
    flag("command-timeout", Kind::Value, "5s"),
    flag("user", Kind::Value, ""),
    flag("password", Kind::Value, ""),
    flag("cacert", Kind::Value, ""),
    flag("cert", Kind::Value, ""),
    flag("key", Kind::Value, ""),
    flag("insecure-skip-tls-verify", Kind::Bool, "false"),
    flag("discovery-srv", Kind::Value, ""),
    flag("discovery-srv-name", Kind::Value, ""),
];

const SAVE: &[Spec] = &[
    flag("compression-level", Kind::Value, "3"),
    flag("metrics-file", Kind::Value, ""),
];
const FETCH: &[Spec] = &[
    short("output", 'o', Kind::Value, ""),
    flag("latest", Kind::Bool, "false"),
];
const VERIFY: &[Spec] = &[flag("latest", Kind::Bool, "false")];
const RETENTION: &[Spec] = &[
    flag("keep-last", Kind::Value, "0"),
    flag("keep-hourly", Kind::Value, "0"),
    flag("keep-daily", Kind::Value, "0"),
    flag("keep-weekly", Kind::Value, "0"),
    flag("keep-monthly", Kind::Value, "0"),
];
const PRUNE: &[Spec] = &[flag("dry-run", Kind::Bool, "false")];
const RESTORE_CLUSTER: &[Spec] = &[
    flag("latest", Kind::Bool, "false"),
    flag("initial-cluster", Kind::Value, ""),
    flag("initial-cluster-token", Kind::Value, "etcd-cluster"),
    flag("output-dir", Kind::Value, ""),
];

const HELP: &str = "etcd-backup: snapshot archives of an etcd cluster in S3 or a directory

Usage: etcd-backup COMMAND [flags]

Commands:
  save                      take a snapshot from a healthy member of --endpoints, compress it
                            (zstd) and upload it as a new archive
  list                      the archives, oldest first: name, time, revision, size (-w table|json)
  fetch NAME|--latest -o F  download an archive, decompress it and check its sha256
  verify NAME|--latest      fetch, check, and trial-restore an archive into a temporary dir
  prune --keep-...          delete archives outside the retention policy (--dry-run to see)
  restore NAME|--latest     a data dir for one member of a new cluster (etcdutl's flags,
                            incl. --bump-revision N --mark-compacted)
  restore-cluster NAME|--latest --initial-cluster ... --output-dir DIR
                            every member's data dir and env file at once
  version                   the version of this tool

Store:       --store s3://BUCKET/PREFIX | file:///DIR   (ETCD_BACKUP_STORE)
S3:          --s3-endpoint URL (S3-compatible servers; path-style addressing), --s3-region,
             --s3-path-style, --s3-ca-file PEM, --s3-sse AES256|aws:kms, --s3-sse-kms-key-id,
             --s3-storage-class, --s3-max-attempts (5); credentials the AWS way
             (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles)
Cluster:     --endpoints, --dial-timeout, --command-timeout, --user, --password; TLS as
             etcdctl: --cacert, --cert, --key, --insecure-skip-tls-verify (https:// endpoints)
save:        --compression-level (3), --part-size MiB (16), --upload-concurrency (2),
             --metrics-file PATH (node-exporter textfile collector)
prune:       --keep-last N, --keep-hourly N, --keep-daily N, --keep-weekly N, --keep-monthly N,
             --dry-run; the newest archive and the newest verified one are always kept.
             save applies the same --keep-* policy after every successful backup
Other:       --config FILE (default /etc/etcd/backup.conf), --lock-file, --tmp-dir, -v, -w

Every flag can also be set as ETCD_BACKUP_<FLAG> (e.g. ETCD_BACKUP_KEEP_DAILY=7), in the
environment or in the config file (KEY=VALUE lines; AWS_* lines there are used too).
Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 another run holds the lock,
4 an archive or snapshot failed its integrity check.
";

/// The settings of one run: flags, then `ETCD_BACKUP_*` variables, then the config file.
pub struct Settings {
    pub p: Parsed,
}

impl Settings {
    pub fn get(&self, name: &str) -> String {
        self.p.get(name)
    }

    pub fn bool(&self, name: &str) -> bool {
        self.p.bool(name)
    }

    pub fn verbose(&self) -> bool {
        self.p.bool("verbose")
    }

    pub fn number(&self, name: &str) -> Result<u64, Error> {
        let v = self.p.get(name);
        v.trim()
            .parse()
            .map_err(|_| Error::usage(format!("--{name} {v:?}: not a number")))
    }

    /// The one archive name argument, or None for `--latest`.
    pub fn archive_arg(&self, command: &str) -> Result<Option<String>, Error> {
        match (self.p.args.as_slice(), self.bool("latest")) {
            ([name], false) => Ok(Some(name.clone())),
            ([], true) => Ok(None),
            _ => Err(Error::usage(format!(
                "{command} takes one archive name or --latest"
            ))),
        }
    }

    /// A scratch directory for downloads: --tmp-dir, else `default`.
    pub fn tmp_dir(&self, default: &std::path::Path) -> std::path::PathBuf {
        match self.get("tmp-dir") {
            d if d.is_empty() => default.to_path_buf(),
            d => std::path::PathBuf::from(d),
        }
    }
}

fn var_name(flag: &str) -> String {
    format!(
        "ETCD_BACKUP_{}",
        flag.to_ascii_uppercase().replace('-', "_")
    )
}

/// KEY=VALUE lines (as systemd's EnvironmentFile reads them).
fn read_config(path: &str) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::usage(format!(
                "config file {path}: permission denied (it may hold S3 credentials: run as root or as a member of group etcd, or pass --config FILE)"
            ))
        } else {
            Error::usage(format!("config file {path}: {e}"))
        }
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::usage(format!(
                "config file {path} line {}: expected KEY=VALUE",
                i + 1
            )));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

fn parse_settings(args: &[String], specs: &[Spec]) -> Result<Settings, Error> {
    let first = flags::parse(args, specs, &[]).map_err(Error::usage)?;
    let config_path = match first.get("config") {
        c if !c.is_empty() => Some(c),
        _ => match std::env::var("ETCD_BACKUP_CONFIG") {
            Ok(c) if !c.is_empty() => Some(c),
            _ => std::path::Path::new(DEFAULT_CONFIG)
                .is_file()
                .then(|| DEFAULT_CONFIG.to_string()),
        },
    };
    let file = match &config_path {
        Some(p) => read_config(p)?,
        None => Vec::new(),
    };
    // AWS settings in the config file are used unless the environment has them.
    for (k, v) in &file {
        if k.starts_with("AWS_") && std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    for (k, _) in &file {
        if k.starts_with("ETCD_BACKUP_")
            && !COMMON
                .iter()
                .chain(ETCD)
                .chain(SAVE)
                .chain(FETCH)
                .chain(PRUNE)
                .chain(RETENTION)
                .chain(crate::commands::snapshot::RESTORE_FLAGS)
                .chain(RESTORE_CLUSTER)
                .any(|s| var_name(s.name) == *k)
        {
            eprintln!(
                "etcd-backup: warning: unknown setting {k} in {}",
                config_path.as_deref().unwrap_or("")
            );
        }
    }
    let mut extra: Vec<String> = Vec::new();
    for s in specs {
        if first.is_set(s.name) || s.name == "help" {
            continue;
        }
        let var = var_name(s.name);
        let v = std::env::var(&var).ok().or_else(|| {
            file.iter()
                .rev()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.clone())
        });
        if let Some(v) = v {
            extra.push(format!("--{}={v}", s.name));
        }
    }
    if extra.is_empty() {
        return Ok(Settings { p: first });
    }
    // Flags from the command line come last, so they win.
    let mut all = extra;
    all.extend(args.iter().cloned());
    let p = flags::parse(&all, specs, &[]).map_err(Error::usage)?;
    Ok(Settings { p })
}

/// Runs etcd-backup with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let Some(command) = args.first().cloned() else {
        eprint!("{HELP}");
        return EXIT_USAGE;
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        print!("{HELP}");
        return EXIT_OK;
    }
    if matches!(command.as_str(), "version" | "--version") {
        println!(
            "etcd-backup version: {}",
            retcd::version::ETCD_SERVER_VERSION
        );
        return EXIT_OK;
    }
    let own: &[Spec] = match command.as_str() {
        "save" => SAVE,
        "list" => &[],
        "fetch" => FETCH,
        "verify" => VERIFY,
        "prune" => PRUNE,
        "restore" => crate::commands::snapshot::RESTORE_FLAGS,
        "restore-cluster" => RESTORE_CLUSTER,
        other => {
            eprintln!("etcd-backup: unknown command {other:?}; run 'etcd-backup help'");
            return EXIT_USAGE;
        }
    };
    let mut specs: Vec<Spec> = COMMON.to_vec();
    if command == "save" {
        specs.extend_from_slice(ETCD);
    }
    if command == "save" || command == "prune" {
        specs.extend_from_slice(RETENTION);
    }
    if command == "restore" {
        specs.push(flag("latest", Kind::Bool, "false"));
    }
    specs.extend_from_slice(own);
    let settings = match parse_settings(&args[1..], &specs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("etcd-backup: {command}: {}", e.message);
            return e.code;
        }
    };
    if settings.bool("help") {
        print!("{HELP}");
        return EXIT_OK;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcd-backup: cannot start: {e}");
            return EXIT_FAILED;
        }
    };
    match rt.block_on(run(&command, &settings)) {
        Ok(out) => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(out.as_bytes());
            let _ = o.flush();
            EXIT_OK
        }
        Err(e) => {
            eprintln!("etcd-backup: {command} failed: {}", e.message);
            e.code
        }
    }
}

async fn run(command: &str, s: &Settings) -> Result<String, Error> {
    let store = store::Store::open(s).await?;
    match command {
        "save" => {
            let _lock = lock::acquire(s)?;
            let mut out = save::run(s, &store).await?;
            // Retention configured (e.g. ETCD_BACKUP_KEEP_DAILY in backup.conf): applied
            // after every successful backup.
            let policy = prune::policy(s)?;
            if !policy.is_empty() {
                out.push_str(&prune::apply(s, &store, policy).await.map_err(|e| Error {
                    message: format!("the backup was saved, but pruning failed: {}", e.message),
                    code: e.code,
                })?);
            }
            Ok(out)
        }
        "list" => list::run(s, &store).await,
        "fetch" => fetch::run(s, &store).await,
        "verify" => verify::run(s, &store).await,
        "prune" => {
            let _lock = lock::acquire(s)?;
            prune::run(s, &store).await
        }
        "restore" => restore::single(s, &store).await,
        _ => restore::cluster(s, &store).await,
    }
}
