//! etcdctl's usage text: `etcdctl --help`, `etcdctl COMMAND --help`, `etcdctl help COMMAND`,
//! and what follows a flag error on standard output. The layout is etcdctl's usage template
//! (NAME, USAGE, VERSION, API VERSION, COMMANDS, DESCRIPTION, OPTIONS, GLOBAL OPTIONS) put
//! through Go's tabwriter (tab stops every 8 columns, cells padded with tabs); the words come
//! from etcdctl 3.4.23 itself (help_text.rs, generated) plus what only this etcdctl has.

use super::help_text::{COMMANDS, GLOBAL};

/// One command's part of the template.
pub struct CommandHelp {
    /// `member add`; empty for etcdctl itself.
    pub path: &'static str,
    pub short: &'static str,
    /// Cobra's use line, `[flags]` included.
    pub usage: &'static str,
    /// The description, line by line.
    pub long: &'static [&'static str],
    /// The command's own flags, `--help` left out.
    pub flags: &'static [FlagHelp],
    /// Flags its command group gives it (shown among the global ones).
    pub inherited: &'static [FlagHelp],
}

pub struct FlagHelp {
    pub short: Option<char>,
    pub name: &'static str,
    /// How the default shows: `="simple"`, `=5s`, `[=false]`.
    pub value: &'static str,
    pub usage: &'static str,
}

/// Commands that etcdctl 3.4.23 does not have (etcdctl 3.5's, or retcd's).
const OWN_COMMANDS: &[CommandHelp] = &[CommandHelp {
    path: "auth status",
    short: "Returns authentication status",
    usage: "etcdctl auth status [flags]",
    long: &[],
    flags: &[],
    inherited: &[],
}];

/// Flags of this etcdctl that etcdctl 3.4.23 does not have, by command.
const OWN_FLAGS: &[(&str, FlagHelp)] = &[
    (
        "get",
        FlagHelp {
            short: None,
            name: "count-only",
            value: "[=false]",
            usage: "Get only the number of matching keys",
        },
    ),
    (
        "snapshot restore",
        FlagHelp {
            short: None,
            name: "bump-revision",
            value: "=0",
            usage: "Raise the restored revision by this much (needs --mark-compacted when not 0)",
        },
    ),
    (
        "snapshot restore",
        FlagHelp {
            short: None,
            name: "mark-compacted",
            value: "[=false]",
            usage: "Mark the restored revision as compacted, so watchers resume from it",
        },
    ),
    (
        "watch",
        FlagHelp {
            short: None,
            name: "progress-notify",
            value: "[=false]",
            usage: "Ask the server for periodic progress notifications",
        },
    ),
    (
        "make-mirror",
        FlagHelp {
            short: None,
            name: "dest-password",
            value: "=\"\"",
            usage: "Destination password for authentication (if this option is used, --user option shouldn't include password)",
        },
    ),
    (
        "make-mirror",
        FlagHelp {
            short: None,
            name: "dest-user",
            value: "=\"\"",
            usage: "Destination username[:password] for authentication (prompt if password is not supplied)",
        },
    ),
    (
        "make-mirror",
        FlagHelp {
            short: None,
            name: "max-txn-ops",
            value: "=128",
            usage: "Maximum number of operations permitted in a transaction during syncing updates.",
        },
    ),
    (
        "make-mirror",
        FlagHelp {
            short: None,
            name: "state-key",
            value: "=\"\"",
            usage: "Key in the destination under which the mirror keeps its progress (default: __make_mirror/<source cluster ID>)",
        },
    ),
];

fn find(path: &str) -> Option<&'static CommandHelp> {
    COMMANDS
        .iter()
        .chain(OWN_COMMANDS.iter())
        .find(|c| c.path == path)
}

/// Whether `path` is a command (or command group) this etcdctl knows.
pub fn known(path: &str) -> bool {
    find(path).is_some()
}

/// The commands below `path` that run something, depth first in name order, as cobra lists
/// them.
fn runnable_below(path: &str) -> Vec<&'static CommandHelp> {
    let mut all: Vec<&CommandHelp> = COMMANDS
        .iter()
        .chain(OWN_COMMANDS.iter())
        .filter(|c| {
            !c.path.is_empty()
                && (path.is_empty() || c.path.starts_with(&format!("{path} ")))
                && !COMMANDS
                    .iter()
                    .chain(OWN_COMMANDS.iter())
                    .any(|d| d.path.starts_with(&format!("{} ", c.path)))
        })
        .collect();
    all.sort_by(|a, b| a.path.cmp(b.path));
    all
}

/// `  -w, --write-out="simple"\t<usage>` lines, sorted by name as pflag visits them; the
/// `--help` flag every command has among them when `help_for` names the command.
fn flag_lines(flags: &[&FlagHelp], help_for: Option<&str>) -> String {
    let mut rows: Vec<(Option<char>, &str, &str, String)> = flags
        .iter()
        .map(|f| (f.short, f.name, f.value, f.usage.to_string()))
        .collect();
    if let Some(name) = help_for {
        rows.push((Some('h'), "help", "[=false]", format!("help for {name}")));
    }
    rows.sort_by(|a, b| a.1.cmp(b.1));
    rows.iter()
        .map(|(short, name, value, usage)| {
            let short = match short {
                Some(c) => format!("  -{c}, "),
                None => "      ".to_string(),
            };
            format!("{short}--{name}{value}\t{usage}\n")
        })
        .collect()
}

/// The full usage text of `path` (empty: etcdctl itself).
pub fn usage(path: &str) -> String {
    usage_text(path, true)
}

/// etcdctl itself as `help` shows it for an unknown topic: cobra has not added the `--help`
/// flag to the root command at that point.
pub fn unknown_topic_usage() -> String {
    usage_text("", false)
}

fn usage_text(path: &str, help_flag: bool) -> String {
    let Some(cmd) = find(path) else {
        return usage_text("", help_flag);
    };
    let name = path
        .rsplit(' ')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("etcdctl");
    let subs = runnable_below(path);
    let mut t = String::from("NAME:\n");
    let shown = if path.is_empty() { "etcdctl" } else { path };
    t.push_str(&format!(
        "\t{shown} - {}\n\nUSAGE:\n\t{}\n",
        cmd.short, cmd.usage
    ));
    if path.is_empty() {
        t.push_str(&format!(
            "\nVERSION:\n\t{}\n",
            super::version::ETCDCTL_VERSION
        ));
    }
    // A command group (or etcdctl itself) is what has runnable commands below it.
    if !subs.is_empty() {
        t.push_str(&format!(
            "\nAPI VERSION:\n\t{}\n",
            super::version::API_VERSION
        ));
        t.push_str("\n\nCOMMANDS:\n");
        for s in &subs {
            let rel = if path.is_empty() {
                s.path
            } else {
                &s.path[path.len() + 1..]
            };
            t.push_str(&format!("\t{rel}\t{}\n", s.short));
        }
    }
    if !cmd.long.is_empty() {
        t.push_str("\nDESCRIPTION:\n");
        for l in cmd.long {
            t.push_str(&format!("\t{l}\n"));
        }
    }
    let mut local: Vec<&FlagHelp> = cmd.flags.iter().collect();
    local.extend(OWN_FLAGS.iter().filter(|(p, _)| *p == path).map(|(_, f)| f));
    if path.is_empty() {
        local.extend(GLOBAL.iter());
    }
    t.push_str("\nOPTIONS:\n");
    t.push_str(&flag_lines(&local, help_flag.then_some(name)));
    if !path.is_empty() {
        t.push_str("\nGLOBAL OPTIONS:\n");
        let global: Vec<&FlagHelp> = GLOBAL.iter().chain(cmd.inherited.iter()).collect();
        t.push_str(&flag_lines(&global, None));
    }
    t.push('\n');
    tabwriter(&t)
}

/// Go's text/tabwriter with minwidth 0, tabwidth 8, padding 1 and tabs as padding: a cell is
/// text ended by a tab; cells of one column in consecutive lines form a block whose width is
/// its widest cell plus one, rounded up to the next tab stop.
pub fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    let mut out = String::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    // split('\n') made one line more than there were line ends.
    out.pop();
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column >= lines[this].len() - 1 {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = 0;
        while this < line1 && column < lines[this].len() - 1 {
            width = width.max(lines[this][column].chars().count() + 1);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for cells in &lines[line0..line1] {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < cells.len() {
                if j < widths.len() {
                    let cell_width = widths[j].div_ceil(8) * 8;
                    let pad = cell_width - cell.chars().count();
                    out.push_str(&"\t".repeat(pad.div_ceil(8)));
                } else {
                    out.push('\t');
                }
            }
        }
        out.push('\n');
    }
}

/// The flags shown for `path` (its own, its group's, the global ones).
fn shown_flags(path: &str) -> Vec<&'static FlagHelp> {
    let mut v: Vec<&FlagHelp> = GLOBAL.iter().collect();
    if let Some(c) = find(path) {
        v.extend(c.flags.iter().chain(c.inherited.iter()));
    }
    v.extend(OWN_FLAGS.iter().filter(|(p, _)| *p == path).map(|(_, f)| f));
    v
}

/// Whether command `path` has flag `name` (its own, its group's or a global one). Commands of
/// one group share a flag table in the parser; this keeps each to the flags it shows.
pub fn shows(path: &str, name: &str) -> bool {
    name == "help" || shown_flags(path).iter().any(|f| f.name == name)
}

/// pflag checks a flag's value against its type as it parses: the same errors, word for
/// word (`invalid argument "abc" for "--limit" flag: strconv.ParseInt: ...`).
pub fn check_values(path: &str, f: &crate::flags::Parsed) -> Result<(), String> {
    for h in shown_flags(path) {
        if !f.is_set(h.name) {
            continue;
        }
        let v = f.get(h.name);
        let problem = if h.value.starts_with("[=") {
            go_parse_bool(&v)
        } else if h.value.starts_with("=\"") || h.value.starts_with("=[") {
            None
        } else if h.value[1..].parse::<i64>().is_ok() {
            go_parse_int(&v)
        } else {
            go_parse_duration(&v)
        };
        if let Some(p) = problem {
            let shown = match h.short {
                Some(c) => format!("-{c}, --{}", h.name),
                None => format!("--{}", h.name),
            };
            return Err(format!("invalid argument {v:?} for {shown:?} flag: {p}"));
        }
    }
    Ok(())
}

fn go_parse_bool(v: &str) -> Option<String> {
    const OK: [&str; 12] = [
        "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
    ];
    (!OK.contains(&v)).then(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))
}

/// strconv.ParseInt(v, 0, 64): decimal, or 0x / 0o / 0b / 0 prefixed, with a sign.
fn go_parse_int(v: &str) -> Option<String> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (radix, body) = if let Some(b) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        (16, b)
    } else if let Some(b) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, b)
    } else if let Some(b) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, b)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Some(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"));
    }
    let magnitude = u128::from_str_radix(body, radix).unwrap_or(u128::MAX);
    let limit = if v.starts_with('-') {
        1u128 << 63
    } else {
        (1u128 << 63) - 1
    };
    (magnitude > limit).then(|| format!("strconv.ParseInt: parsing {v:?}: value out of range"))
}

/// time.ParseDuration's errors: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns, us, µs, ms,
/// s, m, h; a bare "0" is fine.
fn go_parse_duration(v: &str) -> Option<String> {
    let invalid = || Some(format!("time: invalid duration {v:?}"));
    let mut s = v.strip_prefix(['+', '-']).unwrap_or(v);
    if s == "0" {
        return None;
    }
    if s.is_empty() {
        return invalid();
    }
    while !s.is_empty() {
        let num_end = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let num = &s[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return invalid();
        }
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        if unit.is_empty() {
            return Some(format!("time: missing unit in duration {v:?}"));
        }
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return Some(format!("time: unknown unit {unit:?} in duration {v:?}"));
        }
        s = &s[unit_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usage text advertises exactly what the parser takes: every command it lists is
    /// dispatched, and every flag it shows is accepted (the global ones both ways).
    #[test]
    fn usage_matches_what_the_parser_accepts() {
        let global: Vec<&str> = crate::flags::GLOBAL.iter().map(|s| s.name).collect();
        let mut shown_global: Vec<&str> = GLOBAL.iter().map(|f| f.name).collect();
        shown_global.push("help");
        shown_global.sort();
        let mut sorted = global.clone();
        sorted.sort();
        assert_eq!(shown_global, sorted);
        let mut missing = Vec::new();
        for c in COMMANDS.iter().chain(OWN_COMMANDS.iter()) {
            // `completion SHELL` takes its shell as an argument.
            let path = if c.path.starts_with("completion ") {
                "completion"
            } else {
                c.path
            };
            let own = crate::etcdctl::command_flags(path)
                .unwrap_or_else(|| panic!("{:?} is listed but not dispatched", c.path));
            let shown = c.flags.iter().chain(c.inherited.iter()).chain(
                OWN_FLAGS
                    .iter()
                    .filter(|(p, _)| *p == c.path)
                    .map(|(_, f)| f),
            );
            for f in shown {
                if !(own.iter().any(|s| s.name == f.name && s.short == f.short)
                    || global.contains(&f.name))
                {
                    missing.push(format!("{} --{}", c.path, f.name));
                }
            }
        }
        assert!(missing.is_empty(), "shown but not accepted: {missing:?}");
    }

    /// No flag the parser has for a command is unreachable: each is shown (so accepted) by
    /// some command that uses that flag table.
    #[test]
    fn every_parsed_flag_is_shown_somewhere() {
        let mut hidden = Vec::new();
        for c in COMMANDS.iter().chain(OWN_COMMANDS.iter()) {
            let path = if c.path.starts_with("completion ") {
                "completion"
            } else {
                c.path
            };
            let Some(own) = crate::etcdctl::command_flags(path) else {
                continue;
            };
            let group = path.split(' ').next().unwrap_or("");
            for s in own {
                let anywhere = COMMANDS
                    .iter()
                    .chain(OWN_COMMANDS.iter())
                    .filter(|d| d.path == group || d.path.starts_with(&format!("{group} ")))
                    .any(|d| shows(d.path, s.name));
                if !anywhere {
                    hidden.push(format!("{path} --{}", s.name));
                }
            }
        }
        assert!(hidden.is_empty(), "parsed but never shown: {hidden:?}");
    }

    #[test]
    fn values_fail_as_pflag_says() {
        assert_eq!(go_parse_int("12"), None);
        assert_eq!(go_parse_int("0x1f"), None);
        assert_eq!(
            go_parse_int("abc").as_deref(),
            Some("strconv.ParseInt: parsing \"abc\": invalid syntax")
        );
        assert_eq!(
            go_parse_int("99999999999999999999").as_deref(),
            Some("strconv.ParseInt: parsing \"99999999999999999999\": value out of range")
        );
        assert_eq!(go_parse_duration("1m30s"), None);
        assert_eq!(go_parse_duration("1.5s"), None);
        assert_eq!(
            go_parse_duration("x").as_deref(),
            Some("time: invalid duration \"x\"")
        );
        assert_eq!(
            go_parse_duration("0x").as_deref(),
            Some("time: unknown unit \"x\" in duration \"0x\"")
        );
        assert_eq!(
            go_parse_duration("5").as_deref(),
            Some("time: missing unit in duration \"5\"")
        );
        assert_eq!(go_parse_bool("T"), None);
        assert!(go_parse_bool("yes").is_some());
    }

    #[test]
    fn tabwriter_pads_columns_to_tab_stops() {
        let t = "a\tb\nlonger cell\tc\n\nx\ty\n";
        assert_eq!(tabwriter(t), "a\t\tb\nlonger cell\tc\n\nx\ty\n");
    }
}
