//! `etcdctl elect <election-name> [proposal]`: campaigns and leads until interrupted, or with
//! `-l` prints each leader as the election changes hands.

use crate::client::{Conn, Failure};
use crate::concurrency::{self, Session};
use crate::flags::{short, Kind, Parsed, Spec};
use crate::printer::Format;

pub const FLAGS: &[Spec] = &[short("listen", 'l', Kind::Bool, "false")];

/// clientv3's default session TTL, in seconds.
const SESSION_TTL: i64 = 60;

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    if f.args.len() != 1 && f.args.len() != 2 {
        return Err(Failure::bad_args(
            "elect takes one election name argument and an optional proposal argument",
        ));
    }
    let listen = f.bool("listen");
    if f.args.len() == 1 && !listen {
        return Err(Failure::bad_args("no proposal argument but -l not set"));
    }
    if f.args.len() == 2 && listen {
        return Err(Failure::bad_args("proposal given but -l is set"));
    }
    let conn = Conn::open(f).await?;
    let session = Session::new(&conn, SESSION_TTL).await?;
    let name = &f.args[0];
    if listen {
        if format == Format::Table {
            // etcdctl fails so at the first leader it observes.
            return Err(format.unsupported());
        }
        let show = |r| {
            if let Ok(s) = super::get::print(&r, f, format) {
                super::print_now(&s)
            }
        };
        return tokio::select! {
            r = concurrency::observe(&conn, name, show) => match r {
                Ok(()) => Err(Failure::error("elect: observer lost")),
                Err(e) => Err(e),
            },
            _ = super::interrupted() => Ok(String::new()),
        };
    }
    let lead = tokio::select! {
        r = concurrency::campaign(&conn, &session, name, &f.args[1]) => r?,
        _ = super::interrupted() => {
            let _ = concurrency::delete(&conn, &session.key(name)).await;
            return Err(Failure::error("context canceled"));
        }
    };
    let k = concurrency::get(&conn, &lead.key).await?;
    super::print_now(&super::get::print(&k, f, format)?);
    tokio::select! {
        _ = super::interrupted() => {
            concurrency::resign(&conn, &lead).await?;
            Ok(String::new())
        }
        _ = session.done() => Err(Failure::error("elect: session expired")),
    }
}
