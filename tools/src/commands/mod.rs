//! One module per etcdctl command.

pub mod alarm;
pub mod auth;
pub mod check;
pub mod compaction;
pub mod completion;
pub mod defrag;
pub mod del;
pub mod elect;
pub mod endpoint;
pub mod get;
pub mod help;
mod help_text;
pub mod lease;
pub mod lock;
pub mod make_mirror;
pub mod member;
pub mod move_leader;
pub mod put;
pub mod role;
pub mod snapshot;
pub mod txn;
pub mod user;
pub mod version;
pub mod watch;

use std::io::{Read, Write};

use crate::client::Failure;

/// etcdctl's `argOrStdin`: argument `i`, or all of standard input.
pub fn arg_or_stdin(args: &[String], i: usize) -> Option<String> {
    if let Some(a) = args.get(i) {
        return Some(a.clone());
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).ok()?;
    (!s.is_empty()).then_some(s)
}

/// The `[key, range_end)` of `--prefix` / `--from-key` / an explicit end, as clientv3 forms it.
pub fn key_range(
    args: &[String],
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    if prefix && from_key {
        return Err(Failure::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    let key = args
        .first()
        .map(|k| k.as_bytes().to_vec())
        .unwrap_or_default();
    if let Some(end) = args.get(1) {
        if prefix || from_key {
            return Err(Failure::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        return Ok((key, end.as_bytes().to_vec()));
    }
    if prefix {
        if key.is_empty() {
            return Ok((vec![0], vec![0]));
        }
        return Ok((key.clone(), prefix_end(&key)));
    }
    if from_key {
        if key.is_empty() {
            return Ok((vec![0], vec![0]));
        }
        return Ok((key, vec![0]));
    }
    Ok((key, Vec::new()))
}

pub use retcd::concurrency::prefix_end;

/// The single argument of a command, or etcdctl's bad-arguments error `msg`.
pub fn one_arg<'a>(f: &'a crate::flags::Parsed, msg: &str) -> Result<&'a str, Failure> {
    match f.args.as_slice() {
        [a] => Ok(a),
        _ => Err(Failure::bad_args(msg)),
    }
}

/// A lease ID as etcdctl parses it (hexadecimal).
pub fn parse_lease(s: &str) -> Result<i64, Failure> {
    i64::from_str_radix(s, 16).map_err(|_| {
        Failure::bad_args(format!(
            "bad lease ID (strconv.ParseInt: parsing {s:?}: invalid syntax), expecting ID in Hex"
        ))
    })
}

/// Resolves on SIGINT or SIGTERM (never, if the handlers cannot be installed).
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Writes `s` to standard output at once, for commands that keep running after printing.
pub fn print_now(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&crate::printer::output_bytes(s));
    let _ = out.flush();
}

/// A child's exit status as etcdctl 3.5 reports it: `exit status N`, with exit code N.
pub fn exit_status(status: std::process::ExitStatus) -> Result<(), Failure> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(Failure {
            message: format!("exit status {code}"),
            code,
        }),
        (None, Some(sig)) => Err(Failure {
            message: format!("signal: {}", signal_name(sig)),
            code: 255,
        }),
        _ => Err(Failure::error(format!("{status}"))),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        9 => "killed".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        n => format!("signal {n}"),
    }
}

/// etcdctl's `argify`: whitespace-separated words, "double" (with escapes) or 'single' quoted.
///
/// etcdctl 3.4 cuts a single-quoted word to `word[1 : number of words - 1]` (it takes the
/// length of the word list, not of the word); retcd's etcdctl does the same so that its
/// output stays identical.
pub fn argify(line: &str) -> Vec<String> {
    let mut words: Vec<(String, bool)> = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('"') {
            if let Some((w, r)) = txn::go_unquote(rest) {
                words.push((w, false));
                rest = r.trim_start();
                continue;
            }
        }
        if let Some(body) = rest.strip_prefix('\'') {
            if let Some(end) = body.find('\'') {
                words.push((format!("'{}'", &body[..end]), true));
                rest = body[end + 1..].trim_start();
                continue;
            }
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        words.push((rest[..end].to_string(), false));
        rest = rest[end..].trim_start();
    }
    let n = words.len();
    words
        .into_iter()
        .map(|(w, single)| {
            if !single {
                return w;
            }
            let end = n.saturating_sub(1).clamp(1, w.len());
            w.get(1..end).unwrap_or_default().to_string()
        })
        .collect()
}
