//! `etcdctl check perf|datascale` and `completion`.

use retcd_tests::*;

#[test]
fn check_datascale_writes_measures_and_cleans_up() {
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    let o = run_ctl(&our_etcdctl(), &ep, &["check", "datascale"], None);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Start data scale check for work load [10000 key-value pairs, 1024 bytes per key-value, 50 concurrent clients]."
    );
    assert!(
        lines[1].starts_with("PASS: Approximate system memory used : ")
            && lines[1].ends_with(" MB."),
        "{text}{}",
        err_lines(&o)
    );
    assert_eq!(o.status.code(), Some(0));
    // Its keys are gone again; a second run is allowed.
    let left = etcdctl(
        &ep,
        &[
            "get",
            "/etcdctl-check-datascale/",
            "--prefix",
            "--count-only",
            "-w",
            "json",
        ],
        None,
    );
    assert_eq!(json_u64(&out(&left), "count"), None, "{}", out(&left));
    // Keys under the prefix: refused, as etcdctl does.
    etcdctl(&ep, &["put", "/etcdctl-check-perf/x", "1"], None);
    for bin in [our_etcdctl(), real_etcdctl()] {
        let o = run_ctl(&bin, &ep, &["check", "perf"], None);
        assert_eq!(
            (o.status.code(), err_lines(&o)),
            (
                Some(3),
                "Error: prefix \"/etcdctl-check-perf/\" has keys. Delete with etcdctl del --prefix /etcdctl-check-perf/ first\n".to_string()
            )
        );
    }
    let r = run_ctl(
        &real_etcdctl(),
        &ep,
        &["check", "perf", "--load=huge"],
        None,
    );
    let o = run_ctl(&our_etcdctl(), &ep, &["check", "perf", "--load=huge"], None);
    assert_eq!(
        (o.status.code(), err_lines(&o)),
        (r.status.code(), err_lines(&r))
    );
}

#[test]
fn check_perf_reports_pass_or_fail_per_criterion() {
    let m = Member::start(Flavor::Retcd);
    // 60 seconds of load, beyond run_ctl's time limit.
    let ep = format!("--endpoints={}", m.endpoint());
    let o = run_tool(&our_etcdctl(), &[ep.as_str(), "check", "perf"]);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}{}", err_lines(&o));
    assert!(lines[0].contains("Throughput"), "{text}");
    assert!(lines[1].contains("Slowest request took"), "{text}");
    assert!(lines[2].contains("Stddev"), "{text}");
    let passed = lines[3] == "PASS";
    assert_eq!(o.status.code(), Some(if passed { 0 } else { 1 }), "{text}");
    assert_eq!(
        passed,
        lines[..3].iter().all(|l| l.starts_with("PASS: ")),
        "{text}"
    );
}

#[test]
fn completion_scripts_complete_commands_and_subcommands() {
    let o = run_tool(&our_etcdctl(), &["completion", "bash"]);
    assert!(o.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("etcdctl.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(etcdctl mem); COMP_CWORD=1; _etcdctl; echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(etcdctl snapshot s); COMP_CWORD=2; _etcdctl; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let r = std::process::Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "member\nsave status\n");
    let z = run_tool(&our_etcdctl(), &["completion", "zsh"]);
    assert!(out(&z).starts_with("#compdef etcdctl\n"));
    let bad = run_tool(&our_etcdctl(), &["completion", "fish"]);
    assert_eq!(bad.status.code(), Some(128));
}

/// What only our etcdctl has shows in its usage texts too (the rest is compared with
/// etcdctl 3.4.23's in etcdctl_usage.rs).
#[test]
fn help_shows_our_own_commands_and_flags() {
    let o = run_tool(&our_etcdctl(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).contains("\tauth status\t\tReturns authentication status\n"),
        "{}",
        out(&o)
    );
    let m = out(&run_tool(&our_etcdctl(), &["make-mirror", "--help"]));
    for flag in [
        "      --dest-user=\"\"\t",
        "      --max-txn-ops=128\t",
        "      --state-key=\"\"\t",
    ] {
        assert!(m.contains(flag), "{flag:?} missing:\n{m}");
    }
    let g = out(&run_tool(&our_etcdctl(), &["auth"]));
    assert!(
        g.contains("\tstatus\tReturns authentication status\n"),
        "{g}"
    );
}
