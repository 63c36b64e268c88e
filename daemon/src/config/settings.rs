//! The table of every member setting etcd 3.5 accepts: name, default, type, and whether retcd
//! implements it. Flags (`--name`), env vars (`ETCD_NAME`) and YAML keys (`name:`) all come from it.

/// How a setting's value is parsed and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Uint,
    Float,
    /// Comma-separated URLs.
    Urls,
    /// Go duration, e.g. `5s`, `2h0m0s`.
    Duration,
}

/// Whether retcd acts on a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Yes,
    /// Accepted and validated; it has no meaning for retcd's storage (the reason is logged).
    NoEffect(&'static str),
    /// Parsed and validated; a non-default value is refused with "not supported yet".
    NotYet,
}

#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub support: Support,
    pub help: &'static str,
}

const fn s(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    support: Support,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        default,
        kind,
        support,
        help,
    }
}

use Kind::*;
use Support::*;

const BOLT: Support = NoEffect("retcd stores data in RocksDB, not bbolt");

/// Every setting, in the order `etcd --help` lists them.
pub const SETTINGS: &[Setting] = &[
    // Member
    s("name", "default", Str, Yes, "Human-readable name for this member."),
    s("data-dir", "${name}.etcd", Str, Yes, "Path to the data directory."),
    s("wal-dir", "", Str, Yes, "Path to a dedicated write-ahead-log directory (RocksDB's WAL goes there)."),
    s("snapshot-count", "100000", Uint, Yes, "Number of committed transactions to trigger a snapshot (raft log compaction)."),
    s("heartbeat-interval", "100", Uint, Yes, "Time (in milliseconds) of a heartbeat interval."),
    s("election-timeout", "1000", Uint, Yes, "Time (in milliseconds) for an election to timeout."),
    s("initial-election-tick-advance", "true", Bool, NoEffect("openraft starts elections on its own timer"), "Whether to fast-forward initial election ticks on boot for faster election."),
    s("listen-peer-urls", "http://localhost:2380", Urls, Yes, "List of URLs to listen on for peer traffic."),
    s("listen-client-urls", "http://localhost:2379", Urls, Yes, "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified."),
    s("listen-client-http-urls", "", Urls, NotYet, "List of URLs to listen on for http only client traffic."),
    s("max-snapshots", "5", Uint, NoEffect("retcd keeps no snapshot files"), "Maximum number of snapshot files to retain (0 is unlimited)."),
    s("max-wals", "5", Uint, NoEffect("retcd keeps no WAL files"), "Maximum number of wal files to retain (0 is unlimited)."),
    s("quota-backend-bytes", "0", Uint, Yes, "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
    s("backend-bbolt-freelist-type", "map", Str, BOLT, "BackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types)."),
    s("backend-batch-interval", "0s", Duration, BOLT, "BackendBatchInterval is the maximum time before commit the backend transaction."),
    s("backend-batch-limit", "0", Uint, BOLT, "BackendBatchLimit is the maximum operations before commit the backend transaction."),
    s("max-txn-ops", "128", Uint, Yes, "Maximum number of operations permitted in a transaction."),
    s("max-request-bytes", "1572864", Uint, Yes, "Maximum client request size in bytes the server will accept."),
    s("max-concurrent-streams", "4294967295", Uint, Yes, "Maximum concurrent streams that each client can open at a time."),
    s("grpc-keepalive-min-time", "5s", Duration, Yes, "Minimum duration interval that a client should wait before pinging server."),
    s("grpc-keepalive-interval", "2h0m0s", Duration, Yes, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
    s("grpc-keepalive-timeout", "20s", Duration, Yes, "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
    s("socket-reuse-port", "false", Bool, NotYet, "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use."),
    s("socket-reuse-address", "false", Bool, NotYet, "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state."),
    s("unsafe-no-fsync", "false", Bool, Yes, "Disables fsync, unsafe, will cause data loss."),
    s("enable-grpc-gateway", "true", Bool, Yes, "Enable GRPC gateway."),
    // Clustering
    s("initial-advertise-peer-urls", "http://localhost:2380", Urls, Yes, "List of this member's peer URLs to advertise to the rest of the cluster."),
    s("initial-cluster", "default=http://localhost:2380", Str, Yes, "Initial cluster configuration for bootstrapping."),
    s("initial-cluster-state", "new", Str, Yes, "Initial cluster state ('new' or 'existing')."),
    s("initial-cluster-token", "etcd-cluster", Str, Yes, "Initial cluster token for the etcd cluster during bootstrap."),
    s("advertise-client-urls", "http://localhost:2379", Urls, Yes, "List of this member's client URLs to advertise to the public."),
    s("discovery", "", Str, NotYet, "Discovery URL used to bootstrap the cluster."),
    s("discovery-fallback", "proxy", Str, NoEffect("only used with --discovery"), "Expected behavior ('exit' or 'proxy') when discovery services fails."),
    s("discovery-proxy", "", Str, NotYet, "HTTP proxy to use for traffic to discovery service."),
    s("discovery-srv", "", Str, NotYet, "DNS srv domain used to bootstrap the cluster."),
    s("discovery-srv-name", "", Str, NotYet, "Suffix to the dns srv name queried when bootstrapping."),
    s("strict-reconfig-check", "true", Bool, Yes, "Reject reconfiguration requests that would cause quorum loss."),
    s("pre-vote", "false", Bool, NoEffect("openraft's elections have no pre-vote phase"), "Enable the raft Pre-Vote algorithm to prevent disruption when a node that has been partitioned away rejoins the cluster."),
    s("auto-compaction-retention", "0", Str, Yes, "Auto compaction retention length. 0 means disable auto compaction."),
    s("auto-compaction-mode", "periodic", Str, Yes, "Interpret 'auto-compaction-retention' one of: periodic|revision."),
    s("enable-v2", "false", Bool, NotYet, "Accept etcd V2 client requests."),
    s("v2-deprecation", "not-yet", Str, NoEffect("retcd has no v2 store"), "v2store deprecation stage."),
    // Security
    s("cert-file", "", Str, NotYet, "Path to the client server TLS cert file."),
    s("key-file", "", Str, NotYet, "Path to the client server TLS key file."),
    s("client-cert-auth", "false", Bool, NotYet, "Enable client cert authentication."),
    s("client-crl-file", "", Str, NotYet, "Path to the client certificate revocation list file."),
    s("client-cert-allowed-hostname", "", Str, NotYet, "Allowed TLS hostname for client cert authentication."),
    s("trusted-ca-file", "", Str, NotYet, "Path to the client server TLS trusted CA cert file."),
    s("auto-tls", "false", Bool, NotYet, "Client TLS using generated certificates."),
    s("peer-cert-file", "", Str, NotYet, "Path to the peer server TLS cert file."),
    s("peer-key-file", "", Str, NotYet, "Path to the peer server TLS key file."),
    s("peer-client-cert-auth", "false", Bool, NotYet, "Enable peer client cert authentication."),
    s("peer-trusted-ca-file", "", Str, NotYet, "Path to the peer server TLS trusted CA file."),
    s("peer-cert-allowed-cn", "", Str, NotYet, "Required CN for client certs connecting to the peer endpoint."),
    s("peer-cert-allowed-hostname", "", Str, NotYet, "Allowed TLS hostname for inter peer authentication."),
    s("peer-auto-tls", "false", Bool, NotYet, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
    s("self-signed-cert-validity", "1", Uint, NotYet, "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1."),
    s("peer-crl-file", "", Str, NotYet, "Path to the peer certificate revocation list file."),
    s("cipher-suites", "", Str, NotYet, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go)."),
    s("cors", "", Str, NotYet, "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)."),
    s("host-whitelist", "*", Str, NotYet, "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all)."),
    s("tls-min-version", "TLS1.2", Str, NotYet, "Minimum TLS version supported by etcd."),
    s("tls-max-version", "", Str, NotYet, "Maximum TLS version supported by etcd."),
    // Auth
    s("auth-token", "simple", Str, NotYet, "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
    s("bcrypt-cost", "10", Uint, Yes, "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31."),
    s("auth-token-ttl", "300", Uint, Yes, "The lifetime in seconds of the auth token."),
    // Profiling and monitoring
    s("enable-pprof", "false", Bool, NotYet, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\""),
    s("metrics", "basic", Str, Yes, "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."),
    s("listen-metrics-urls", "", Urls, Yes, "List of URLs to listen on for the metrics and health endpoints."),
    // Logging
    s("logger", "zap", Str, Yes, "Currently only supports 'zap' for structured logging."),
    s("log-outputs", "default", Str, Yes, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
    s("log-level", "info", Str, Yes, "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
    s("enable-log-rotation", "false", Bool, NotYet, "Enable log rotation of a single log-outputs file target."),
    s("log-rotation-config-json", "{\"maxsize\": 100, \"maxage\": 0, \"maxbackups\": 0, \"localtime\": false, \"compress\": false}", Str, NotYet, "Configures log rotation if enabled with a JSON logger config."),
    // Unsafe / recovery
    s("force-new-cluster", "false", Bool, Yes, "Force to create a new one member cluster."),
    // v2 proxy
    s("proxy", "off", Str, NotYet, "Proxy mode setting ('off', 'readonly' or 'on')."),
    s("proxy-failure-wait", "5000", Uint, NoEffect("only used with --proxy"), "Time (in milliseconds) an endpoint will be held in a failed state."),
    s("proxy-refresh-interval", "30000", Uint, NoEffect("only used with --proxy"), "Time (in milliseconds) of the endpoints refresh interval."),
    s("proxy-dial-timeout", "1000", Uint, NoEffect("only used with --proxy"), "Time (in milliseconds) for a dial to timeout."),
    s("proxy-write-timeout", "5000", Uint, NoEffect("only used with --proxy"), "Time (in milliseconds) for a write to timeout."),
    s("proxy-read-timeout", "0", Uint, NoEffect("only used with --proxy"), "Time (in milliseconds) for a read to timeout."),
    // Experimental
    s("experimental-initial-corrupt-check", "false", Bool, Yes, "Enable to check data corruption before serving any client/peer traffic."),
    s("experimental-corrupt-check-time", "0s", Duration, Yes, "Duration of time between cluster corruption check passes."),
    s("experimental-compact-hash-check-enabled", "false", Bool, Yes, "Enable leader to periodically check followers compaction hashes."),
    s("experimental-compact-hash-check-time", "1m0s", Duration, Yes, "Duration of time between leader checks followers compaction hashes."),
    s("experimental-enable-lease-checkpoint", "false", Bool, Yes, "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change."),
    s("experimental-lease-checkpoint-interval", "5m0s", Duration, Yes, "Duration of time between two lease checkpoints (with --experimental-enable-lease-checkpoint)."),
    s("experimental-compaction-batch-limit", "1000", Uint, NoEffect("compaction deletes in RocksDB write batches"), "Sets the maximum revisions deleted in each compaction batch."),
    s("experimental-watch-progress-notify-interval", "10m0s", Duration, Yes, "Duration of periodic watch progress notifications."),
    s("experimental-warning-apply-duration", "100ms", Duration, Yes, "Time duration after which a warning is generated if request takes more time."),
    s("experimental-txn-mode-write-with-shared-buffer", "true", Bool, NoEffect("a bbolt buffering mode"), "Enable the write transaction to use a shared buffer in its read-only check operations."),
    s("experimental-bootstrap-defrag-threshold-megabytes", "0", Uint, NoEffect("RocksDB compacts in the background"), "Enable the defrag during etcd server bootstrap on condition that it will free at least the provided threshold of disk space."),
    s("experimental-memory-mlock", "false", Bool, NotYet, "Enable to enforce etcd pages (in particular bbolt) to stay in RAM."),
    s("experimental-enable-v2v3", "", Str, NotYet, "v3 prefix for serving emulated v2 state."),
    s("experimental-peer-skip-client-san-verification", "false", Bool, NotYet, "Skip verification of SAN field in client certificate for peer connections."),
    s("experimental-max-learners", "1", Uint, NotYet, "Sets the maximum number of learners that can be available in the cluster membership."),
    s("experimental-stop-grpc-service-on-defrag", "false", Bool, NoEffect("retcd's defrag never blocks"), "Enable etcd gRPC service to stop serving client requests on defragmentation."),
    s("experimental-downgrade-check-time", "5s", Duration, NoEffect("retcd has no downgrade monitor yet"), "Duration of time between two downgrade status checks."),
    s("experimental-wait-cluster-ready-timeout", "5s", Duration, NoEffect("a member waits for its leader on its own schedule"), "Maximum duration to wait for the cluster to be ready."),
    s("experimental-enable-distributed-tracing", "false", Bool, NotYet, "Enable experimental distributed tracing using OpenTelemetry Tracing."),
    s("experimental-snapshot-catchup-entries", "5000", Uint, Yes, "Number of entries for a slow follower to catch up after compacting the raft storage entries."),
];

/// The setting called `name`.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// `listen-client-urls` -> `ETCD_LISTEN_CLIENT_URLS`.
pub fn env_name(name: &str) -> String {
    format!("ETCD_{}", name.to_ascii_uppercase().replace('-', "_"))
}
