//! `etcdctl txn [options]`: compares, success ops and failure ops read from standard input,
//! one per line, each section ended by an empty line (with `--interactive`, prompted).

use std::io::BufRead;

use crate::client::{Conn, Failure};
use crate::etcdserverpb::{compare, request_op, response_op, Compare, RequestOp, TxnRequest};
use crate::flags::{self, short, Kind, Parsed, Spec};
use crate::printer::{self, Format};

pub const FLAGS: &[Spec] = &[short("interactive", 'i', Kind::Bool, "false")];

/// etcdctl's exit code for malformed input.
const EXIT_INVALID_INPUT: i32 = 3;

fn invalid(m: impl Into<String>) -> Failure {
    Failure {
        message: m.into(),
        code: EXIT_INVALID_INPUT,
    }
}

/// Reads the lines of one section (up to an empty line).
fn section(input: &mut impl BufRead) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = input
            .read_line(&mut line)
            .map_err(|e| invalid(e.to_string()))?;
        if n == 0 || !line.ends_with('\n') {
            return Err(invalid("EOF"));
        }
        // etcdctl trims the spaces around each line (a line of spaces ends the section).
        let line = line.trim().to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// A Go `%q` string at the start of `s` (after spaces), as `fmt.Sscanf` reads one: a
/// "double-quoted" string with Go's escapes, or a `raw` one. None if there is none there or
/// it does not unquote.
pub(crate) fn go_unquote_bytes(s: &str) -> Option<(Vec<u8>, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\r']);
    if let Some(body) = s.strip_prefix('`') {
        let end = body.find('`')?;
        return Some((body.as_bytes()[..end].to_vec(), &body[end + 1..]));
    }
    let body = s.strip_prefix('"')?;
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    let hex = |chars: &mut std::str::CharIndices, n: usize| -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v * 16 + chars.next()?.1.to_digit(16)?))
    };
    let mut buf = [0u8; 4];
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\n' => return None,
            '\\' => match chars.next()?.1 {
                'a' => out.push(7),
                'b' => out.push(8),
                'f' => out.push(12),
                'n' => out.push(b'\n'),
                'r' => out.push(b'\r'),
                't' => out.push(b'\t'),
                'v' => out.push(11),
                '\\' => out.push(b'\\'),
                '"' => out.push(b'"'),
                'x' => out.push(u8::try_from(hex(&mut chars, 2)?).ok()?),
                d @ '0'..='7' => {
                    let mut v = d.to_digit(8)?;
                    for _ in 0..2 {
                        v = v * 8 + chars.next()?.1.to_digit(8)?;
                    }
                    out.push(u8::try_from(v).ok()?);
                }
                'u' => out.extend_from_slice(
                    char::from_u32(hex(&mut chars, 4)?)?
                        .encode_utf8(&mut buf)
                        .as_bytes(),
                ),
                'U' => out.extend_from_slice(
                    char::from_u32(hex(&mut chars, 8)?)?
                        .encode_utf8(&mut buf)
                        .as_bytes(),
                ),
                _ => return None,
            },
            c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    None
}

/// [`go_unquote_bytes`] as text (etcdctl's words are strings).
pub(crate) fn go_unquote(s: &str) -> Option<(String, &str)> {
    go_unquote_bytes(s).map(|(b, rest)| (String::from_utf8_lossy(&b).into_owned(), rest))
}

/// What `fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)` reads: the values it got (empty where
/// it stopped) and how many.
fn scan_compare(rest: &str) -> (Vec<u8>, String, Vec<u8>, usize) {
    let (mut key, mut op, mut val) = (Vec::new(), String::new(), Vec::new());
    let Some((k, rest)) = go_unquote_bytes(rest) else {
        return (key, op, val, 0);
    };
    key = k;
    let Some(rest) = rest.strip_prefix(')') else {
        return (key, op, val, 1);
    };
    // A space in the format wants at least one in the input.
    let spaced = rest.trim_start_matches([' ', '\t', '\r']);
    if spaced.len() == rest.len() {
        return (key, op, val, 1);
    }
    let rest = spaced;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if end == 0 {
        return (key, op, val, 1);
    }
    op = rest[..end].to_string();
    let Some((v, _)) = go_unquote_bytes(&rest[end..]) else {
        return (key, op, val, 2);
    };
    val = v;
    (key, op, val, 3)
}

fn parse_compare(line: &str) -> Result<Compare, Failure> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(invalid(format!("malformed comparison: {line}")));
    };
    let (key, op, val, n) = scan_compare(rest);
    if n != 3 {
        return Err(invalid(format!(
            "malformed comparison: {line}; got {target}({}) {op} {}",
            printer::go_quote(&key),
            printer::go_quote(&val)
        )));
    }
    let int = || {
        std::str::from_utf8(&val)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| invalid(format!("invalid txn compare request: {line}")))
    };
    use compare::{CompareTarget as T, TargetUnion as U};
    let (t, u) = match target {
        "ver" | "version" => (T::Version, U::Version(int()?)),
        "c" | "create" => (T::Create, U::CreateRevision(int()?)),
        "m" | "mod" => (T::Mod, U::ModRevision(int()?)),
        "val" | "value" => (T::Value, U::Value(val)),
        "lease" => (
            T::Lease,
            U::Lease(super::parse_lease(&String::from_utf8_lossy(&val))?),
        ),
        _ => {
            return Err(invalid(format!(
                "malformed comparison: {line} (unknown target {target})"
            )))
        }
    };
    // etcdctl panics on any other operator ("Unknown result op").
    let result = match op.as_str() {
        "=" => compare::CompareResult::Equal,
        "!=" => compare::CompareResult::NotEqual,
        "<" => compare::CompareResult::Less,
        ">" => compare::CompareResult::Greater,
        _ => return Err(invalid(format!("malformed comparison: {line}"))),
    };
    Ok(Compare {
        result: result as i32,
        target: t as i32,
        key,
        target_union: Some(u),
        range_end: Vec::new(),
    })
}

fn parse_op(line: &str, env: &[(String, String)]) -> Result<RequestOp, Failure> {
    let words = super::argify(line);
    // etcdctl's own wording for a request line of one word.
    let (cmd, args) = match words.split_first() {
        Some((cmd, args)) if !args.is_empty() => (cmd, args),
        _ => return Err(invalid(format!("invalid txn compare request: {line}"))),
    };
    let with = |own: &[Spec]| -> Result<Parsed, Failure> {
        let specs: Vec<Spec> = flags::GLOBAL.iter().chain(own.iter()).copied().collect();
        flags::parse(args, &specs, env).map_err(Failure::bad_args)
    };
    let request = match cmd.as_str() {
        "get" => {
            request_op::Request::RequestRange(super::get::build_request(&with(super::get::FLAGS)?)?)
        }
        "put" => request_op::Request::RequestPut(super::put::build_txn_request(&with(
            super::put::FLAGS,
        )?)?),
        "del" => request_op::Request::RequestDeleteRange(super::del::build_request(&with(
            super::del::FLAGS,
        )?)?),
        _ => return Err(invalid(format!("invalid txn request: {line}"))),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

pub async fn run(f: &Parsed, format: Format) -> Result<String, Failure> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let interactive = f.bool("interactive");
    let mut out = String::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let prompt = |out: &mut String, p: &str| {
        if interactive {
            out.push_str(p);
            out.push('\n');
        }
    };
    prompt(&mut out, "compares:");
    let compare = section(&mut input)?
        .iter()
        .map(|l| parse_compare(l))
        .collect::<Result<Vec<_>, _>>()?;
    prompt(&mut out, "success requests (get, put, del):");
    let success = section(&mut input)?
        .iter()
        .map(|l| parse_op(l, &env))
        .collect::<Result<Vec<_>, _>>()?;
    prompt(&mut out, "failure requests (get, put, del):");
    let failure = section(&mut input)?
        .iter()
        .map(|l| parse_op(l, &env))
        .collect::<Result<Vec<_>, _>>()?;
    let conn = Conn::open(f).await?;
    let resp = conn
        .kv()
        .txn(conn.req(TxnRequest {
            compare,
            success,
            failure,
        }))
        .await?
        .into_inner();
    match format {
        Format::Json => {
            out.push_str(&printer::txn_json(&resp));
            out.push('\n');
        }
        Format::Protobuf => return Ok(printer::protobuf(&resp)),
        Format::Table => return Err(format.unsupported()),
        Format::Fields => {
            printer::fields_header(&mut out, &resp.header);
            out.push_str(&format!("\"Succeeded\" : {}\n", resp.succeeded));
            for op in &resp.responses {
                out.push_str(&print_op(op, f, format)?);
            }
        }
        _ => {
            out.push_str(if resp.succeeded {
                "SUCCESS\n"
            } else {
                "FAILURE\n"
            });
            for op in &resp.responses {
                out.push('\n');
                out.push_str(&print_op(op, f, format)?);
            }
        }
    }
    Ok(out)
}

/// One response of a txn, printed as its own command (get, put, del) prints it.
fn print_op(
    op: &crate::etcdserverpb::ResponseOp,
    f: &Parsed,
    format: Format,
) -> Result<String, Failure> {
    match &op.response {
        Some(response_op::Response::ResponseRange(r)) => super::get::print(r, f, format),
        Some(response_op::Response::ResponsePut(r)) => super::put::print(r, f, format),
        Some(response_op::Response::ResponseDeleteRange(r)) => super::del::print(r, f, format),
        other => Ok(format!("\"Unknown\" : {other:?}\n")),
    }
}
