//! `etcdctl --help` (and `etcdctl COMMAND --help`): the commands and the global flags.

use crate::flags::{Kind, GLOBAL};

pub fn run(command: &str) -> String {
    let mut out = String::from("retcd's etcdctl: a command-line client for etcd v3 (etcdctl 3.5's commands and output).\n\nUsage:\n");
    if command.is_empty() {
        out.push_str("  etcdctl [global flags] COMMAND [flags] [arguments]\n\nCommands:\n");
    } else {
        out.push_str(&format!(
            "  etcdctl [global flags] {command} [flags] [arguments]\n\n"
        ));
        out.push_str("Commands of this group:\n");
    }
    let group = command.split_whitespace().next().unwrap_or("");
    for (cmd, subs) in super::completion::COMMANDS {
        if !group.is_empty() && *cmd != group {
            continue;
        }
        if subs.is_empty() {
            out.push_str(&format!("  {cmd}\n"));
        } else {
            out.push_str(&format!("  {cmd} {}\n", subs.join("|")));
        }
    }
    out.push_str("\nGlobal flags (each also as ETCDCTL_<NAME> in the environment):\n");
    for s in GLOBAL {
        let short = s.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = match s.kind {
            Kind::Bool => format!("[={}]", s.default),
            Kind::Value => format!("={:?}", s.default),
        };
        out.push_str(&format!("  {short}--{}{value}\n", s.name));
    }
    out.push_str(
        "\nOutput formats (-w): simple, json, fields, table, protobuf. Exit codes as etcdctl's.\n",
    );
    out
}
