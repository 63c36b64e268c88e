//! `etcdctl watch [options] [key or prefix] [range_end]`: events as they happen, until
//! interrupted or canceled by the server (exit code 5).

use std::io::Write;

use tokio_stream::StreamExt;

use crate::client::{status_message, Conn, Failure};
use crate::etcdserverpb::watch_client::WatchClient;
use crate::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest};
use crate::flags::{flag, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[
    flag("prefix", Kind::Bool, "false"),
    flag("rev", Kind::Value, "0"),
    flag("prev-kv", Kind::Bool, "false"),
    flag("progress-notify", Kind::Bool, "false"),
    Spec {
        name: "interactive",
        short: Some('i'),
        kind: Kind::Bool,
        default: "false",
    },
];

/// etcdctl's exit code when the server cancels the watch.
const EXIT_INTERRUPTED: i32 = 5;

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    if f.bool("interactive") {
        return Err(Failure::bad_args(
            "watch --interactive is not supported yet by retcd's etcdctl",
        ));
    }
    if f.args.is_empty() || f.args.len() > 2 {
        return Err(Failure::bad_args(
            "watch in non-interactive mode requires one or two arguments as key or prefix, with range end",
        ));
    }
    let (key, range_end) = super::key_range(&f.args, f.bool("prefix"), false)?;
    let start_revision: i64 = f
        .get("rev")
        .parse()
        .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --rev", f.get("rev"))))?;
    let conn = Conn::open(f).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key,
                range_end,
                start_revision,
                prev_kv: f.bool("prev-kv"),
                progress_notify: f.bool("progress-notify"),
                ..Default::default()
            },
        )),
    };
    let _ = tx.send(create).await;
    let mut stream = WatchClient::new(conn.channel.clone())
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let is_hex = f.bool("hex");
    while let Some(item) = stream.next().await {
        let r = item.map_err(|s| Failure::error(status_message(&s)))?;
        if r.created && r.events.is_empty() && !r.canceled {
            continue;
        }
        if r.canceled {
            let reason = if r.compact_revision != 0 {
                "etcdserver: mvcc: required revision has been compacted".to_string()
            } else {
                r.cancel_reason.clone()
            };
            eprintln!("watch was canceled ({reason})");
        }
        let mut out = String::new();
        if format == Format::Json {
            out.push_str(&printer::watch_json(&r));
            out.push('\n');
        } else {
            for e in &r.events {
                out.push_str(if e.r#type == 1 { "DELETE\n" } else { "PUT\n" });
                if let Some(p) = &e.prev_kv {
                    printer::simple_kv(&mut out, p, is_hex, false);
                }
                if let Some(kv) = &e.kv {
                    printer::simple_kv(&mut out, kv, is_hex, false);
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
        if r.canceled {
            break;
        }
    }
    drop(tx);
    Err(Failure {
        message: "watch is canceled by the server".into(),
        code: EXIT_INTERRUPTED,
    })
}
