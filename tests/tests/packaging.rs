//! packaging/build.sh makes a .deb that lintian accepts and a .rpm that installs into an empty
//! root; both hold the binaries, etcd.service (which systemd-analyze accepts) and the conffile.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().expect("run");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_unit_files_verify_cleanly() {
    if !have("systemd-analyze") {
        eprintln!("systemd-analyze missing: skipped");
        return;
    }
    let (_, text) = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(repo().join("systemd/etcd.service")));
    assert_eq!(text, "", "systemd-analyze verify etcd.service");
    // systemd-analyze checks that ExecStart exists: the backup units as they would be with
    // our etcd-backup installed (the built binary stands in for /usr/bin/etcd-backup).
    let dir = tempfile::tempdir().unwrap();
    let bin = retcd_tests::our_backup();
    for unit in ["etcd-backup.service", "etcd-backup.timer"] {
        let text = std::fs::read_to_string(repo().join("systemd").join(unit)).unwrap();
        let text = text.replace("/usr/bin/etcd-backup", &bin.display().to_string());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    for unit in ["etcd-backup.service", "etcd-backup.timer"] {
        let (_, text) = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(unit)));
        assert_eq!(text, "", "systemd-analyze verify {unit}");
    }
}

#[test]
fn packages_build_and_hold_what_an_operator_needs() {
    let (ok, log) =
        run(Command::new(repo().join("packaging/build.sh")).env("RETCD_PROFILE", "dev"));
    assert!(ok, "{log}");
    let version = "0.1.0";
    let out = repo().join("target/packages");
    let deb = out.join(format!("retcd_{version}-1_amd64.deb"));
    let (ok, contents) = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    assert!(ok, "{contents}");
    for f in [
        "./usr/bin/etcd",
        "./usr/bin/etcdctl",
        "./usr/bin/etcdutl",
        "./usr/bin/etcd-backup",
        "./lib/systemd/system/etcd.service",
        "./lib/systemd/system/etcd-backup.service",
        "./lib/systemd/system/etcd-backup.timer",
        "./etc/etcd/etcd.conf",
        "./etc/etcd/backup.conf",
        "./usr/share/doc/retcd/backup.md",
        "./usr/share/doc/retcd/migrating-from-etcd.md",
        "./usr/share/man/man1/etcd-backup.1.gz",
        "./usr/share/doc/retcd/copyright",
        "./usr/share/doc/retcd/changelog.Debian.gz",
        "./usr/share/man/man1/etcd.1.gz",
    ] {
        assert!(
            contents.contains(f),
            "{f} missing from the .deb:\n{contents}"
        );
    }
    let (_, info) = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for line in [
        "Provides: etcd-server, etcd-client",
        "Conflicts: etcd-server, etcd-client",
        "Replaces: etcd-server, etcd-client",
    ] {
        assert!(info.contains(line), "{line}:\n{info}");
    }
    let (_, conffiles) = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package"));
    assert_eq!(conffiles.trim(), "retcd");
    if have("lintian") {
        let (_, l) = run(Command::new("lintian").arg(&deb));
        let errors: Vec<&str> = l.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(errors.is_empty(), "lintian errors:\n{l}");
    }
    boot_test(&deb);
    if !have("rpm") {
        eprintln!("rpm missing: .rpm checks skipped");
        return;
    }
    let rpm = out.join(format!("retcd-{version}.x86_64.rpm"));
    let (ok, k) = run(Command::new("rpm").arg("-K").arg(&rpm));
    assert!(ok && k.contains("digests OK"), "{k}");
    let (_, cfg) = run(Command::new("rpm").args(["-qp", "--configfiles"]).arg(&rpm));
    assert_eq!(cfg.trim(), "/etc/etcd/backup.conf\n/etc/etcd/etcd.conf");
    let (_, scripts) = run(Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    assert!(scripts.contains("useradd -r -g etcd"), "{scripts}");
    let (_, provides) = run(Command::new("rpm").args(["-qp", "--provides"]).arg(&rpm));
    assert!(provides.contains("etcd"), "{provides}");
    let root = tempfile::tempdir().unwrap();
    let (ok, log) = run(Command::new("rpm")
        .args(["-i", "--nodeps", "--noscripts", "--root"])
        .arg(root.path())
        .arg(&rpm));
    assert!(ok, "{log}");
    for f in [
        "usr/bin/etcd",
        "usr/bin/etcdctl",
        "usr/lib/systemd/system/etcd.service",
        "usr/lib/systemd/system/etcd-backup.timer",
        "usr/bin/etcd-backup",
        "etc/etcd/etcd.conf",
        "etc/etcd/backup.conf",
    ] {
        assert!(root.path().join(f).exists(), "{f} not installed");
    }
    let (ok, v) = run(Command::new(root.path().join("usr/bin/etcd")).arg("--version"));
    assert!(ok && v.starts_with("etcd Version: "), "{v}");
}

/// The .deb in booted Debian containers under systemd-nspawn: one member
/// (tests/systemd/boot-test.sh), then a three-member cluster (cluster-test.sh).
fn boot_test(deb: &Path) {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !have("systemd-nspawn") || !have("debootstrap") {
        eprintln!("not root or no systemd-nspawn/debootstrap: boot test skipped");
        return;
    }
    let (cport, pport) = (retcd_tests::free_port(), retcd_tests::free_port());
    let (ok, log) = run(Command::new("timeout")
        .arg("600")
        .arg(repo().join("tests/systemd/boot-test.sh"))
        .arg(deb)
        .arg(retcd_tests::our_etcdctl())
        .arg(cport.to_string())
        .arg(pport.to_string()));
    assert!(ok && log.contains("boot test passed"), "{log}");
    // Three containers, one cluster, each member under its own systemd.
    let mut cmd = Command::new("timeout");
    cmd.arg("900")
        .arg(repo().join("tests/systemd/cluster-test.sh"))
        .arg(deb)
        .arg(retcd_tests::our_etcdctl());
    for _ in 0..6 {
        cmd.arg(retcd_tests::free_port().to_string());
    }
    let (ok, log) = run(&mut cmd);
    assert!(ok && log.contains("cluster test passed"), "{log}");
}
