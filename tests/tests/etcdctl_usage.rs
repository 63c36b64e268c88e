//! etcdctl's usage texts: `COMMAND --help`, `help COMMAND`, and what a flag error prints
//! (the error twice on stderr, the command's usage on stdout, exit 1), for every command
//! etcdctl 3.4.23 lists, compared with our etcdctl byte for byte. Masked: the version lines
//! (ours is etcdctl 3.5.17) and the lines of what only ours has (`auth status`,
//! make-mirror's `--dest-user`, `--dest-password`, `--max-txn-ops`, `--state-key`; etcdctl
//! 3.5's `get --count-only`, `watch --progress-notify`, `snapshot restore --bump-revision`
//! and `--mark-compacted`) and of
//! what only etcdctl 3.4.23 has (`migrate`, fish and powershell completion; the `completion`
//! group's own usage, whose column widths depend on them, is left out).

use retcd_tests::*;

/// Lines that differ by design.
fn mask(s: &str) -> String {
    let ours_only = [
        // etcdctl 3.4.23's own that ours leaves out: migrate (v2), fish and powershell.
        "\tmigrate\t",
        "\tcompletion fish\t",
        "\tcompletion powershell\t",
        "auth status\t",
        "\tstatus\tReturns authentication status",
        "--dest-user=",
        "--dest-password=",
        "--max-txn-ops=",
        "--state-key=",
        "--count-only[",
        "--progress-notify[",
        "--bump-revision=",
        "--mark-compacted[",
    ];
    let mut out = String::new();
    let mut lines = s.split_inclusive('\n').peekable();
    while let Some(l) = lines.next() {
        if ours_only.iter().any(|m| l.contains(m)) {
            continue;
        }
        out.push_str(l);
        if l == "VERSION:\n" || l == "API VERSION:\n" {
            lines.next();
            out.push_str("\t<version>\n");
        }
    }
    out
}

/// Runs `args` through both etcdctls: how their outcomes differ (stdout masked).
fn compare(args: &[&str]) -> Vec<String> {
    let masked = |o: Outcome| (o.0, o.1, mask(&o.2), o.3);
    differences(
        &[masked(outcome(&real_etcdctl(), &[], args))],
        &[masked(outcome(&our_etcdctl(), &[], args))],
        "etcdctl 3.4.23",
        "ours",
    )
}

/// Every command path etcdctl 3.4.23 lists, as retcd's etcdctl has them.
fn command_paths() -> Vec<String> {
    let help = outcome(&real_etcdctl(), &[], &["--help"]).2;
    let mut paths = vec![String::new()];
    let mut in_commands = false;
    for line in help.lines() {
        if line == "COMMANDS:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.is_empty() {
                break;
            }
            let path = line.trim_start_matches('\t').split('\t').next().unwrap();
            if ["migrate", "completion fish", "completion powershell"].contains(&path) {
                continue;
            }
            let group = path.split(' ').next().unwrap().to_string();
            if path.contains(' ') && !paths.contains(&group) && group != "completion" {
                paths.push(group);
            }
            paths.push(path.to_string());
        }
    }
    paths
}

#[test]
fn usage_texts_match_etcdctl() {
    let paths = command_paths();
    for p in [
        "",
        "get",
        "member",
        "member add",
        "lease keep-alive",
        "help",
    ] {
        assert!(paths.iter().any(|q| q == p), "{p:?} missing from {paths:?}");
    }
    let mut diffs = Vec::new();
    for path in &paths {
        let words: Vec<&str> = path.split(' ').filter(|w| !w.is_empty()).collect();
        let mut cases: Vec<Vec<&str>> = vec![
            [words.as_slice(), &["--help"]].concat(),
            [words.as_slice(), &["--bogus"]].concat(),
        ];
        if !path.is_empty() && path != "completion" {
            cases.push([&["help"], words.as_slice()].concat());
        }
        for args in cases {
            diffs.extend(compare(&args));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn flag_value_errors_match_etcdctl() {
    let cases: &[&[&str]] = &[
        &["get", "--limit=abc", "k"],
        &["get", "--limit", "99999999999999999999", "k"],
        &["get", "--limit"],
        &["get", "-w"],
        &["watch", "--rev=x", "k"],
        &["txn", "--interactive=maybe"],
        &["txn", "-i=maybe"],
        &["endpoint", "status", "--cluster=x"],
        &["--dial-timeout=x", "get", "k"],
        &["get", "k", "--dial-timeout=0x"],
        &["get", "k", "--command-timeout=5"],
        &["-x", "get", "k"],
        &["--bogus", "get"],
        &["--bogus=1", "get", "k"],
        &["member", "add", "--learner=2", "n"],
        &["lock", "--ttl=1.5", "l"],
        &["help", "nosuch"],
        // A sibling subcommand's flag is not this one's.
        &["user", "get", "--no-password", "u"],
        &["lease", "list", "--keys"],
        &["member", "list", "--learner"],
        &["completion", "bash", "--bogus"],
    ];
    let mut diffs = Vec::new();
    for args in cases {
        let mut a = vec!["--endpoints=127.0.0.1:1", "--dial-timeout=1s"];
        a.extend_from_slice(args);
        diffs.extend(compare(&a));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `--debug` lists every global setting as its ETCDCTL_* variable on stderr first (gRPC's own
/// log lines that follow in etcdctl's output are not copied).
#[test]
fn debug_lists_the_settings_as_etcdctl_does() {
    let args = [
        "--endpoints=127.0.0.1:1,127.0.0.1:2",
        "--dial-timeout=1500ms",
        "--command-timeout=90s",
        "--debug",
        "--user=u:p",
        "-w",
        "json",
        "get",
        "k",
    ];
    let settings = |o: Outcome| -> String {
        o.3.lines()
            .filter(|l| l.starts_with("ETCDCTL_"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let want = settings(outcome(&real_etcdctl(), &[], &args));
    assert!(want.contains("ETCDCTL_COMMAND_TIMEOUT=1m30s\n"), "{want}");
    assert_eq!(want, settings(outcome(&our_etcdctl(), &[], &args)));
}
