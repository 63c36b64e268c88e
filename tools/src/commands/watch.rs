//! `etcdctl watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`:
//! events as they happen, until interrupted or canceled by the server (exit code 5). With a
//! command after `--`, runs it once per event with `ETCD_WATCH_*` in its environment. With
//! `-i`, reads `watch ...` and `progress` lines from standard input.

use std::collections::{HashMap, VecDeque};
use std::io::Write;

use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::{
    watch_request, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use crate::flags::{self, flag, short, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[
    flag("prefix", Kind::Bool, "false"),
    flag("rev", Kind::Value, "0"),
    flag("prev-kv", Kind::Bool, "false"),
    flag("progress-notify", Kind::Bool, "false"),
    short("interactive", 'i', Kind::Bool, "false"),
];

/// etcdctl's exit codes.
const EXIT_INVALID_INPUT: i32 = 3;
const EXIT_INTERRUPTED: i32 = 5;

const BAD_ARGS_NUM: &str = "bad number of arguments";
const BAD_ARGS_CONFLICT_ENV: &str = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEPARATOR: &str = "bad number of arguments (found separator --, but no commands)";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// One watch to create: its key range, options and the command to run per event.
struct Spec1 {
    create: WatchCreateRequest,
    exec: Vec<String>,
}

/// The key arguments (with `ETCDCTL_WATCH_KEY`/`_RANGE_END` put first) into a create request.
fn create_request(
    f: &Parsed,
    mut args: Vec<String>,
    env_key: &str,
    env_range: &str,
) -> Result<WatchCreateRequest, Failure> {
    if !env_key.is_empty() {
        let mut ranges = vec![env_key.to_string()];
        if !env_range.is_empty() {
            ranges.push(env_range.to_string());
        }
        ranges.append(&mut args);
        args = ranges;
    }
    let Some(key) = args.first() else {
        return Err(Failure::bad_args(BAD_ARGS_NUM));
    };
    let prefix = f.bool("prefix");
    let mut key = key.as_bytes().to_vec();
    let mut range_end = Vec::new();
    if args.len() == 2 {
        if prefix {
            return Err(Failure::bad_args(
                "`range_end` and `--prefix` are mutually exclusive",
            ));
        }
        range_end = args[1].as_bytes().to_vec();
    }
    if prefix {
        if key.is_empty() {
            key = vec![0];
            range_end = vec![0];
        } else {
            range_end = super::prefix_end(&key);
        }
    }
    let start_revision: i64 = f
        .get("rev")
        .parse()
        .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --rev", f.get("rev"))))?;
    Ok(WatchCreateRequest {
        key,
        range_end,
        start_revision,
        prev_kv: f.bool("prev-kv"),
        progress_notify: f.bool("progress-notify"),
        ..Default::default()
    })
}

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let (env_key, env_range) = (env("ETCDCTL_WATCH_KEY"), env("ETCDCTL_WATCH_RANGE_END"));
    if env_key.is_empty() && !env_range.is_empty() {
        return Err(Failure::bad_args(format!(
            "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={env_range:?}"
        )));
    }
    if f.bool("interactive") {
        return interactive(f, format, &env_key, &env_range).await;
    }
    let (watch_args, exec) = match f.dashdash {
        Some(n) => (f.args[..n].to_vec(), f.args[n..].to_vec()),
        None => (f.args.clone(), Vec::new()),
    };
    if f.dashdash.is_some() && exec.is_empty() {
        return Err(Failure::bad_args(BAD_ARGS_SEPARATOR));
    }
    if f.dashdash.is_none() && watch_args.is_empty() && env_key.is_empty() {
        return Err(Failure::bad_args(BAD_ARGS_NUM));
    }
    if !env_key.is_empty() && !watch_args.is_empty() {
        return Err(Failure::bad_args(BAD_ARGS_CONFLICT_ENV));
    }
    let create = create_request(f, watch_args, &env_key, &env_range)?;
    let conn = Conn::open(f).await?;
    let mut w = Watches::new(f.bool("hex"), format);
    w.pending.push_back(exec);
    let (tx, mut stream) = conn.watch(create, 4).await?;
    while let Some(item) = stream.next().await {
        let r = item.map_err(|s| Failure::error(status_message(&s)))?;
        let canceled = r.canceled;
        w.show(&r).await?;
        if canceled {
            break;
        }
    }
    drop(tx);
    Err(Failure {
        message: "watch is canceled by the server".into(),
        code: EXIT_INTERRUPTED,
    })
}

/// The watches of one stream and the command each runs per event.
struct Watches {
    is_hex: bool,
    format: Format,
    /// Commands of created-but-unconfirmed watches, in request order.
    pending: VecDeque<Vec<String>>,
    exec: HashMap<i64, Vec<String>>,
}

impl Watches {
    fn new(is_hex: bool, format: Format) -> Watches {
        Watches {
            is_hex,
            format,
            pending: VecDeque::new(),
            exec: HashMap::new(),
        }
    }

    async fn create(&mut self, tx: &tokio::sync::mpsc::Sender<WatchRequest>, s: Spec1) {
        self.pending.push_back(s.exec);
        let _ = tx
            .send(WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(s.create)),
            })
            .await;
    }

    /// Prints one response as clientv3's watch channel delivers it (created responses are
    /// not delivered), then runs the watch's command for each event.
    async fn show(&mut self, r: &WatchResponse) -> Result<(), Failure> {
        if r.created {
            if let Some(exec) = self.pending.pop_front() {
                self.exec.insert(r.watch_id, exec);
            }
            if r.events.is_empty() && !r.canceled {
                return Ok(());
            }
        }
        let progress = r.events.is_empty()
            && !r.canceled
            && r.compact_revision == 0
            && r.header.as_ref().is_some_and(|h| h.revision != 0);
        // A stream-wide progress answer reaches every watch of the stream.
        let copies = if progress && r.watch_id == -1 {
            self.exec.len().max(1)
        } else {
            1
        };
        let mut out = String::new();
        for _ in 0..copies {
            if r.canceled {
                let reason = if r.compact_revision != 0 {
                    "etcdserver: mvcc: required revision has been compacted".to_string()
                } else {
                    r.cancel_reason.clone()
                };
                eprintln!("watch was canceled ({reason})");
            }
            if progress {
                out.push_str(&format!(
                    "progress notify: {}\n",
                    r.header.as_ref().map(|h| h.revision).unwrap_or(0)
                ));
            }
            match self.format {
                Format::Json => {
                    out.push_str(&printer::watch_json(r));
                    out.push('\n');
                }
                Format::Fields => {
                    printer::fields_header(&mut out, &r.header);
                    for e in &r.events {
                        let kind = if e.r#type == 1 { "DELETE" } else { "PUT" };
                        out.push_str(&format!("\"Type\" : {kind}\n"));
                        if let Some(p) = &e.prev_kv {
                            printer::fields_kv_prefixed(&mut out, "Prev", p);
                        }
                        printer::fields_kv(&mut out, &e.kv.clone().unwrap_or_default());
                    }
                }
                Format::Protobuf => {
                    // What clientv3 keeps of the response: no watch ID, no fragment flag.
                    let kept = WatchResponse {
                        header: Some(r.header.unwrap_or_default()),
                        events: r.events.clone(),
                        compact_revision: r.compact_revision,
                        canceled: r.canceled,
                        created: r.created,
                        ..Default::default()
                    };
                    write_out(&printer::output_bytes(&out));
                    out.clear();
                    write_out(&prost::Message::encode_to_vec(&kept));
                }
                Format::Table => {
                    write_out(&printer::output_bytes(&out));
                    return Err(self.format.unsupported());
                }
                Format::Simple => {
                    for e in &r.events {
                        out.push_str(if e.r#type == 1 { "DELETE\n" } else { "PUT\n" });
                        if let Some(p) = &e.prev_kv {
                            printer::simple_kv(&mut out, p, self.is_hex, false);
                        }
                        if let Some(kv) = &e.kv {
                            printer::simple_kv(&mut out, kv, self.is_hex, false);
                        }
                    }
                }
            }
        }
        write_out(&printer::output_bytes(&out));
        let exec = self.exec.get(&r.watch_id).cloned().unwrap_or_default();
        if !exec.is_empty() {
            let rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
            for e in &r.events {
                run_for_event(&exec, rev, e).await?;
            }
        }
        Ok(())
    }
}

/// Writes to standard output at once (watch output is read while the command runs).
fn write_out(b: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(b);
    let _ = stdout.flush();
}

/// Runs the watch command for one event, as etcdctl does: `ETCD_WATCH_REVISION`, and the
/// event type, key and value Go-quoted.
async fn run_for_event(exec: &[String], rev: i64, e: &crate::mvccpb::Event) -> Result<(), Failure> {
    let kv = e.kv.clone().unwrap_or_default();
    let status = tokio::process::Command::new(&exec[0])
        .args(&exec[1..])
        .env("ETCD_WATCH_REVISION", rev.to_string())
        .env(
            "ETCD_WATCH_EVENT_TYPE",
            if e.r#type == 1 {
                "\"DELETE\""
            } else {
                "\"PUT\""
            },
        )
        .env("ETCD_WATCH_KEY", printer::go_quote(&kv.key))
        .env("ETCD_WATCH_VALUE", printer::go_quote(&kv.value))
        .status()
        .await;
    let err = match status {
        Ok(s) if s.success() => return Ok(()),
        Ok(s) => match super::exit_status(s) {
            Err(f) => f.message,
            Ok(()) => return Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("exec: {:?}: executable file not found in $PATH", exec[0])
        }
        Err(e) => e.to_string(),
    };
    let quoted: Vec<String> = exec.iter().map(|a| format!("{a:?}")).collect();
    eprintln!("command [{}] error ({err})", quoted.join(" "));
    std::process::exit(1);
}

/// `watch -i`: one stream; each `watch ...` line adds a watch, `progress` asks for progress.
async fn interactive(
    f: &Parsed,
    format: Format,
    env_key: &str,
    env_range: &str,
) -> Result<String, Failure> {
    let conn = Conn::open(f).await?;
    // The stream opens with the first `watch` line, as clientv3 opens it with the first
    // Watch call; a `progress` before it reaches no watch and prints nothing.
    let mut open: Option<(
        tokio::sync::mpsc::Sender<WatchRequest>,
        tonic::Streaming<WatchResponse>,
    )> = None;
    let mut w = Watches::new(f.bool("hex"), format);
    // Standard input is read by a thread: a line at a time, Err at its end.
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<Result<String, String>>(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut l = String::new();
            let r = match stdin.read_line(&mut l) {
                Ok(0) => Err("EOF".to_string()),
                Ok(_) => Ok(l.strip_suffix('\n').unwrap_or(&l).to_string()),
                Err(e) => Err(e.to_string()),
            };
            let end = r.is_err();
            if line_tx.blocking_send(r).is_err() || end {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            line = lines.recv() => {
                let l = match line {
                    Some(Ok(l)) => l,
                    None => return Err(Failure {
                        message: "Error reading watch request line: EOF".into(),
                        code: EXIT_INVALID_INPUT,
                    }),
                    Some(Err(e)) => return Err(Failure {
                        message: format!("Error reading watch request line: {e}"),
                        code: EXIT_INVALID_INPUT,
                    }),
                };
                let args = super::argify(&l);
                match args.first().map(String::as_str) {
                    None => eprintln!("Invalid command: {l} (watch and progress supported)"),
                    Some("watch") => {
                        if args.len() < 2 && env_key.is_empty() {
                            eprintln!("Invalid command {l} (command type or key is not provided)");
                            continue;
                        }
                        let spec = interactive_watch(&args[1..], env_key, env_range)?;
                        match (spec, &open) {
                            (Ok(s), Some((tx, _))) => w.create(tx, s).await,
                            (Ok(s), None) => {
                                w.pending.push_back(s.exec);
                                open = Some(conn.watch(s.create, 16).await?);
                            }
                            (Err(e), _) => eprintln!("Invalid command {l} ({e})"),
                        }
                    }
                    Some("progress") => {
                        let Some((tx, _)) = &open else { continue };
                        let _ = tx
                            .send(WatchRequest {
                                request_union: Some(
                                    watch_request::RequestUnion::ProgressRequest(
                                        WatchProgressRequest {},
                                    ),
                                ),
                            })
                            .await;
                    }
                    Some(_) => eprintln!("Invalid command {l} (only support watch)"),
                }
            }
            item = async {
                match &mut open {
                    Some((_, stream)) => stream.next().await,
                    None => std::future::pending().await,
                }
            } => {
                match item {
                    Some(Ok(r)) => w.show(&r).await?,
                    Some(Err(s)) => return Err(Failure::error(status_message(&s))),
                    None => return Err(Failure {
                        message: "watch is canceled by the server".into(),
                        code: EXIT_INTERRUPTED,
                    }),
                }
            }
        }
    }
}

/// One interactive `watch ...` line (without the word `watch`): its own flags, key arguments
/// and command. The outer error ends etcdctl (bad arguments); the inner one is reported and
/// the line skipped.
fn interactive_watch(
    words: &[String],
    env_key: &str,
    env_range: &str,
) -> Result<Result<Spec1, String>, Failure> {
    let specs: Vec<Spec> = FLAGS.to_vec();
    let mut p = flags::parse(words, &specs, &[]).map_err(Failure::bad_args)?;
    if p.dashdash.is_some_and(|n| n == p.args.len()) {
        return Err(Failure::bad_args(BAD_ARGS_SEPARATOR));
    }
    let (watch_args, exec) = match p.dashdash {
        Some(n) => (p.args[..n].to_vec(), p.args[n..].to_vec()),
        None => (std::mem::take(&mut p.args), Vec::new()),
    };
    if p.dashdash.is_none() && env_key.is_empty() && watch_args.is_empty() {
        return Err(Failure::bad_args(BAD_ARGS_NUM));
    }
    if p.dashdash.is_none() && !watch_args.is_empty() && !env_key.is_empty() {
        return Err(Failure::bad_args(BAD_ARGS_CONFLICT_ENV));
    }
    Ok(create_request(&p, watch_args, env_key, env_range)
        .map(|create| Spec1 { create, exec })
        .map_err(|e| e.message))
}
