//! Parsing helpers: Go-style flags, Go booleans and durations, URL lists, and the YAML file.

use std::time::Duration;

use super::settings::{self, Kind};
use super::ConfigError;

/// Flags that take no value from the settings table.
const SPECIAL_BOOL_FLAGS: &[&str] = &["version", "help", "h"];

/// Parses Go `flag`-package style arguments: `-name value`, `--name value`, `--name=value`;
/// a boolean flag alone means `true`. Returns `(name, value)` in order.
pub fn parse_flags(args: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(ConfigError(format!(
                "'{arg}' is not a valid flag (flags start with --, e.g. --name {arg})"
            )));
        };
        if body.is_empty() {
            // "--" ends flag parsing; etcd takes no positional arguments.
            if let Some(extra) = args.get(i) {
                return Err(ConfigError(format!("'{extra}' is not a valid flag")));
            }
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let is_bool = SPECIAL_BOOL_FLAGS.contains(&name.as_str())
            || settings::find(&name).map(|s| s.kind == Kind::Bool) == Some(true);
        let known = is_bool || name == "config-file" || settings::find(&name).is_some();
        if !known {
            return Err(ConfigError(format!(
                "flag provided but not defined: -{name} (run 'etcd --help' for the list of flags)"
            )));
        }
        let value = match inline {
            Some(v) => v,
            None if is_bool => "true".to_string(),
            None => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => {
                    return Err(ConfigError(format!("flag needs an argument: -{name}")));
                }
            },
        };
        if is_bool && parse_bool(&value).is_none() {
            return Err(ConfigError(format!(
                "invalid boolean value {value:?} for -{name}: use true or false"
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` (units ns, us, µs, ms, s, m, h; e.g. `2h0m0s`, `1.5s`, `0`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * mult;
    }
    Some(Duration::from_secs_f64(total))
}

/// A listen or advertise URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// As written, e.g. `http://127.0.0.1:2379`.
    pub raw: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Url {
    /// `host:port` suitable for binding (`localhost` stays a name; resolve at bind time).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses a comma-separated URL list for setting `name`.
pub fn parse_urls(name: &str, value: &str) -> Result<Vec<Url>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|u| parse_url(name, u))
        .collect()
}

fn parse_url(name: &str, u: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError(format!("invalid URL {u:?} in --{name}: {why}"));
    let (scheme, rest) = u
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host:port, e.g. http://127.0.0.1:2379"))?;
    match scheme {
        "http" => {}
        "https" | "unix" | "unixs" => {
            return Err(ConfigError(format!(
                "URL {u:?} in --{name}: scheme {scheme} is not supported yet by retcd (use http://)"
            )))
        }
        _ => return Err(bad("scheme must be http or https")),
    }
    let hostport = rest.trim_end_matches('/');
    if hostport.contains('/') {
        return Err(bad("a URL here must not have a path"));
    }
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h
            .split_once("]:")
            .ok_or_else(|| bad("expected [ipv6]:port"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = hostport
            .rsplit_once(':')
            .ok_or_else(|| bad("a port is required, e.g. :2379"))?;
        (h.to_string(), p)
    };
    let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
    Ok(Url {
        raw: u.to_string(),
        scheme: scheme.to_string(),
        host,
        port,
    })
}

/// Reads an etcd YAML config file into `(setting, value)` pairs. Lists become comma-joined
/// strings; `client-transport-security` / `peer-transport-security` map to the TLS settings.
pub fn parse_yaml(text: &str, path: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ConfigError(format!("invalid YAML in config file {path:?}: {e}")))?;
    let mut out = Vec::new();
    let serde_yaml::Value::Mapping(map) = doc else {
        if doc.is_null() {
            return Ok(out);
        }
        return Err(ConfigError(format!(
            "config file {path:?} must be a YAML mapping of setting: value"
        )));
    };
    for (k, v) in map {
        let key = k
            .as_str()
            .ok_or_else(|| ConfigError(format!("config file {path:?}: non-string key {k:?}")))?
            .to_string();
        if key == "client-transport-security" || key == "peer-transport-security" {
            let prefix = if key.starts_with("peer") { "peer-" } else { "" };
            if let serde_yaml::Value::Mapping(tls) = v {
                for (tk, tv) in tls {
                    let tk = tk.as_str().unwrap_or_default();
                    let name = format!("{prefix}{tk}");
                    push_setting(&mut out, &name, &tv, path)?;
                }
            }
            continue;
        }
        push_setting(&mut out, &key, &v, path)?;
    }
    Ok(out)
}

fn push_setting(
    out: &mut Vec<(&'static str, String)>,
    key: &str,
    v: &serde_yaml::Value,
    path: &str,
) -> Result<(), ConfigError> {
    let Some(s) = settings::find(key) else {
        return Err(ConfigError(format!(
            "config file {path:?}: unknown setting {key:?} (setting names are etcd's flag names, e.g. listen-client-urls)"
        )));
    };
    let value = match v {
        serde_yaml::Value::Null => return Ok(()),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => {
            return Err(ConfigError(format!(
                "config file {path:?}: setting {key:?} must be a scalar or a list"
            )))
        }
    };
    out.push((s.name, value));
    Ok(())
}
