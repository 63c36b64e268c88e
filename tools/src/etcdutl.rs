//! etcdutl's commands: `snapshot status|restore`, `defrag --data-dir`, `version`. They work on
//! files and data dirs, never on a running member.

use std::io::Write;

use crate::client::Failure;
use crate::commands;
use crate::flags::{self, flag, Kind, Spec};
use crate::printer::Format;

const GLOBAL: &[Spec] = &[
    Spec {
        name: "write-out",
        short: Some('w'),
        kind: Kind::Value,
        default: "simple",
    },
    Spec {
        name: "help",
        short: Some('h'),
        kind: Kind::Bool,
        default: "false",
    },
];

const DEFRAG_FLAGS: &[Spec] = &[flag("data-dir", Kind::Value, "")];

/// Runs etcdutl with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            0
        }
        Err(f) => {
            eprintln!("Error: {}", f.message);
            f.code
        }
    }
}

fn run(args: Vec<String>) -> Result<String, Failure> {
    let (words, rest) = flags::split_command(&args, 2);
    let name = words.join(" ");
    let own: &[Spec] = match name.as_str() {
        "snapshot restore" => commands::snapshot::RESTORE_FLAGS,
        "snapshot status" | "version" | "snapshot save" => &[],
        "defrag" => DEFRAG_FLAGS,
        "" => {
            return Err(Failure::bad_args(
                "a command is required; run 'etcdutl --help'",
            ))
        }
        _ => {
            return Err(Failure::error(format!(
                "unknown command {:?} for \"etcdutl\"",
                words[0]
            )))
        }
    };
    let specs: Vec<Spec> = GLOBAL.iter().chain(own.iter()).copied().collect();
    let f = flags::parse(&rest, &specs, &[]).map_err(Failure::error)?;
    let format = Format::parse(&f.get("write-out")).map_err(Failure::bad_args)?;
    match name.as_str() {
        "snapshot status" => {
            if f.args.len() != 1 {
                return Err(Failure::bad_args(
                    "snapshot status requires exactly one argument",
                ));
            }
            commands::snapshot::status(std::path::Path::new(&f.args[0]), format)
        }
        "snapshot restore" => commands::snapshot::restore(&f),
        "snapshot save" => Err(Failure::bad_args(
            "In order to download snapshot use: `etcdctl snapshot save ...`",
        )),
        "defrag" => defrag(&f.get("data-dir")),
        _ => Ok(format!(
            "etcdutl version: {}\nAPI version: 3.5\n",
            retcd::version::ETCD_SERVER_VERSION
        )),
    }
}

/// Compacts the database of a stopped member's data dir.
fn defrag(data_dir: &str) -> Result<String, Failure> {
    if data_dir.is_empty() {
        return Err(Failure::bad_args("--data-dir is required"));
    }
    let (before, after) = commands::defrag::offline(data_dir)?;
    Ok(format!(
        "Finished defragmenting etcd data[{data_dir}]. ({} -> {})\n",
        crate::printer::human_bytes(before as i64),
        crate::printer::human_bytes(after as i64)
    ))
}
