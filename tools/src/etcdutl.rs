//! etcdutl's commands: `snapshot status|restore`, `defrag --data-dir`, `version`. They work on
//! files and data dirs, never on a running member.

use std::io::Write;

use crate::client::Failure;
use crate::commands;
use crate::flags::{self, flag, short, Kind, Spec};
use crate::printer::Format;

const GLOBAL: &[Spec] = &[
    short("write-out", 'w', Kind::Value, "simple"),
    short("help", 'h', Kind::Bool, "false"),
];

const DEFRAG_FLAGS: &[Spec] = &[flag("data-dir", Kind::Value, "")];
const HASHKV_FLAGS: &[Spec] = &[flag("rev", Kind::Value, "0")];
const RESTORE_CLUSTER_FLAGS: &[Spec] = &[
    flag("initial-cluster", Kind::Value, ""),
    flag("initial-cluster-token", Kind::Value, "etcd-cluster"),
    flag("output-dir", Kind::Value, ""),
    flag("skip-hash-check", Kind::Bool, "false"),
];

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
    let (words, rest) = flags::split_command(&args, 2, GLOBAL);
    let name = words.join(" ");
    let own: &[Spec] = match name.as_str() {
        "snapshot restore" => commands::snapshot::RESTORE_FLAGS,
        "snapshot status" | "version" | "snapshot save" => &[],
        "defrag" => DEFRAG_FLAGS,
        "hashkv" => HASHKV_FLAGS,
        "snapshot restore-cluster" => RESTORE_CLUSTER_FLAGS,
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
        "hashkv" => hashkv(&f, format),
        "snapshot restore-cluster" => restore_cluster(&f),
        _ => Ok(format!(
            "etcdutl version: {}\nAPI version: 3.5\n",
            retcd::version::ETCD_SERVER_VERSION
        )),
    }
}

/// `hashkv <data-dir or member/db> [--rev N]`: the KV history hash of a stopped member.
fn hashkv(f: &flags::Parsed, format: Format) -> Result<String, Failure> {
    let [path] = f.args.as_slice() else {
        return Err(Failure::bad_args(
            "hashkv takes exactly one argument: a stopped member's data dir",
        ));
    };
    let rev: i64 = f
        .get("rev")
        .parse()
        .map_err(|_| Failure::bad_args(format!("invalid argument {:?} for --rev", f.get("rev"))))?;
    let p = std::path::Path::new(path);
    let data_dir = if p.join("CURRENT").is_file() {
        // `<data-dir>/member/db` given: its data dir is two levels up.
        p.parent()
            .and_then(|m| m.parent())
            .unwrap_or(p)
            .to_path_buf()
    } else {
        p.to_path_buf()
    };
    if !retcd::backend::db_path(&data_dir).join("CURRENT").is_file() {
        return Err(Failure::error(format!("{path}: no retcd database here")));
    }
    let b = retcd::backend::Backend::open(&data_dir, None, true).map_err(|e| {
        Failure::error(format!(
            "cannot open {path} (is the member still running? stop it first): {e}"
        ))
    })?;
    let (hash, compact, at) =
        retcd::server::maintenance::kv_hash(&b, rev).map_err(|e| Failure::error(e.to_string()))?;
    Ok(match format {
        Format::Json => {
            format!("{{\"hash\":{hash},\"hashRevision\":{at},\"compactRevision\":{compact}}}\n")
        }
        Format::Table => crate::printer::table(
            &["HASH", "HASH REVISION", "COMPACT REVISION"],
            &[vec![hash.to_string(), at.to_string(), compact.to_string()]],
        ),
        _ => format!("{hash}, {at}, {compact}\n"),
    })
}

/// `snapshot restore-cluster FILE --initial-cluster ... --output-dir DIR`: every member's data
/// dir and env file at once, and the steps to start them.
fn restore_cluster(f: &flags::Parsed) -> Result<String, Failure> {
    let [file] = f.args.as_slice() else {
        return Err(Failure::bad_args(
            "snapshot restore-cluster requires exactly one argument (the snapshot file)",
        ));
    };
    restore_cluster_files(
        file,
        file,
        &f.get("initial-cluster"),
        &f.get("initial-cluster-token"),
        &f.get("output-dir"),
        f.bool("skip-hash-check"),
    )
}

/// Restores `file` into a data dir and an env file per member of `ic` under `out`; messages
/// call the snapshot `label`.
pub fn restore_cluster_files(
    file: &str,
    label: &str,
    ic: &str,
    token: &str,
    out: &str,
    skip_hash_check: bool,
) -> Result<String, Failure> {
    if out.is_empty() {
        return Err(Failure::bad_args("--output-dir is required"));
    }
    let members = retcd::cluster::InitialCluster::parse(ic)
        .map_err(|e| Failure::bad_args(format!("--initial-cluster: {e}")))?
        .members;
    if members.is_empty() {
        return Err(Failure::bad_args(
            "--initial-cluster is required: name=peerURL,... for every member of the new cluster",
        ));
    }
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::error(format!("create {}: {e}", out.display())))?;
    let mut steps = String::new();
    for (i, (name, urls)) in members.iter().enumerate() {
        let data_dir = out.join(format!("{name}.etcd"));
        let opts = retcd::restore::RestoreOptions {
            name: name.clone(),
            data_dir: data_dir.clone(),
            wal_dir: None,
            initial_cluster: ic.to_string(),
            initial_cluster_token: token.to_string(),
            initial_advertise_peer_urls: urls.clone(),
            skip_hash_check,
            bump_revision: 0,
            mark_compacted: false,
        };
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("restoring {name} ({}/{})", i + 1, members.len());
        }
        let r = retcd::restore::restore(std::path::Path::new(file), &opts)
            .map_err(|e| Failure::error(format!("{name}: {e}")))?;
        let env = out.join(format!("{name}.conf"));
        let listen: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        let text = format!(
            "# {name}: restored from {label} (member {:x} of cluster {:x}, revision {})\n\
             ETCD_NAME=\"{name}\"\n\
             ETCD_DATA_DIR=\"/var/lib/etcd\"\n\
             ETCD_INITIAL_CLUSTER=\"{ic}\"\n\
             ETCD_INITIAL_CLUSTER_TOKEN=\"{token}\"\n\
             ETCD_INITIAL_CLUSTER_STATE=\"new\"\n\
             ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{peers}\"\n\
             ETCD_LISTEN_PEER_URLS=\"{peers}\"\n\
             # Set the client URLs of this host:\n\
             # ETCD_LISTEN_CLIENT_URLS=\"http://HOST:2379\"\n\
             # ETCD_ADVERTISE_CLIENT_URLS=\"http://HOST:2379\"\n",
            r.member_id,
            r.cluster_id,
            r.revision,
            peers = listen.join(","),
        );
        std::fs::write(&env, text)
            .map_err(|e| Failure::error(format!("write {}: {e}", env.display())))?;
        steps.push_str(&format!(
            "  {name}: copy {} to the host's data dir (e.g. /var/lib/etcd, owned by etcd, mode 0700) and {} to /etc/etcd/etcd.conf\n",
            data_dir.display(),
            env.display()
        ));
    }
    Ok(format!(
        "Restored {} members from {label} into {}.\nOn each host, with the old members stopped:\n{steps}Then start every member (systemctl start etcd); they form a new cluster with new IDs.\n",
        members.len(),
        out.display()
    ))
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
