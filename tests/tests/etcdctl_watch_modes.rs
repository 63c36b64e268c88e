//! `etcdctl watch` exec mode (`-- command` with `ETCD_WATCH_*`), `ETCDCTL_WATCH_KEY`, and
//! interactive mode (`-i`): our etcdctl and etcdctl 3.4.23 print the same, each against its own
//! fresh member so revisions match too.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use retcd_tests::*;

const ARG_ERRORS: &[Step] = &[
    (&["watch"], None),
    (&["watch", "foo", "--"], None),
    (&["watch", "a", "b", "--prefix"], None),
];

#[test]
fn watch_argument_errors_match() {
    let m = Member::start(Flavor::Retcd);
    let expected = run_steps(&real_etcdctl(), &m.endpoint(), ARG_ERRORS);
    let got = run_steps(&our_etcdctl(), &m.endpoint(), ARG_ERRORS);
    let d = differences(&expected, &got, "real etcdctl", "our etcdctl");
    assert!(d.is_empty(), "{}", d.join("\n"));
    for (env, args) in [
        (("ETCDCTL_WATCH_KEY", "foo"), vec!["watch", "foo"]),
        (("ETCDCTL_WATCH_RANGE_END", "foo"), vec!["watch"]),
    ] {
        let run = |bin: &Path| {
            Command::new(bin)
                .arg(format!("--endpoints={}", m.endpoint()))
                .args(&args)
                .env(env.0, env.1)
                .env("ETCDCTL_API", "3")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let (r, o) = (run(&real_etcdctl()), run(&our_etcdctl()));
        assert_eq!(
            (o.status.code(), err_lines(&o)),
            (r.status.code(), err_lines(&r))
        );
    }
}

/// Runs `bin` with `args` (and `env`) for `secs` seconds while `act` changes keys; returns
/// stdout, stderr lines (no zap JSON) and the exit code.
fn scenario(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin_lines: &[(&str, u64)],
    act: impl Fn(&str),
) -> (String, String, Option<i32>) {
    let m = Member::start(Flavor::Retcd);
    let ep = m.endpoint();
    let mut child = Command::new("timeout")
        .arg("-s")
        .arg("INT")
        .arg("4")
        .arg(bin)
        .arg(format!("--endpoints={ep}"))
        .args(args)
        .envs(env.iter().copied())
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    for (line, pause_ms) in stdin_lines {
        writeln!(stdin, "{line}").unwrap();
        std::thread::sleep(Duration::from_millis(*pause_ms));
    }
    act(&ep);
    std::thread::sleep(Duration::from_millis(700));
    if !stdin_lines.is_empty() {
        drop(stdin);
    } else {
        std::mem::forget(stdin);
    }
    let o = child.wait_with_output().unwrap();
    (out(&o), err_lines(&o), o.status.code())
}

fn same_both(
    args: &[&str],
    env: &[(&str, &str)],
    stdin_lines: &[(&str, u64)],
    act: impl Fn(&str) + Copy,
) -> (String, String, Option<i32>) {
    let real = scenario(&real_etcdctl(), args, env, stdin_lines, act);
    let ours = scenario(&our_etcdctl(), args, env, stdin_lines, act);
    assert_eq!(ours, real, "our etcdctl vs etcdctl 3.4.23 for {args:?}");
    ours
}

#[test]
fn exec_mode_runs_the_command_per_event_with_etcd_watch_env() {
    let cmd =
        r#"echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE""#;
    let (out, _, _) = same_both(&["watch", "wx", "--", "sh", "-c", cmd], &[], &[], |ep| {
        etcdctl(ep, &["put", "wx", "hello \"w\""], None);
        etcdctl(ep, &["del", "wx"], None);
    });
    assert_eq!(
        out,
        "PUT\nwx\nhello \"w\"\n2 \"PUT\" \"wx\" \"hello \\\"w\\\"\"\nDELETE\nwx\n\n3 \"DELETE\" \"wx\" \"\"\n"
    );
    // The key from the environment; a failing command ends the watch with its error.
    let (out, err, code) = same_both(
        &[
            "watch",
            "--",
            "sh",
            "-c",
            "echo \"E $ETCD_WATCH_KEY\"; exit 2",
        ],
        &[("ETCDCTL_WATCH_KEY", "wy")],
        &[],
        |ep| {
            etcdctl(ep, &["put", "wy", "1"], None);
        },
    );
    assert_eq!(out, "PUT\nwy\n1\nE \"wy\"\n");
    assert_eq!(
        err,
        "command [\"sh\" \"-c\" \"echo \\\"E $ETCD_WATCH_KEY\\\"; exit 2\"] error (exit status 2)\n"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn interactive_mode_adds_watches_and_asks_for_progress() {
    let lines: &[(&str, u64)] = &[
        ("watch iw1", 300),
        ("bogus", 0),
        ("", 0),
        ("watch", 0),
        ("watch --prefix iw2 -- echo got", 300),
    ];
    let (out, err, code) = same_both(&["watch", "-i"], &[], lines, |ep| {
        etcdctl(ep, &["put", "iw1", "a"], None);
        etcdctl(ep, &["put", "iw2x", "b"], None);
    });
    assert_eq!(out, "PUT\niw1\na\nPUT\niw2x\nb\ngot\n");
    assert_eq!(
        err,
        "Invalid command bogus (only support watch)\nInvalid command:  (watch and progress supported)\nInvalid command watch (command type or key is not provided)\nError: Error reading watch request line: EOF\n"
    );
    assert_eq!(code, Some(3));
    let (out, _, _) = same_both(
        &["watch", "-i"],
        &[],
        &[("watch p1", 200), ("progress", 300)],
        |_| {},
    );
    assert_eq!(out, "progress notify: 1\n");
}
