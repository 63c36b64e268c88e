//! Our client tools over TLS, proven on the referee: a real etcd 3.4.23 that serves clients on
//! https only and demands client certificates (`--client-cert-auth`). Our etcdctl and etcdctl
//! 3.4.23 run the same commands with the same TLS flags (`--cacert/--cert/--key`,
//! `ETCDCTL_*`, `--insecure-skip-tls-verify`, `--insecure-transport=false`) and must print the
//! same, failures included; etcd-bench, etcd-backup and make-mirror's `--dest-*` flags use the
//! same TLS setup.

use std::process::Command;
use std::time::{Duration, Instant};

use retcd_tests::pki::Pki;
use retcd_tests::*;

/// Real etcd serving clients on https with client certificates required.
fn tls_etcd(pki: &Pki) -> Member {
    let mut m = Member::new(Flavor::RealEtcd);
    m.use_base_args = false;
    let url = format!("https://127.0.0.1:{}", m.client_port);
    let peer = m.peer_url();
    m.extra_args = [
        "--name",
        "m1",
        "--data-dir",
        &m.data_dir.display().to_string(),
        "--listen-client-urls",
        &url,
        "--advertise-client-urls",
        &url,
        "--listen-peer-urls",
        &m.peer_listen_url(),
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("m1={peer}"),
        "--cert-file",
        &pki.file("server.pem"),
        "--key-file",
        &pki.file("server.key"),
        "--trusted-ca-file",
        &pki.file("ca.pem"),
        "--client-cert-auth",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    m.launch_nowait();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = outcome(
            &our_etcdctl(),
            &tls_env(pki),
            &["--endpoints", &url, "put", "ready", "1"],
        );
        if o.1 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TLS etcd not serving within 30s: {o:?}; log:\n{}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    m
}

fn tls_env(pki: &Pki) -> Env {
    vec![
        ("ETCDCTL_CACERT".into(), pki.file("ca.pem")),
        ("ETCDCTL_CERT".into(), pki.file("client.pem")),
        ("ETCDCTL_KEY".into(), pki.file("client.key")),
    ]
}

#[test]
fn etcdctl_over_tls_prints_what_etcdctl_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::create(tmp.path());
    let etcd = tls_etcd(&pki);
    let https = format!("https://127.0.0.1:{}", etcd.client_port);
    let bare = format!("127.0.0.1:{}", etcd.client_port);
    let (ca, other_ca) = (pki.file("ca.pem"), pki.file("other-ca.pem"));
    let (cert, key) = (pki.file("client.pem"), pki.file("client.key"));
    let missing = tmp.path().join("missing.pem").display().to_string();
    let env = tls_env(&pki);
    let none: Env = Vec::new();
    let flags = |ep: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec![format!("--endpoints={ep}")];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // (env, args): the same for both etcdctls.
    let cases: Vec<(&Env, Vec<String>)> = vec![
        (&env, flags(&https, &["put", "k", "v"])),
        (&env, flags(&https, &["get", "k", "-w", "json"])),
        (&env, flags(&bare, &["get", "k"])),
        (&env, flags(&bare, &["get", "k", "-w", "fields"])),
        (&env, flags(&https, &["member", "list", "-w", "table"])),
        (
            &env,
            flags(&format!("127.0.0.1:1,{https}"), &["del", "nothing"]),
        ),
        (
            &none,
            flags(
                &https,
                &[
                    "--cacert", &ca, "--cert", &cert, "--key", &key, "put", "a", "1",
                ],
            ),
        ),
        (
            &none,
            flags(
                &https,
                &[
                    "--insecure-skip-tls-verify",
                    "--cert",
                    &cert,
                    "--key",
                    &key,
                    "get",
                    "a",
                ],
            ),
        ),
        // Failures: a server certificate from another CA, no client certificate, plaintext
        // towards a TLS port, the system's roots for a private CA, flags that do not fit.
        (
            &none,
            flags(
                &https,
                &[
                    "--dial-timeout=1s",
                    "--cacert",
                    &other_ca,
                    "--cert",
                    &cert,
                    "--key",
                    &key,
                    "get",
                    "a",
                ],
            ),
        ),
        (
            &none,
            flags(&https, &["--dial-timeout=1s", "--cacert", &ca, "get", "a"]),
        ),
        (&none, flags(&bare, &["--dial-timeout=1s", "get", "a"])),
        (
            &none,
            flags(
                &bare,
                &[
                    "--dial-timeout=1s",
                    "--insecure-transport=false",
                    "--cert",
                    &cert,
                    "--key",
                    &key,
                    "get",
                    "a",
                ],
            ),
        ),
        (&none, flags(&https, &["--cert", &cert, "get", "a"])),
        (&none, flags(&https, &["--key", &key, "get", "a"])),
        (&none, flags(&https, &["--cacert", &missing, "get", "a"])),
    ];
    // Each case runs through both etcdctls back to back, so reads see the same revision
    // (the writes print the same whatever the revision: `put` OK, `del` of nothing 0).
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for (env, args) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        want.push(outcome(&real_etcdctl(), env, &a));
        got.push(outcome(&our_etcdctl(), env, &a));
    }
    let diffs = differences(&want, &got, "etcdctl 3.4.23", "ours");
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // The cases do what they say (not only the same thing on both sides).
    assert_eq!(want[1].1, 0);
    assert!(want[1].2.contains("\"value\":\"dg==\""), "{:?}", want[1]);
    assert_eq!(want[7].2, "a\n1\n");
    for failed in &want[8..12] {
        assert_eq!(
            (failed.1, failed.3.as_str()),
            (1, "Error: context deadline exceeded\n"),
            "{failed:?}"
        );
    }
    assert_eq!(want[12].1, 128, "{:?}", want[12]);
}

#[test]
fn bench_backup_and_make_mirror_reach_a_tls_member() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::create(tmp.path());
    let etcd = tls_etcd(&pki);
    let https = format!("https://127.0.0.1:{}", etcd.client_port);
    let tls = [
        "--cacert".to_string(),
        pki.file("ca.pem"),
        "--cert".into(),
        pki.file("client.pem"),
        "--key".into(),
        pki.file("client.key"),
    ];

    // etcd-bench: etcd benchmark's TLS flags.
    let bench = our_tool("etcd-bench");
    let o = Command::new("timeout")
        .arg("60")
        .arg(&bench)
        .arg("--endpoints")
        .arg(&https)
        .args(&tls)
        .args(["put", "--total", "50"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out(&o).contains("Total:"), "{}", out(&o));

    // etcd-backup save from the TLS member into a directory store.
    let store = format!("file://{}", tmp.path().join("store").display());
    let o = Command::new("timeout")
        .arg("120")
        .arg(our_backup())
        .args(["save", "--store", &store, "--endpoints", &https])
        .args(&tls)
        .env("ETCD_BACKUP_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("timeout")
        .arg("60")
        .arg(our_backup())
        .args(["list", "--store", &store])
        .env("ETCD_BACKUP_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(out(&o).lines().count(), 1, "{}", out(&o));

    // make-mirror from a plaintext retcd member into the TLS member (--dest-* flags).
    let src = Member::start(Flavor::Retcd);
    etcdctl(&src.endpoint(), &["put", "/m/a", "1"], None);
    let mirror = Running::start(
        &our_etcdctl(),
        &src.endpoint(),
        &[
            "make-mirror",
            "--dest-cacert",
            &pki.file("ca.pem"),
            "--dest-cert",
            &pki.file("client.pem"),
            "--dest-key",
            &pki.file("client.key"),
            &https,
        ],
    );
    let env = tls_env(&pki);
    let dest_get = || {
        outcome(
            &our_etcdctl(),
            &env,
            &["--endpoints", &https, "get", "/m/a", "--print-value-only"],
        )
        .2
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while dest_get() != "1\n" {
        assert!(Instant::now() < deadline, "not mirrored: {:?}", dest_get());
        std::thread::sleep(Duration::from_millis(100));
    }
    mirror.kill9();
}
