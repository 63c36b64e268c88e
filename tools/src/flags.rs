//! pflag-style command-line flags as etcdctl's cobra commands take them: `--name=value`,
//! `--name value`, `-w json`, boolean flags alone, `--` to end flags; and `ETCDCTL_*` env for
//! the global ones.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub default: &'static str,
}

pub const fn flag(name: &'static str, kind: Kind, default: &'static str) -> Spec {
    Spec {
        name,
        short: None,
        kind,
        default,
    }
}

/// A flag with a one-letter shorthand (`-w`).
pub const fn short(name: &'static str, c: char, kind: Kind, default: &'static str) -> Spec {
    Spec {
        name,
        short: Some(c),
        kind,
        default,
    }
}

/// Flags that are lists (pflag's StringSlice): repeating them appends.
const SLICE_FLAGS: &[&str] = &["endpoints"];

/// The global flags of etcdctl.
pub const GLOBAL: &[Spec] = &[
    flag("endpoints", Kind::Value, "127.0.0.1:2379"),
    flag("dial-timeout", Kind::Value, "2s"),
    flag("command-timeout", Kind::Value, "5s"),
    flag("keepalive-time", Kind::Value, "2s"),
    flag("keepalive-timeout", Kind::Value, "6s"),
    flag("insecure-transport", Kind::Bool, "true"),
    flag("insecure-skip-tls-verify", Kind::Bool, "false"),
    flag("insecure-discovery", Kind::Bool, "true"),
    flag("cacert", Kind::Value, ""),
    flag("cert", Kind::Value, ""),
    flag("key", Kind::Value, ""),
    flag("user", Kind::Value, ""),
    flag("password", Kind::Value, ""),
    short("write-out", 'w', Kind::Value, "simple"),
    flag("hex", Kind::Bool, "false"),
    short("discovery-srv", 'd', Kind::Value, ""),
    flag("discovery-srv-name", Kind::Value, ""),
    flag("debug", Kind::Bool, "false"),
    short("help", 'h', Kind::Bool, "false"),
];

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, String>,
    defaults: HashMap<&'static str, &'static str>,
    pub args: Vec<String>,
    /// How many of `args` came before a `--` (None: there was no `--`).
    pub dashdash: Option<usize>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .or_else(|| self.defaults.get(name).map(|d| d.to_string()))
            .unwrap_or_default()
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(
            self.get(name).as_str(),
            "true" | "1" | "t" | "T" | "TRUE" | "True"
        )
    }
}

fn find<'a>(specs: &'a [Spec], name: &str) -> Option<&'a Spec> {
    specs.iter().find(|s| s.name == name)
}

/// Parses `args` against `specs`; global flags also come from `ETCDCTL_*` variables.
pub fn parse(args: &[String], specs: &[Spec], env: &[(String, String)]) -> Result<Parsed, String> {
    let mut p = Parsed {
        defaults: specs.iter().map(|s| (s.name, s.default)).collect(),
        ..Default::default()
    };
    for s in GLOBAL {
        let var = format!("ETCDCTL_{}", s.name.to_ascii_uppercase().replace('-', "_"));
        if let Some((_, v)) = env.iter().find(|(k, _)| *k == var) {
            p.values.insert(s.name, v.clone());
        }
    }
    let mut i = 0;
    let mut only_args = false;
    let mut from_flags: Vec<&'static str> = Vec::new();
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_args || !a.starts_with('-') || a == "-" {
            p.args.push(a.clone());
            continue;
        }
        if a == "--" && !only_args {
            only_args = true;
            p.dashdash = Some(p.args.len());
            continue;
        }
        let (spec, inline) = if let Some(long) = a.strip_prefix("--") {
            let (name, v) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            (
                find(specs, name).ok_or_else(|| format!("unknown flag: --{name}"))?,
                v,
            )
        } else {
            let body = &a[1..];
            let c = body.chars().next().unwrap_or('-');
            let spec = specs
                .iter()
                .find(|s| s.short == Some(c))
                .ok_or_else(|| format!("unknown shorthand flag: '{c}' in {a}"))?;
            let rest = &body[c.len_utf8()..];
            let v = if rest.is_empty() {
                None
            } else {
                Some(rest.trim_start_matches('=').to_string())
            };
            (spec, v)
        };
        let value = match (spec.kind, inline) {
            (_, Some(v)) => v,
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Value, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                // pflag names a shorthand as it was given.
                None if !a.starts_with("--") => {
                    return Err(format!("flag needs an argument: '{}' in {a}", &a[1..2]))
                }
                None => return Err(format!("flag needs an argument: --{}", spec.name)),
            },
        };
        // A string-slice flag given again appends, as pflag does.
        if SLICE_FLAGS.contains(&spec.name) && from_flags.contains(&spec.name) {
            let prev = p.values.get(spec.name).cloned().unwrap_or_default();
            p.values.insert(spec.name, format!("{prev},{value}"));
        } else {
            p.values.insert(spec.name, value);
        }
        from_flags.push(spec.name);
    }
    Ok(p)
}

/// The command words (e.g. `lease grant`) before the command's own arguments: the first
/// positional arguments, skipping flags and their values (`globals`: the program's global
/// flags).
pub fn split_command(
    args: &[String],
    max_words: usize,
    globals: &[Spec],
) -> (Vec<String>, Vec<String>) {
    let mut words: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            rest.push(a.clone());
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            rest.push(a.clone());
            // As cobra looks for the command: a flag it does not know as a boolean global one
            // takes the next word as its value (so `--bogus get` leaves no command word).
            let takes_value = if let Some(long) = a.strip_prefix("--") {
                !long.contains('=') && find(globals, long).map(|s| s.kind) != Some(Kind::Bool)
            } else {
                a.len() == 2
                    && !globals
                        .iter()
                        .any(|s| s.short == a.chars().nth(1) && s.kind == Kind::Bool)
            };
            if takes_value {
                if let Some(v) = args.get(i) {
                    rest.push(v.clone());
                    i += 1;
                }
            }
            continue;
        }
        if words.len() < max_words && (words.is_empty() || is_subcommand(&words[0], a)) {
            words.push(a.clone());
        } else {
            rest.push(a.clone());
        }
    }
    (words, rest)
}

fn is_subcommand(group: &str, w: &str) -> bool {
    matches!(
        (group, w),
        (
            "lease",
            "grant" | "revoke" | "timetolive" | "list" | "keep-alive"
        ) | ("member", "add" | "remove" | "update" | "list" | "promote")
            | ("endpoint", "health" | "status" | "hashkv")
            | ("alarm", "list" | "disarm")
            | (
                "snapshot",
                "save" | "status" | "restore" | "restore-cluster"
            )
            | ("auth", "enable" | "disable" | "status")
            | ("check", "perf" | "datascale")
            | (
                "user",
                "add" | "delete" | "get" | "list" | "passwd" | "grant-role" | "revoke-role"
            )
            | (
                "role",
                "add" | "delete" | "get" | "list" | "grant-permission" | "revoke-permission"
            )
    )
}

/// Go's `time.ParseDuration` for the usual forms (`2s`, `500ms`, `1m`).
pub fn duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .ok()
        .map(|n| std::time::Duration::from_secs_f64(n * mult))
}
