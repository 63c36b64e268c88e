//! Dispatching etcdctl's commands; errors printed as etcdctl prints them.

use std::io::Write;

use crate::client::Failure;
use crate::commands;
use crate::flags::{self, Spec};
use crate::printer::Format;

/// Runs etcdctl with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    match rt.block_on(run(args)) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            0
        }
        Err(f) => {
            // An empty message: the command already said what failed.
            if !f.message.is_empty() {
                eprintln!("Error: {}", f.message);
            }
            f.code
        }
    }
}

/// A command made of subcommands (`member`, `lease`, ...); `completion` takes its shell as an
/// argument instead.
fn is_group(name: &str) -> bool {
    name != "completion"
        && commands::completion::COMMANDS
            .iter()
            .any(|(c, subs)| *c == name && !subs.is_empty())
}

async fn run(args: Vec<String>) -> Result<String, Failure> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (words, rest) = flags::split_command(&args, 2);
    let name = words.join(" ");
    let own: &[Spec] = match name.as_str() {
        "get" => commands::get::FLAGS,
        "put" => commands::put::FLAGS,
        "del" => commands::del::FLAGS,
        "txn" => commands::txn::FLAGS,
        "compaction" => commands::compaction::FLAGS,
        "watch" => commands::watch::FLAGS,
        "member list" | "member add" | "member remove" | "member update" | "member promote" => {
            commands::member::FLAGS
        }
        "endpoint status" | "endpoint health" | "endpoint hashkv" => commands::endpoint::FLAGS,
        "alarm list" | "alarm disarm" => &[],
        "defrag" => commands::defrag::FLAGS,
        "lease grant" | "lease revoke" | "lease timetolive" | "lease list" | "lease keep-alive" => {
            commands::lease::FLAGS
        }
        "lock" => commands::lock::FLAGS,
        "check perf" => commands::check::PERF_FLAGS,
        "check datascale" => commands::check::DATASCALE_FLAGS,
        "auth enable" | "auth disable" | "auth status" => &[],
        n if n.starts_with("user ") => commands::user::FLAGS,
        n if n.starts_with("role ") => commands::role::FLAGS,
        "make-mirror" => commands::make_mirror::FLAGS,
        "snapshot save" | "snapshot status" => &[],
        "snapshot restore" => commands::snapshot::RESTORE_FLAGS,
        "elect" => commands::elect::FLAGS,
        "move-leader" => &[],
        "version" | "" | "completion" => &[],
        // A command group without its subcommand: its help.
        n if is_group(n) => &[],
        _ => {
            let msg = format!("unknown command {:?} for \"etcdctl\"", words[0]);
            eprintln!("Error: {msg}\nRun 'etcdctl --help' for usage.");
            return Err(Failure::error(msg));
        }
    };
    let specs: Vec<Spec> = flags::GLOBAL.iter().chain(own.iter()).copied().collect();
    let f = flags::parse(&rest, &specs, &env).map_err(|e| {
        eprintln!("Error: {e}\n");
        Failure::error(e)
    })?;
    if f.bool("help") || name.is_empty() || is_group(&name) {
        return Ok(commands::help::run(&name));
    }
    let format = Format::parse(&f.get("write-out")).map_err(Failure::bad_args)?;
    match name.as_str() {
        "get" => commands::get::run(&f, format).await,
        "put" => commands::put::run(&f, format).await,
        "del" => commands::del::run(&f, format).await,
        "txn" => commands::txn::run(&f, format).await,
        "compaction" => commands::compaction::run(&f).await,
        "watch" => commands::watch::run(&f, format).await,
        n if n.starts_with("member ") => commands::member::run(&words[1], &f, format).await,
        n if n.starts_with("endpoint ") => commands::endpoint::run(&words[1], &f, format).await,
        n if n.starts_with("lease ") => commands::lease::run(&words[1], &f, format).await,
        "lock" => commands::lock::run(&f, format).await,
        n if n.starts_with("check ") => commands::check::run(&words[1], &f).await,
        n if n.starts_with("auth ") => commands::auth::run(&words[1], &f, format).await,
        n if n.starts_with("user ") => commands::user::run(&words[1], &f, format).await,
        n if n.starts_with("role ") => commands::role::run(&words[1], &f, format).await,
        n if n.starts_with("alarm ") => commands::alarm::run(&words[1], &f, format).await,
        "defrag" => commands::defrag::run(&f).await,
        "make-mirror" => commands::make_mirror::run(&f).await,
        n if n.starts_with("snapshot ") => commands::snapshot::run(&words[1], &f, format).await,
        "elect" => commands::elect::run(&f, format).await,
        "move-leader" => commands::move_leader::run(&f, format).await,
        "version" => Ok(commands::version::run()),
        "completion" => commands::completion::run(&f),
        _ => Err(Failure::bad_args(
            "a command is required; run 'etcdctl --help'",
        )),
    }
}
