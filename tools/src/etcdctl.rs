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
            let _ = stdout.write_all(&crate::printer::output_bytes(&out));
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

/// The flags of command `name` (its words joined by one space), None for an unknown command.
pub fn command_flags(name: &str) -> Option<&'static [Spec]> {
    Some(match name {
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
        "version" | "" => &[],
        "completion" => commands::completion::FLAGS,
        "endpoint" => commands::endpoint::FLAGS,
        n if n == "help" || n.starts_with("help ") => &[],
        // A command group without its subcommand: its help.
        n if is_group(n) => &[],
        _ => return None,
    })
}

/// `--debug`: every global setting as its `ETCDCTL_*` variable, on stderr, as etcdctl lists
/// them.
fn debug_dump(f: &flags::Parsed) {
    let mut names: Vec<&str> = flags::GLOBAL
        .iter()
        .map(|s| s.name)
        .filter(|n| *n != "help")
        .collect();
    names.sort();
    for name in names {
        let v = f.get(name);
        let shown = match name {
            "endpoints" => format!("[{}]", crate::client::endpoint_list(f).join(",")),
            "dial-timeout" | "command-timeout" | "keepalive-time" | "keepalive-timeout" => {
                flags::duration(&v).map_or(v, crate::printer::go_duration)
            }
            _ => v,
        };
        eprintln!(
            "ETCDCTL_{}={shown}",
            name.to_ascii_uppercase().replace('-', "_")
        );
    }
}

async fn run(args: Vec<String>) -> Result<String, Failure> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (words, rest) = flags::split_command(&args, 2, flags::GLOBAL);
    let name = words.join(" ");
    let Some(own) = command_flags(&name) else {
        let msg = format!("unknown command {:?} for \"etcdctl\"", words[0]);
        eprintln!("Error: {msg}\nRun 'etcdctl --help' for usage.");
        return Err(Failure::error(msg));
    };
    // `completion SHELL` is one command per shell in etcdctl's usage texts.
    let usage_path = match args.iter().find(|a| *a == "bash" || *a == "zsh") {
        Some(shell) if name == "completion" => format!("completion {shell}"),
        _ => name.clone(),
    };
    // A group's subcommands share a flag table; each takes only the flags it shows.
    let specs: Vec<Spec> = flags::GLOBAL
        .iter()
        .chain(
            own.iter()
                .filter(|s| commands::help::shows(&usage_path, s.name)),
        )
        .copied()
        .collect();
    let f = flags::parse(&rest, &specs, &env)
        .and_then(|f| commands::help::check_values(&name, &f).map(|()| f))
        .map_err(|e| {
            // cobra: the error on stderr, the command's usage on stdout, then etcdctl's own
            // error line.
            eprintln!("Error: {e}\n");
            print!("{}", commands::help::usage(&usage_path));
            Failure::error(e)
        })?;
    if f.bool("help") || name.is_empty() || is_group(&name) {
        return Ok(commands::help::usage(&usage_path));
    }
    if name == "help" || name.starts_with("help ") {
        let topic: Vec<&str> = words[1..]
            .iter()
            .chain(f.args.iter())
            .map(String::as_str)
            .collect();
        let topic = topic.join(" ");
        if !commands::help::known(&topic) {
            eprintln!("Unknown help topic [`{topic}`]");
            return Ok(commands::help::unknown_topic_usage());
        }
        return Ok(commands::help::usage(&topic));
    }
    if f.bool("debug") {
        debug_dump(&f);
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
