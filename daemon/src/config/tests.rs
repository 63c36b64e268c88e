use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run(a: &[&str], e: &[(&str, &str)]) -> Result<Config, ConfigError> {
    match Config::parse(&args(a), &env(e))? {
        Command::Run(c) => Ok(*c),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn defaults_match_etcd() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.name, "default");
    assert_eq!(c.data_dir, PathBuf::from("default.etcd"));
    assert_eq!(c.listen_client_urls[0].raw, "http://localhost:2379");
    assert_eq!(c.listen_peer_urls[0].raw, "http://localhost:2380");
    assert_eq!(c.max_request_bytes, 1572864);
    assert_eq!(c.max_txn_ops, 128);
    assert_eq!(c.snapshot_count, 100000);
    assert_eq!(c.grpc_keepalive_interval, Duration::from_secs(7200));
}

#[test]
fn flag_wins_over_env_with_warning() {
    let c = run(&["--name", "flag-name"], &[("ETCD_NAME", "env-name")]).unwrap();
    assert_eq!(c.name, "flag-name");
    assert_eq!(c.data_dir, PathBuf::from("flag-name.etcd"));
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("--name") && w.contains("ETCD_NAME")));
}

#[test]
fn go_flag_forms() {
    let c = run(
        &[
            "-name=a",
            "--data-dir",
            "/tmp/x",
            "--strict-reconfig-check=false",
            "--unsafe-no-fsync",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.name, "a");
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert!(!c.strict_reconfig_check);
    assert!(c.unsafe_no_fsync);
}

#[test]
fn unknown_flag_and_env_typo() {
    let e = run(&["--bogus"], &[]).unwrap_err();
    assert!(e.0.contains("-bogus"), "{e}");
    let c = run(&[], &[("ETCD_NAEM", "x")]).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("ETCD_NAEM")));
}

#[test]
fn not_yet_supported_settings_are_refused() {
    let e = run(&[], &[("ETCD_ENABLE_V2", "true")]).unwrap_err();
    assert!(e.0.contains("not supported yet"), "{e}");
    // The default value is accepted.
    run(&["--enable-v2=false"], &[]).unwrap();
    let e = run(&["--listen-client-urls", "https://127.0.0.1:1"], &[]).unwrap_err();
    assert!(e.0.contains("not supported yet"), "{e}");
}

#[test]
fn bad_values_are_errors() {
    assert!(run(&["--snapshot-count", "x"], &[]).is_err());
    assert!(run(
        &["--heartbeat-interval", "100", "--election-timeout", "200"],
        &[]
    )
    .is_err());
    assert!(run(&["--initial-cluster-state", "old"], &[]).is_err());
    assert!(run(&["--listen-client-urls", "127.0.0.1:2379"], &[]).is_err());
    assert!(run(&["--log-level", "loud"], &[]).is_err());
}

#[test]
fn config_file_wins_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("etcd.yaml");
    std::fs::write(
        &p,
        "name: yaml-name\nlisten-client-urls: http://127.0.0.1:12379\nadvertise-client-urls:\n  - http://127.0.0.1:12379\nsnapshot-count: 5\nstrict-reconfig-check: false\n",
    )
    .unwrap();
    let c = run(
        &["--config-file", p.to_str().unwrap(), "--name", "ignored"],
        &[("ETCD_NAME", "ignored-too")],
    )
    .unwrap();
    assert_eq!(c.name, "yaml-name");
    assert_eq!(c.snapshot_count, 5);
    assert!(!c.strict_reconfig_check);
    assert!(c.warnings.iter().any(|w| w.contains("ignored")));
    std::fs::write(&p, "nmae: x\n").unwrap();
    assert!(run(&["--config-file", p.to_str().unwrap()], &[]).is_err());
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("2h0m0s"), Some(Duration::from_secs(7200)));
    assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_go_duration("100ms"), Some(Duration::from_millis(100)));
    assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_go_duration("5"), None);
}

#[test]
fn auto_compaction_settings() {
    assert_eq!(run(&[], &[]).unwrap().auto_compaction, None);
    let c = run(&["--auto-compaction-retention", "1"], &[]).unwrap();
    assert_eq!(
        c.auto_compaction,
        Some(AutoCompaction::Periodic(Duration::from_secs(3600)))
    );
    let c = run(&["--auto-compaction-retention", "30m"], &[]).unwrap();
    assert_eq!(
        c.auto_compaction,
        Some(AutoCompaction::Periodic(Duration::from_secs(1800)))
    );
    let c = run(
        &[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1000",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.auto_compaction, Some(AutoCompaction::Revision(1000)));
    assert!(run(
        &[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1h"
        ],
        &[]
    )
    .is_err());
    assert!(run(&["--auto-compaction-mode", "hourly"], &[]).is_err());
}

/// conf/etcd.conf is generated from the settings table; regenerate it with
/// `RETCD_WRITE_CONF=1 cargo test -p retcd sample_env_file` after changing a setting.
#[test]
fn conf_etcd_conf_lists_every_supported_setting() {
    let want = super::sample_env_file();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/etcd.conf");
    if std::env::var_os("RETCD_WRITE_CONF").is_some() {
        std::fs::write(&path, &want).expect("write conf/etcd.conf");
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(got == want, "conf/etcd.conf is stale: regenerate it with RETCD_WRITE_CONF=1 cargo test -p retcd conf_etcd_conf");
    // And it is a valid configuration as it stands.
    let env: Vec<(String, String)> = got
        .lines()
        .filter(|l| l.starts_with("ETCD_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    assert!(super::Config::parse(&[], &env).is_ok());
}

/// conf/etcd.yaml, likewise generated (`RETCD_WRITE_CONF=1`), and valid as a --config-file.
#[test]
fn conf_etcd_yaml_matches_and_loads() {
    let want = super::sample_yaml_file();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/etcd.yaml");
    if std::env::var_os("RETCD_WRITE_CONF").is_some() {
        std::fs::write(&path, &want).expect("write conf/etcd.yaml");
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(got == want, "conf/etcd.yaml is stale: regenerate it with RETCD_WRITE_CONF=1 cargo test -p retcd conf_etcd");
    let args = vec!["--config-file".to_string(), path.display().to_string()];
    match super::Config::parse(&args, &[]) {
        Ok(super::Command::Run(c)) => assert_eq!(c.name, "etcd1"),
        Ok(_) => panic!("not a run command"),
        Err(e) => panic!("conf/etcd.yaml does not load: {e}"),
    }
}
