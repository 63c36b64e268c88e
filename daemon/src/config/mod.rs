//! Member configuration, read the three ways etcd reads it: flags (`--foo-bar`), environment
//! (`ETCD_FOO_BAR`) and a YAML `--config-file` (`foo-bar:`).
//!
//! Precedence: with a config file, flags and env are ignored (etcd's rule; a warning says so).
//! Otherwise a flag beats its env var, and a warning names the shadowed variable (etcd 3.4 makes
//! that a fatal error; retcd is deliberately friendlier). Unknown flags are errors; unknown
//! `ETCD_*` variables are warnings, as in etcd.

mod parse;
pub mod settings;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{parse_go_duration, parse_urls, Url};
use settings::{Kind, Support, SETTINGS};

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Env,
    Flag,
    File,
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Version,
    Help,
}

/// A configuration error: the message says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// `--auto-compaction-mode` with its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep this many revisions.
    Revision(u64),
    /// Keep this much history.
    Periodic(Duration),
}

/// The validated member configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub wal_dir: Option<PathBuf>,
    pub snapshot_count: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub listen_peer_urls: Vec<Url>,
    pub listen_client_urls: Vec<Url>,
    pub listen_metrics_urls: Vec<Url>,
    pub initial_advertise_peer_urls: Vec<Url>,
    pub advertise_client_urls: Vec<Url>,
    pub initial_cluster: String,
    pub initial_cluster_state_new: bool,
    pub initial_cluster_token: String,
    pub strict_reconfig_check: bool,
    /// Serve the JSON gateway (`/v3/...`) on the client URLs.
    pub enable_grpc_gateway: bool,
    pub quota_backend_bytes: u64,
    pub bcrypt_cost: u32,
    pub auth_token_ttl: u64,
    pub max_txn_ops: u64,
    pub max_request_bytes: u64,
    pub max_concurrent_streams: u32,
    pub grpc_keepalive_min_time: Duration,
    pub grpc_keepalive_interval: Duration,
    pub grpc_keepalive_timeout: Duration,
    pub unsafe_no_fsync: bool,
    pub log_level: String,
    pub log_outputs: Vec<String>,
    pub warning_apply_duration: Duration,
    pub initial_corrupt_check: bool,
    pub force_new_cluster: bool,
    pub corrupt_check_time: Duration,
    pub compact_hash_check: Option<Duration>,
    pub snapshot_catchup_entries: u64,
    pub auto_compaction: Option<AutoCompaction>,
    pub watch_progress_notify_interval: Duration,
    /// Lease checkpoints, when enabled: how often the leader records remaining TTLs.
    pub lease_checkpoint_interval: Option<Duration>,
    /// Warnings found while reading the configuration, logged once logging is set up.
    pub warnings: Vec<String>,
    /// Every setting's final raw value and where it came from (for logging at start).
    pub raw: BTreeMap<&'static str, (String, Source)>,
}

/// etcd's default backend quota when `quota-backend-bytes` is 0: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl Config {
    /// The quota that applies (0 means etcd's 2 GiB default).
    pub fn effective_quota(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            DEFAULT_QUOTA_BYTES
        } else {
            self.quota_backend_bytes
        }
    }

    /// Configuration with every default, as `etcd` with no arguments and no env.
    pub fn defaults() -> Result<Config, ConfigError> {
        Config::from_sources(&[], &[])
    }

    /// Parses `args` (without the program name) and `env` (`(name, value)` pairs).
    pub fn parse(args: &[String], env: &[(String, String)]) -> Result<Command, ConfigError> {
        let flags = parse::parse_flags(args)?;
        if flags.iter().any(|(n, _)| n == "version") {
            return Ok(Command::Version);
        }
        if flags.iter().any(|(n, _)| n == "help" || n == "h") {
            return Ok(Command::Help);
        }
        Ok(Command::Run(Box::new(Config::from_sources(&flags, env)?)))
    }

    fn from_sources(
        flags: &[(String, String)],
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let mut raw: BTreeMap<&'static str, (String, Source)> = SETTINGS
            .iter()
            .map(|s| (s.name, (s.default.to_string(), Source::Default)))
            .collect();

        let config_file = flags
            .iter()
            .rev()
            .find(|(n, _)| n == "config-file")
            .map(|(_, v)| v.clone())
            .or_else(|| {
                env.iter()
                    .find(|(n, _)| n == "ETCD_CONFIG_FILE")
                    .map(|(_, v)| v.clone())
            });

        if let Some(path) = config_file.filter(|p| !p.is_empty()) {
            let other_flags = flags.iter().filter(|(n, _)| n != "config-file").count();
            let env_set = env
                .iter()
                .any(|(n, _)| n.starts_with("ETCD_") && n != "ETCD_CONFIG_FILE");
            if other_flags > 0 || env_set {
                warnings.push(format!(
                    "loading server configuration from {path:?}: other configuration command line flags and environment variables are ignored"
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("cannot read --config-file {path:?}: {e}")))?;
            for (name, value) in parse::parse_yaml(&text, &path)? {
                raw.insert(name, (value, Source::File));
            }
        } else {
            let mut from_env: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
            for (var, value) in env {
                let Some(rest) = var.strip_prefix("ETCD_") else {
                    continue;
                };
                let name = rest.to_ascii_lowercase().replace('_', "-");
                match settings::find(&name) {
                    Some(s) => {
                        from_env.insert(s.name, (var.clone(), value.clone()));
                    }
                    None if IGNORED_ENV.contains(&var.as_str()) => {}
                    None => warnings.push(format!(
                        "unrecognized environment variable {var}={value} (no setting --{name}; check for a typo)"
                    )),
                }
            }
            for (name, (_, value)) in &from_env {
                raw.insert(name, (value.clone(), Source::Env));
            }
            for (name, value) in flags {
                if name == "config-file" {
                    continue;
                }
                let Some(s) = settings::find(name) else {
                    return err(format!(
                        "flag provided but not defined: -{name} (run 'etcd --help' for the list of flags)"
                    ));
                };
                if let Some((var, _)) = from_env.get(s.name) {
                    if raw.get(s.name).map(|(_, src)| *src) == Some(Source::Env) {
                        warnings.push(format!(
                            "flag --{} overrides environment variable {var} (the flag's value is used)",
                            s.name
                        ));
                    }
                }
                raw.insert(s.name, (value.clone(), Source::Flag));
            }
        }
        build(raw, warnings)
    }
}

/// `ETCD_*` variables that are not settings but are known (not typos).
const IGNORED_ENV: &[&str] = &["ETCD_CONFIG_FILE", "ETCD_UNSUPPORTED_ARCH"];

fn build(
    raw: BTreeMap<&'static str, (String, Source)>,
    mut warnings: Vec<String>,
) -> Result<Config, ConfigError> {
    // Validate every value against its kind, and refuse what we do not implement yet.
    for s in SETTINGS {
        let (value, source) = &raw[s.name];
        check_kind(s.name, s.kind, value)?;
        if *source == Source::Default {
            continue;
        }
        let is_default = same_value(s.kind, value, s.default);
        match s.support {
            Support::Yes => {}
            Support::NoEffect(why) => {
                if !is_default {
                    warnings.push(format!("--{}={value} has no effect: {why}", s.name));
                }
            }
            Support::NotYet => {
                if !is_default {
                    return err(format!(
                        "--{}={value} is not supported yet by retcd (remove it, or set it to its default {:?})",
                        s.name, s.default
                    ));
                }
            }
        }
    }
    let get = |n: &str| raw[n].0.clone();
    let get_u64 = |n: &str| -> Result<u64, ConfigError> {
        get(n)
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError(format!("invalid value {:?} for --{n}", get(n))))
    };
    let get_bool = |n: &str| parse::parse_bool(&get(n)).unwrap_or(false);
    let get_dur = |n: &str| parse_go_duration(&get(n)).unwrap_or_default();
    let get_urls = |n: &str| parse_urls(n, &get(n));

    let name = get("name");
    let data_dir = match get("data-dir") {
        d if d == "${name}.etcd" || d.is_empty() => PathBuf::from(format!("{name}.etcd")),
        d => PathBuf::from(d),
    };
    let wal_dir = Some(get("wal-dir"))
        .filter(|w| !w.is_empty())
        .map(PathBuf::from);

    let heartbeat = get_u64("heartbeat-interval")?;
    let election = get_u64("election-timeout")?;
    if heartbeat == 0 {
        return err("--heartbeat-interval must be greater than 0");
    }
    if election < 5 * heartbeat {
        return err(format!(
            "--election-timeout[{election}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat}ms]"
        ));
    }
    if election > 50000 {
        return err(format!(
            "--election-timeout[{election}ms] is too long, and should be set less than 50 seconds"
        ));
    }

    let state = get("initial-cluster-state");
    let initial_cluster_state_new = match state.as_str() {
        "new" => true,
        "existing" => false,
        other => {
            return err(format!(
                "invalid value {other:?} for --initial-cluster-state: expected 'new' or 'existing'"
            ))
        }
    };

    let log_level = get("log-level");
    if !["debug", "info", "warn", "error", "panic", "fatal", "dpanic"].contains(&log_level.as_str())
    {
        return err(format!(
            "unknown log level {log_level:?} for --log-level (use debug, info, warn, error, panic or fatal)"
        ));
    }
    let logger = get("logger");
    if logger != "zap" && logger != "capnslog" {
        return err(format!(
            "invalid --logger={logger:?}: only 'zap' is supported"
        ));
    }
    let log_outputs: Vec<String> = get("log-outputs")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for o in &log_outputs {
        if !["default", "stderr", "stdout", "systemd/journal"].contains(&o.as_str()) {
            return err(format!(
                "--log-outputs={o} is not supported yet by retcd (use default, stderr or stdout)"
            ));
        }
    }
    let metrics = get("metrics");
    if metrics != "basic" && metrics != "extensive" {
        return err(format!(
            "invalid --metrics={metrics:?}: use 'basic' or 'extensive'"
        ));
    }

    let max_txn_ops = get_u64("max-txn-ops")?;
    if max_txn_ops == 0 {
        return err("--max-txn-ops must be greater than 0");
    }
    let max_request_bytes = get_u64("max-request-bytes")?;
    if max_request_bytes == 0 {
        return err("--max-request-bytes must be greater than 0");
    }

    let listen_client_urls = get_urls("listen-client-urls")?;
    let listen_peer_urls = get_urls("listen-peer-urls")?;
    if listen_client_urls.is_empty() {
        return err("--listen-client-urls must list at least one URL");
    }
    if listen_peer_urls.is_empty() {
        return err("--listen-peer-urls must list at least one URL");
    }
    let advertise_client_urls = get_urls("advertise-client-urls")?;
    if advertise_client_urls.is_empty() {
        return err(
            "--advertise-client-urls is required when --listen-client-urls is set explicitly",
        );
    }

    let auto_compaction = auto_compaction(
        &get("auto-compaction-mode"),
        &get("auto-compaction-retention"),
    )?;

    Ok(Config {
        auto_compaction,
        lease_checkpoint_interval: get_bool("experimental-enable-lease-checkpoint").then(|| {
            get_dur("experimental-lease-checkpoint-interval").max(Duration::from_millis(100))
        }),
        watch_progress_notify_interval: get_dur("experimental-watch-progress-notify-interval")
            .max(Duration::from_millis(100)),
        data_dir,
        wal_dir,
        snapshot_count: get_u64("snapshot-count")?.max(1),
        heartbeat_interval_ms: heartbeat,
        election_timeout_ms: election,
        listen_peer_urls,
        listen_client_urls,
        listen_metrics_urls: get_urls("listen-metrics-urls")?,
        initial_advertise_peer_urls: get_urls("initial-advertise-peer-urls")?,
        advertise_client_urls,
        initial_cluster: get("initial-cluster"),
        initial_cluster_state_new,
        initial_cluster_token: get("initial-cluster-token"),
        strict_reconfig_check: get_bool("strict-reconfig-check"),
        enable_grpc_gateway: get_bool("enable-grpc-gateway"),
        quota_backend_bytes: get_u64("quota-backend-bytes")?,
        bcrypt_cost: {
            let c = get_u64("bcrypt-cost")?;
            if !(4..=31).contains(&c) {
                return err(format!(
                    "--bcrypt-cost={c}: must be between 4 and 31 (etcd's default is 10)"
                ));
            }
            c as u32
        },
        auth_token_ttl: get_u64("auth-token-ttl")?,
        max_txn_ops,
        max_request_bytes,
        max_concurrent_streams: get_u64("max-concurrent-streams")?.min(u32::MAX as u64) as u32,
        grpc_keepalive_min_time: get_dur("grpc-keepalive-min-time"),
        grpc_keepalive_interval: get_dur("grpc-keepalive-interval"),
        grpc_keepalive_timeout: get_dur("grpc-keepalive-timeout"),
        unsafe_no_fsync: get_bool("unsafe-no-fsync"),
        log_level,
        log_outputs,
        warning_apply_duration: get_dur("experimental-warning-apply-duration"),
        initial_corrupt_check: get_bool("experimental-initial-corrupt-check"),
        force_new_cluster: get_bool("force-new-cluster"),
        corrupt_check_time: get_dur("experimental-corrupt-check-time"),
        compact_hash_check: get_bool("experimental-compact-hash-check-enabled")
            .then(|| get_dur("experimental-compact-hash-check-time")),
        snapshot_catchup_entries: get_u64("experimental-snapshot-catchup-entries")?,
        name,
        warnings,
        raw,
    })
}

/// etcd's rules: retention "0" disables; periodic takes hours ("1") or a duration ("30m");
/// revision takes a revision count.
fn auto_compaction(mode: &str, retention: &str) -> Result<Option<AutoCompaction>, ConfigError> {
    let r = retention.trim();
    match mode {
        "periodic" => {
            if r.is_empty() || r == "0" {
                return Ok(None);
            }
            let d = match r.parse::<u64>() {
                Ok(hours) => Duration::from_secs(hours * 3600),
                Err(_) => parse_go_duration(r).ok_or_else(|| {
                    ConfigError(format!(
                        "invalid --auto-compaction-retention={r:?} for periodic mode: use hours (e.g. 1) or a duration (e.g. 30m)"
                    ))
                })?,
            };
            Ok((!d.is_zero()).then_some(AutoCompaction::Periodic(d)))
        }
        "revision" => {
            let n = r.parse::<u64>().map_err(|_| {
                ConfigError(format!(
                    "invalid --auto-compaction-retention={r:?} for revision mode: use a number of revisions (e.g. 1000)"
                ))
            })?;
            Ok((n > 0).then_some(AutoCompaction::Revision(n)))
        }
        other => Err(ConfigError(format!(
            "invalid --auto-compaction-mode={other:?}: use 'periodic' or 'revision'"
        ))),
    }
}

fn check_kind(name: &str, kind: Kind, value: &str) -> Result<(), ConfigError> {
    let ok = match kind {
        Kind::Str => true,
        Kind::Bool => parse::parse_bool(value).is_some(),
        Kind::Uint => value.trim().parse::<u64>().is_ok(),
        Kind::Float => value.trim().parse::<f64>().is_ok(),
        Kind::Duration => parse_go_duration(value).is_some(),
        Kind::Urls => return parse_urls(name, value).map(|_| ()),
    };
    if ok {
        Ok(())
    } else {
        err(format!(
            "invalid value {value:?} for flag -{name}: expected {}",
            match kind {
                Kind::Bool => "true or false",
                Kind::Uint => "a non-negative integer",
                Kind::Float => "a number",
                Kind::Duration => "a duration such as 5s or 2h0m0s",
                _ => "a string",
            }
        ))
    }
}

fn same_value(kind: Kind, a: &str, b: &str) -> bool {
    match kind {
        Kind::Bool => parse::parse_bool(a) == parse::parse_bool(b),
        Kind::Duration => parse_go_duration(a) == parse_go_duration(b),
        Kind::Uint => a.trim().parse::<u64>().ok() == b.trim().parse::<u64>().ok(),
        _ => a.trim() == b.trim(),
    }
}

/// `etcd --help`: every flag with its default and meaning.
pub fn usage() -> String {
    let mut out = String::from(
        "Usage:\n\n  etcd [flags]\n    Start an etcd server (retcd).\n\n  etcd --version\n    Show the version of etcd.\n\n  etcd -h | --help\n    Show the help information about etcd.\n\n  etcd --config-file\n    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.\n\nEvery flag --foo-bar can also be set with the environment variable ETCD_FOO_BAR.\n\nFlags:\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!(" (default {:?})", s.default)
        };
        let note = match s.support {
            Support::Yes => "",
            Support::NoEffect(_) => " [accepted, no effect in retcd]",
            Support::NotYet => " [not supported yet: only the default is accepted]",
        };
        out.push_str(&format!(
            "  --{}{default}\n      {}{note}\n",
            s.name, s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests;

/// `conf/etcd.conf`: the environment file of a static three-member cluster (SCENARIOS §1),
/// then every supported `ETCD_*` setting, commented out, with its default and what it does.
pub fn sample_env_file() -> String {
    let mut out = String::from(
        "# /etc/etcd/etcd.conf (or /opt/etcd/config/etcd.conf): read by etcd.service.
# Only ETCD_* variables; every ETCD_FOO_BAR is also the flag --foo-bar (a flag wins).
# This example is member etcd1 of a static three-member cluster; change the names and
# addresses for each host.

ETCD_NAME=\"etcd1\"
ETCD_DATA_DIR=\"/var/lib/etcd\"
ETCD_LISTEN_PEER_URLS=\"http://10.0.0.1:2380\"
ETCD_LISTEN_CLIENT_URLS=\"http://10.0.0.1:2379,http://127.0.0.1:2379\"
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://10.0.0.1:2380\"
ETCD_ADVERTISE_CLIENT_URLS=\"http://10.0.0.1:2379\"
ETCD_INITIAL_CLUSTER=\"etcd1=http://10.0.0.1:2380,etcd2=http://10.0.0.2:2380,etcd3=http://10.0.0.3:2380\"
ETCD_INITIAL_CLUSTER_STATE=\"new\"
ETCD_INITIAL_CLUSTER_TOKEN=\"etcd-cluster\"

# Every other supported setting, with its default:
",
    );
    for (s, note) in other_settings() {
        out.push_str(&format!(
            "\n# {}{note}\n#ETCD_{}=\"{}\"\n",
            s.help,
            s.name.to_ascii_uppercase().replace('-', "_"),
            s.default
        ));
    }
    out
}

/// `conf/etcd.yaml`: `conf/etcd.conf` as a `--config-file` (YAML keys are the flag names).
pub fn sample_yaml_file() -> String {
    let mut out = String::from(
        "# etcd --config-file /etc/etcd/etcd.yaml: the same settings as /etc/etcd/etcd.conf.
# With a config file, other flags and ETCD_* variables are ignored (as in etcd).
# This example is member etcd1 of a static three-member cluster.

name: etcd1
data-dir: /var/lib/etcd
listen-peer-urls: http://10.0.0.1:2380
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
initial-advertise-peer-urls: http://10.0.0.1:2380
advertise-client-urls: http://10.0.0.1:2379
initial-cluster: etcd1=http://10.0.0.1:2380,etcd2=http://10.0.0.2:2380,etcd3=http://10.0.0.3:2380
initial-cluster-state: new
initial-cluster-token: etcd-cluster

# Every other supported setting, with its default:
",
    );
    for (s, note) in other_settings() {
        let value = match s.kind {
            Kind::Bool | Kind::Uint | Kind::Float => s.default.to_string(),
            _ => format!("{:?}", s.default),
        };
        out.push_str(&format!("\n# {}{note}\n#{}: {value}\n", s.help, s.name));
    }
    out
}

/// The settings the sample files list after their example: supported ones not in the example,
/// with a note for those that have no effect in retcd.
fn other_settings() -> impl Iterator<Item = (&'static settings::Setting, &'static str)> {
    const SHOWN: [&str; 10] = [
        "name",
        "data-dir",
        "listen-peer-urls",
        "listen-client-urls",
        "initial-advertise-peer-urls",
        "advertise-client-urls",
        "initial-cluster",
        "initial-cluster-state",
        "initial-cluster-token",
        "config-file",
    ];
    SETTINGS
        .iter()
        .filter(|s| !SHOWN.contains(&s.name))
        .filter_map(|s| match s.support {
            Support::Yes => Some((s, "")),
            Support::NoEffect(_) => Some((s, " [accepted, no effect in retcd]")),
            Support::NotYet => None,
        })
}
