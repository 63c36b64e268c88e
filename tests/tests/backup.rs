//! `etcd-backup` (SCENARIOS: hourly backups to S3, rebuild from the newest archive): save,
//! list, fetch, verify, prune and restore against a directory store and against a real
//! S3-compatible server (moto) on 127.0.0.1 — including a 200+ MB snapshot with bounded
//! memory, the S3 server going away mid-upload, and corrupted archives.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use retcd_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use retcd_tests::*;

/// Runs our etcd-backup with `args`, no config file and test credentials.
fn backup(args: &[&str]) -> Output {
    backup_cmd(args).output().expect("run etcd-backup")
}

fn backup_cmd(args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.arg("300").arg(our_backup()).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCD_BACKUP_") || k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("ETCD_BACKUP_CONFIG", "/dev/null")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdin(std::process::Stdio::null());
    c
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", err_lines(o));
    out(o)
}

/// `n` keys of `size` incompressible bytes each.
fn put_random(ep: &str, prefix: &str, n: usize, size: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = etcd_client::Client::connect([format!("http://{ep}")], None)
            .await
            .unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..n {
            let mut v = Vec::with_capacity(size);
            while v.len() < size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
            c.put(format!("{prefix}{i:04}"), v, None).await.unwrap();
        }
    });
}

fn cluster_id(ep: &str) -> u64 {
    let s = out(&etcdctl(ep, &["endpoint", "status", "-w", "json"], None));
    json_u64(&s, "cluster_id").expect("cluster_id")
}

/// The names `list` prints (first word of each line).
fn names(store: &[&str]) -> Vec<String> {
    let mut args = vec!["list"];
    args.extend_from_slice(store);
    ok(&backup(&args))
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn directory_store_save_list_fetch_verify_prune_and_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    put_keys(&ep, "k", 5);
    let store_dir = tmp.path().join("store");
    let store = format!("file://{}", store_dir.display());
    let metrics = tmp.path().join("etcd_backup.prom");
    let s = ["--store", store.as_str()];

    // Cron-quiet: nothing on stdout or stderr on success.
    let o = backup(&[
        "save",
        "--store",
        &store,
        "--endpoints",
        &ep,
        "--metrics-file",
        &metrics.display().to_string(),
    ]);
    assert_eq!(
        (o.status.code(), out(&o), err_lines(&o)),
        (Some(0), String::new(), String::new())
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("\netcd_backup_last_run_success 1\n"),
        "{prom}"
    );
    assert!(prom.contains("\netcd_backup_last_revision 6\n"), "{prom}");
    assert!(prom.contains("# TYPE etcd_backup_last_success_timestamp_seconds gauge\n"));

    let list = ok(&backup(&["list", "--store", &store]));
    let fields: Vec<&str> = list.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 4, "{list}");
    let first = fields[0].to_string();
    assert!(first.starts_with("etcd-snapshot-"), "{first}");
    assert!(
        first.ends_with(&format!("-c{:016x}-r6.db.zst", cluster_id(&ep))),
        "{first}"
    );
    assert_eq!(fields[2], "6", "revision column");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store_dir.join(format!("{first}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["revision"], "6");
    assert_eq!(meta["compression"], "zstd");
    assert_eq!(meta["endpoint"], ep.as_str());

    // The fetched snapshot is byte for byte what etcdctl saves from the same state.
    let fetched = tmp.path().join("fetched.db");
    let direct = tmp.path().join("direct.db");
    let o = ok(&backup(&[
        "fetch",
        "--latest",
        "-o",
        &fetched.display().to_string(),
        "--store",
        &store,
    ]));
    assert!(
        o.starts_with(&format!("fetched {store}/{first} into ")),
        "{o}"
    );
    assert!(run_ctl(
        &our_etcdctl(),
        &ep,
        &["snapshot", "save", &direct.display().to_string()],
        None
    )
    .status
    .success());
    let bytes = std::fs::read(&fetched).unwrap();
    assert_eq!(bytes, std::fs::read(&direct).unwrap());
    assert_eq!(meta["uncompressed-size"], bytes.len().to_string().as_str());

    let v = ok(&backup(&["verify", &first, "--store", &store]));
    assert!(v.starts_with(&format!("{first}: OK (revision 6, ")), "{v}");

    // Two more archives; prune keeps the newest and the newest verified one.
    put_keys(&ep, "more", 2);
    ok(&backup(&["save", "--store", &store, "--endpoints", &ep]));
    put_keys(&ep, "more2", 1);
    ok(&backup(&["save", "--store", &store, "--endpoints", &ep]));
    let all = names(&s);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0], first);
    assert!(
        all[1].ends_with("-r8.db.zst") && all[2].ends_with("-r9.db.zst"),
        "{all:?}"
    );
    let dry = ok(&backup(&[
        "prune",
        "--keep-last",
        "1",
        "--dry-run",
        "--store",
        &store,
    ]));
    assert_eq!(
        dry,
        format!(
            "keep {} (newest verified)\nwould delete {}\nkeep {} (newest, last)\n",
            all[0], all[1], all[2]
        )
    );
    assert_eq!(names(&s), all, "a dry run deletes nothing");
    let o = backup(&["prune", "--keep-last", "1", "--store", &store]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), String::new()));
    assert_eq!(names(&s), vec![all[0].clone(), all[2].clone()]);
    assert!(!store_dir.join(format!("{}.json", all[1])).exists());
    let o = backup(&["prune", "--store", &store]);
    assert_eq!(o.status.code(), Some(2), "no policy is a usage error");
    assert!(
        err_lines(&o).contains("prune needs a retention policy"),
        "{}",
        err_lines(&o)
    );

    // One flipped byte in the stored archive: fetch, verify and restore all refuse it (exit 4)
    // and leave nothing behind.
    let damaged = store_dir.join(&all[2]);
    let mut b = std::fs::read(&damaged).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x20;
    std::fs::write(&damaged, b).unwrap();
    let out_file = tmp.path().join("bad.db");
    let o = backup(&[
        "fetch",
        &all[2],
        "-o",
        &out_file.display().to_string(),
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", err_lines(&o));
    assert!(
        err_lines(&o).starts_with(&format!(
            "etcd-backup: fetch failed: archive {} is damaged: ",
            all[2]
        )),
        "{}",
        err_lines(&o)
    );
    assert_eq!(err_lines(&o).lines().count(), 1);
    assert!(!out_file.exists() && !tmp.path().join("bad.db.part").exists());
    let o = backup(&["verify", "--latest", "--store", &store]);
    assert_eq!(o.status.code(), Some(4), "{}", err_lines(&o));
    let dd = tmp.path().join("restored.etcd");
    let o = backup(&[
        "restore",
        "--latest",
        "--data-dir",
        &dd.display().to_string(),
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", err_lines(&o));
    assert!(!dd.exists());
    // The older, intact archive still restores (with etcdutl's revision bump, too).
    let o = backup(&[
        "restore",
        &all[0],
        "--data-dir",
        &dd.display().to_string(),
        "--store",
        &store,
        "--bump-revision",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err_lines(&o));
    assert!(
        err_lines(&o).contains("--mark-compacted required"),
        "{}",
        err_lines(&o)
    );
    let o = ok(&backup(&[
        "restore",
        &all[0],
        "--data-dir",
        &dd.display().to_string(),
        "--store",
        &store,
        "--bump-revision",
        "100",
        "--mark-compacted",
    ]));
    assert!(o.contains(", revision 106\n"), "{o}");
}

#[test]
fn one_run_at_a_time_and_clear_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = format!("file://{}", tmp.path().join("store").display());
    let lock = tmp.path().join("lock");
    let mut holder = Command::new("flock")
        .args([&lock.display().to_string(), "sleep", "30"])
        .spawn()
        .expect("flock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let o = backup(&[
        "save",
        "--store",
        &store,
        "--lock-file",
        &lock.display().to_string(),
    ]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(3), "{}", err_lines(&o));
    assert_eq!(
        err_lines(&o),
        format!(
            "etcd-backup: save failed: another etcd-backup run for this store holds {}; not starting a second one\n",
            lock.display()
        )
    );
    let o = backup(&["save"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err_lines(&o).contains("no archive store: give --store"),
        "{}",
        err_lines(&o)
    );
    let o = backup(&["list", "--store", "ftp://x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = backup(&["fetch", "--latest", "--store", &store]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err_lines(&o).contains("fetch needs -o FILE"),
        "{}",
        err_lines(&o)
    );
    // Settings from the config file (and the environment) when no flag gives them.
    let conf = tmp.path().join("backup.conf");
    std::fs::write(
        &conf,
        format!("# test\nETCD_BACKUP_STORE=\"{store}\"\nETCD_BACKUP_WRITE_OUT=json\n"),
    )
    .unwrap();
    let o = backup_cmd(&["list"])
        .env("ETCD_BACKUP_CONFIG", &conf)
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), "[]\n".to_string()),
        "{}",
        err_lines(&o)
    );
    let o = backup_cmd(&["list", "-w", "simple"])
        .env("ETCD_BACKUP_CONFIG", &conf)
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), String::new()),
        "a flag wins"
    );
}

#[test]
fn the_shipped_backup_conf_names_only_real_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(repo.join("conf/backup.conf")).unwrap();
    // Every setting, commented or not, switched on; the store pointed at a scratch dir.
    let mut on: String = text
        .lines()
        .map(|l| {
            l.strip_prefix('#')
                .filter(|r| r.starts_with("ETCD_BACKUP_"))
                .unwrap_or(l)
        })
        .filter(|l| !l.starts_with("ETCD_BACKUP_S3_") && !l.starts_with("ETCD_BACKUP_USER"))
        .map(|l| format!("{l}\n"))
        .collect();
    on.push_str(&format!(
        "ETCD_BACKUP_STORE=file://{}\n",
        tmp.path().display()
    ));
    let conf = tmp.path().join("backup.conf");
    std::fs::write(&conf, on).unwrap();
    let o = backup_cmd(&["prune", "--dry-run"])
        .env("ETCD_BACKUP_CONFIG", &conf)
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), err_lines(&o)),
        (Some(0), String::new()),
        "the sample's retention is a valid policy and every key is known"
    );
    // As shipped (no store set), a run says what is missing.
    let o = backup_cmd(&["save"])
        .env("ETCD_BACKUP_CONFIG", repo.join("conf/backup.conf"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err_lines(&o).contains("no archive store"),
        "{}",
        err_lines(&o)
    );
}

#[test]
fn s3_archives_rebuild_a_quorum_lost_three_member_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    s3.create_bucket("retcd-backups");
    let store = "s3://retcd-backups/prod/etcd";
    let s3args = ["--store", store, "--s3-endpoint", &s3.endpoint()];
    let with = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&s3args);
        backup(&v)
    };
    let mut c = Cluster::start(Flavor::Retcd, 3);
    let ep = c.members[0].endpoint();
    put_keys(&ep, "dr/", 20);
    // The first endpoint is dead: any healthy member gives the snapshot.
    let dead = format!("127.0.0.1:{}", free_port());
    let eps = format!("{dead},{}", c.endpoints());
    let o = ok(&with(&["save", "--endpoints", &eps, "-v"]));
    assert!(
        o.starts_with(&format!("saved {store}/etcd-snapshot-")),
        "{o}"
    );
    assert!(o.contains(": revision 21, snapshot "), "{o}");
    let first = names(&s3args)[0].clone();

    // Stored under its name only, with its metadata; nothing left of the upload.
    let seen = s3.py("r = s.list_objects_v2(Bucket='retcd-backups')\n\
         print(json.dumps([o['Key'] for o in r.get('Contents', [])]))\n\
         print(json.dumps(s.list_multipart_uploads(Bucket='retcd-backups').get('Uploads', [])))");
    assert_eq!(seen, format!("[\"prod/etcd/{first}\"]\n[]\n"));
    let fetched = tmp.path().join("f.db");
    ok(&with(&[
        "fetch",
        &first,
        "-o",
        &fetched.display().to_string(),
    ]));
    let meta = s3.py(&format!(
        "print(json.dumps(s.head_object(Bucket='retcd-backups', Key='prod/etcd/{first}')['Metadata'], sort_keys=True))"
    ));
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let sha = {
        let o = Command::new("sha256sum").arg(&fetched).output().unwrap();
        out(&o).split(' ').next().unwrap_or("").to_string()
    };
    assert_eq!(meta["sha256"], sha.as_str());
    assert_eq!(meta["revision"], "21");
    assert_eq!(meta["compression"], "zstd");
    assert_eq!(
        meta["cluster-id"],
        format!("{:x}", cluster_id(&ep)).as_str()
    );
    assert_eq!(meta["retcd-version"], "3.5.17");
    assert!(meta["member-id"].as_str().is_some_and(|m| !m.is_empty()));

    put_keys(&ep, "dr/late", 5);
    ok(&with(&["save", "--endpoints", &c.endpoints()]));
    let v = ok(&with(&["verify", "--latest"]));
    assert!(v.contains(": OK (revision 26, "), "{v}");
    let archives = names(&s3args);
    assert_eq!(archives.len(), 2);
    let o = ok(&with(&["list", "-w", "json"]));
    let j: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(j[1]["name"], archives[1].as_str());
    assert_eq!(j[1]["revision"], 26);
    // Retention in S3: the older archive goes, with nothing else left behind.
    let o = ok(&with(&["prune", "--keep-last", "1", "-v"]));
    assert_eq!(
        o,
        format!(
            "deleted {}\nkeep {} (newest, newest verified, last)\n",
            archives[0], archives[1]
        )
    );
    let seen = s3.py("r = s.list_objects_v2(Bucket='retcd-backups')\n\
         print(json.dumps(sorted(o['Key'] for o in r.get('Contents', []))))");
    assert_eq!(
        seen,
        format!(
            "[\"prod/etcd/.verified/{n}\", \"prod/etcd/{n}\"]\n",
            n = archives[1]
        )
    );

    let old_cluster = cluster_id(&ep);
    // Quorum lost: two members die, the third is stopped.
    c.members[1].kill9();
    c.members[2].kill9();
    c.members[0].terminate();

    let mut members = Cluster::prepare(Flavor::Retcd, 3, &[]);
    let ic = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let outdir = tmp.path().join("rebuilt");
    let o = ok(&with(&[
        "restore-cluster",
        "--latest",
        "--initial-cluster",
        &ic,
        "--initial-cluster-token",
        "rebuilt",
        "--output-dir",
        &outdir.display().to_string(),
    ]));
    assert!(
        o.starts_with(&format!(
            "Restored 3 members from {store}/{} into ",
            archives[1]
        )),
        "{o}"
    );
    for m in &mut members {
        std::fs::rename(outdir.join(format!("{}.etcd", m.name)), &m.data_dir).unwrap();
    }
    let n = Cluster::launch(members);
    let ep2 = n.members[2].endpoint();
    let keys = out(&etcdctl(
        &ep2,
        &["get", "dr/", "--prefix", "--keys-only"],
        None,
    ));
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 25);
    let g = out(&etcdctl(&ep2, &["get", "dr/late004", "-w", "json"], None));
    assert_eq!(json_u64(&g, "revision"), Some(26));
    assert_eq!(json_u64(&g, "mod_revision"), Some(26));
    assert_ne!(
        cluster_id(&ep2),
        old_cluster,
        "a restored cluster gets a new ID"
    );
}

#[test]
fn s3_over_tls_with_a_private_ca_encryption_and_storage_class() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start_tls(tmp.path());
    s3.create_bucket("retcd-tls");
    let m = Member::start(Flavor::Retcd);
    put_keys(&m.endpoint(), "t", 3);
    let ep = s3.endpoint();
    let base = [
        "save",
        "--endpoints",
        &m.endpoint(),
        "--store",
        "s3://retcd-tls/x",
        "--s3-endpoint",
        &ep,
    ];
    // Without the CA the server's certificate is not trusted: nothing is uploaded.
    let o = backup(&base);
    assert_eq!(o.status.code(), Some(1), "{}", err_lines(&o));
    assert_eq!(err_lines(&o).lines().count(), 1, "{}", err_lines(&o));
    assert!(
        err_lines(&o).to_lowercase().contains("certificate"),
        "{}",
        err_lines(&o)
    );
    let ca = s3.ca.clone().unwrap();
    let mut args = base.to_vec();
    args.extend_from_slice(&[
        "--s3-ca-file",
        ca.to_str().unwrap(),
        "--s3-sse",
        "AES256",
        "--s3-storage-class",
        "STANDARD_IA",
    ]);
    ok(&backup(&args));
    let shown = s3.py(
        "k = [o['Key'] for o in s.list_objects_v2(Bucket='retcd-tls')['Contents']]\n\
         h = s.head_object(Bucket='retcd-tls', Key=k[0])\n\
         print(len(k), k[0].startswith('x/etcd-snapshot-'), h.get('ServerSideEncryption'), h.get('StorageClass'))",
    );
    assert_eq!(shown, "1 True AES256 STANDARD_IA\n");
    let o = backup(&[
        "verify",
        "--latest",
        "--store",
        "s3://retcd-tls/x",
        "--s3-endpoint",
        &ep,
        "--s3-ca-file",
        ca.to_str().unwrap(),
    ]);
    assert!(ok(&o).contains(": OK (revision 4, "), "{}", out(&o));
    let o = backup(&[
        "list",
        "--store",
        "s3://retcd-tls/x",
        "--s3-endpoint",
        &ep,
        "--s3-sse",
        "bogus",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err_lines(&o));
}

#[test]
fn s3_damaged_archive_is_caught_by_fetch_verify_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    s3.create_bucket("retcd-bk");
    let m = Member::start(Flavor::Retcd);
    put_keys(&m.endpoint(), "x", 10);
    let s3args = ["--store", "s3://retcd-bk", "--s3-endpoint", &s3.endpoint()];
    let with = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&s3args);
        backup(&v)
    };
    ok(&with(&["save", "--endpoints", &m.endpoint()]));
    let name = names(&s3args)[0].clone();
    // Flip one byte of the stored object, keeping its metadata.
    s3.py(&format!(
        "o = s.get_object(Bucket='retcd-bk', Key='{name}')\n\
         d = bytearray(o['Body'].read()); d[len(d) // 2] ^= 1\n\
         s.put_object(Bucket='retcd-bk', Key='{name}', Body=bytes(d), Metadata=o['Metadata'])"
    ));
    let f = tmp.path().join("f.db");
    for args in [
        vec!["fetch", name.as_str(), "-o", f.to_str().unwrap()],
        vec!["verify", "--latest"],
    ] {
        let o = with(&args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", err_lines(&o));
        assert!(
            err_lines(&o).contains(&format!("archive {name} is damaged")),
            "{}",
            err_lines(&o)
        );
    }
    assert!(!f.exists());
    let dd = tmp.path().join("d.etcd");
    let o = with(&["restore", "--latest", "--data-dir", dd.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", err_lines(&o));
    assert!(!dd.exists());
}

/// Bytes `etcd-backup save` may hold at once: parts in flight plus the one being filled
/// (3 × 16 MiB by default), zstd's window, the runtime. A 200+ MB snapshot must not fit.
const MAX_RSS_KIB: u64 = 150 * 1024;

#[test]
fn s3_large_snapshot_bounded_memory_and_server_gone_mid_upload() {
    let s3 = S3Server::start();
    s3.create_bucket("retcd-big");
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    put_random(&ep, "big/", 210, 1 << 20);

    // A 200+ MB snapshot, streamed: peak RSS far below the snapshot size.
    let direct = [
        "--store",
        "s3://retcd-big/etcd",
        "--s3-endpoint",
        &s3.endpoint(),
    ];
    let mut args = vec!["save", "--endpoints", &ep, "-v"];
    args.extend_from_slice(&direct);
    let (o, rss_kib) = run_measured(&mut backup_cmd(&args), Duration::from_secs(300));
    let saved = ok(&o);
    let size: u64 = saved
        .split(", snapshot ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!("saved a {size}-byte snapshot with a peak RSS of {rss_kib} KiB");
    assert!(size > 210 << 20, "{saved}");
    assert!(
        rss_kib < MAX_RSS_KIB,
        "peak RSS {rss_kib} KiB for a {size}-byte snapshot"
    );
    let good = names(&direct);
    assert_eq!(good.len(), 1);

    // The S3 server goes away mid-upload (every connection cut, new ones refused, through a
    // proxy, so the server's own state can be inspected afterwards).
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", s3.port).parse().unwrap();
    let proxy = proxy::Proxy::start(([127, 0, 0, 1], 0).into(), target);
    let via = format!("http://{}", proxy.listen);
    let mut args = vec![
        "save",
        "--endpoints",
        &ep,
        "--part-size",
        "5",
        "--s3-max-attempts",
        "2",
    ];
    let proxied = [
        "--store",
        "s3://retcd-big/etcd",
        "--s3-endpoint",
        via.as_str(),
    ];
    args.extend_from_slice(&proxied);
    let child = backup_cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let parts = s3.py(
            "u = s.list_multipart_uploads(Bucket='retcd-big').get('Uploads', [])\n\
             print(sum(len(s.list_parts(Bucket='retcd-big', Key=x['Key'], UploadId=x['UploadId']).get('Parts', [])) for x in u))",
        );
        if parts.trim().parse::<u32>().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no upload in progress seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.block(None);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err_lines(&o));
    let e = err_lines(&o);
    assert_eq!(e.lines().count(), 1, "one line for cron: {e}");
    assert!(e.starts_with("etcd-backup: save failed: "), "{e}");
    assert!(e.contains("the next run removes it"), "{e}");
    // No new archive is visible; the orphaned upload could not be aborted while the server
    // was gone, and the next run removes it.
    assert_eq!(names(&direct), good);
    proxy.heal();
    ok(&backup(&args));
    let after = names(&direct);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], good[0]);
    let left = s3.py(
        "print(len(s.list_multipart_uploads(Bucket='retcd-big').get('Uploads', [])))\n\
         print(len(s.list_objects_v2(Bucket='retcd-big', Prefix='etcd/.incomplete/').get('Contents', [])))",
    );
    assert_eq!(left, "0\n0\n");
}

/// An archive saved from real etcd holds etcd's own snapshot: fetched, etcd's tools read it;
/// verified and restored, it becomes a retcd member with etcd's keys and revisions.
#[test]
fn archives_of_real_etcd_are_read_by_etcds_tools_and_restore_into_retcd() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Member::start(Flavor::RealEtcd);
    put_keys(&m.endpoint(), "r", 4);
    let store = format!("file://{}", tmp.path().join("st").display());
    let o = ok(&backup(&[
        "save",
        "--store",
        &store,
        "--endpoints",
        &m.endpoint(),
        "-v",
    ]));
    assert!(o.contains(": revision 5, snapshot "), "{o}");
    let f = tmp.path().join("r.db");
    ok(&backup(&[
        "fetch",
        "--latest",
        "-o",
        f.to_str().unwrap(),
        "--store",
        &store,
    ]));
    let st = run_tool(
        &real_etcdctl(),
        &["snapshot", "status", f.to_str().unwrap(), "-w", "json"],
    );
    assert_eq!(
        json_u64(&out(&st), "revision"),
        Some(5),
        "{}",
        err_lines(&st)
    );
    let v = ok(&backup(&["verify", "--latest", "--store", &store]));
    assert!(v.contains(": OK (revision 5, "), "{v}");
    let mut ours = Member::new(Flavor::Retcd);
    ok(&backup(&[
        "restore",
        "--latest",
        "--data-dir",
        &ours.data_dir.display().to_string(),
        "--name",
        &ours.name.clone(),
        "--initial-cluster",
        &format!("{}={}", ours.name, ours.peer_url()),
        "--initial-advertise-peer-urls",
        &ours.peer_url(),
        "--store",
        &store,
    ]));
    ours.launch();
    let get = ["get", "r", "--prefix", "-w", "json"];
    let strip = |s: String| s[s.find("\"kvs\"").unwrap_or(0)..].to_string();
    assert_eq!(
        strip(out(&ours.etcdctl(&get))),
        strip(out(&m.etcdctl(&get)))
    );
}
