//! `etcdctl completion bash|zsh`: shell completion for commands, subcommands and flags.
//! (etcdctl's are cobra's generated scripts; these complete the same words.)

use crate::client::Failure;
use crate::flags::GLOBAL;
use crate::flags::{flag, Kind, Parsed, Spec};

/// Every command and its subcommands.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("get", &[]),
    ("put", &[]),
    ("del", &[]),
    ("txn", &[]),
    ("compaction", &[]),
    ("watch", &[]),
    (
        "lease",
        &["grant", "revoke", "timetolive", "list", "keep-alive"],
    ),
    ("member", &["add", "remove", "update", "list", "promote"]),
    ("endpoint", &["health", "status", "hashkv"]),
    ("move-leader", &[]),
    ("alarm", &["list", "disarm"]),
    ("defrag", &[]),
    ("snapshot", &["save", "status", "restore"]),
    ("make-mirror", &[]),
    ("lock", &[]),
    ("elect", &[]),
    ("auth", &["enable", "disable", "status"]),
    (
        "user",
        &[
            "add",
            "delete",
            "get",
            "list",
            "passwd",
            "grant-role",
            "revoke-role",
        ],
    ),
    (
        "role",
        &[
            "add",
            "delete",
            "get",
            "list",
            "grant-permission",
            "revoke-permission",
        ],
    ),
    ("check", &["perf", "datascale"]),
    ("version", &[]),
    ("completion", &["bash", "zsh"]),
];

fn global_flags() -> String {
    GLOBAL
        .iter()
        .map(|s| format!("--{}", s.name))
        .collect::<Vec<_>>()
        .join(" ")
}

fn bash() -> String {
    let mut cases = String::new();
    for (cmd, subs) in COMMANDS.iter().filter(|(_, s)| !s.is_empty()) {
        cases.push_str(&format!(
            "        {cmd}) COMPREPLY=($(compgen -W \"{} $flags\" -- \"$cur\")); return ;;\n",
            subs.join(" ")
        ));
    }
    let cmds: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
    format!(
        r#"# bash completion for etcdctl (retcd)
_etcdctl() {{
    local cur cmd flags i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    flags="{flags}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    case "$cmd" in
        "") COMPREPLY=($(compgen -W "{cmds} $flags" -- "$cur")); return ;;
{cases}        *) COMPREPLY=($(compgen -W "$flags" -- "$cur")); return ;;
    esac
}}
complete -o default -F _etcdctl etcdctl
"#,
        flags = global_flags(),
        cmds = cmds.join(" "),
    )
}

fn zsh() -> String {
    format!(
        r#"#compdef etcdctl
# zsh completion for etcdctl (retcd): the bash completion through bashcompinit.
autoload -U +X bashcompinit && bashcompinit
{}"#,
        bash()
    )
}

/// `--no-descriptions` is accepted as etcdctl's: these scripts carry no descriptions anyway.
pub const FLAGS: &[Spec] = &[flag("no-descriptions", Kind::Bool, "false")];

pub fn run(f: &Parsed) -> Result<String, Failure> {
    match f.args.first().map(String::as_str) {
        Some("bash") => Ok(bash()),
        Some("zsh") => Ok(zsh()),
        Some(other) => Err(Failure::bad_args(format!(
            "unsupported shell type {other:?} (bash and zsh are)"
        ))),
        None => Err(Failure::bad_args(
            "completion needs a shell: etcdctl completion bash|zsh",
        )),
    }
}
