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
        let line = line.trim_end_matches('\n').to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// A Go `%q` string at the start of `s`: (value, rest).
pub(crate) fn go_unquote(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

fn parse_compare(line: &str) -> Result<Compare, Failure> {
    let bad = || invalid(format!("malformed comparison: {line}"));
    let (target, rest) = line.split_once('(').ok_or_else(bad)?;
    let (key, rest) = go_unquote(rest).ok_or_else(bad)?;
    let rest = rest.strip_prefix(')').ok_or_else(bad)?;
    let rest = rest.trim_start();
    let (op, rest) = rest.split_once(' ').ok_or_else(bad)?;
    let (val, _) = go_unquote(rest).ok_or_else(bad)?;
    let result = match op {
        "=" => compare::CompareResult::Equal,
        "!=" => compare::CompareResult::NotEqual,
        "<" => compare::CompareResult::Less,
        ">" => compare::CompareResult::Greater,
        _ => return Err(bad()),
    };
    let int = |v: &str| v.parse::<i64>().map_err(|_| bad());
    use compare::{CompareTarget as T, TargetUnion as U};
    let (t, u) = match target {
        "ver" | "version" => (T::Version, U::Version(int(&val)?)),
        "c" | "create" => (T::Create, U::CreateRevision(int(&val)?)),
        "m" | "mod" => (T::Mod, U::ModRevision(int(&val)?)),
        "val" | "value" => (T::Value, U::Value(val.into_bytes())),
        "lease" => (T::Lease, U::Lease(super::parse_lease(&val)?)),
        _ => {
            return Err(invalid(format!(
                "malformed comparison: {line} (unknown target {target})"
            )))
        }
    };
    Ok(Compare {
        result: result as i32,
        target: t as i32,
        key: key.into_bytes(),
        target_union: Some(u),
        range_end: Vec::new(),
    })
}

fn parse_op(line: &str, env: &[(String, String)]) -> Result<RequestOp, Failure> {
    let words = super::argify(line);
    let (cmd, args) = words
        .split_first()
        .ok_or_else(|| invalid(format!("invalid txn request: {line}")))?;
    let with = |own: &[Spec]| -> Result<Parsed, Failure> {
        let specs: Vec<Spec> = flags::GLOBAL.iter().chain(own.iter()).copied().collect();
        flags::parse(args, &specs, env).map_err(Failure::bad_args)
    };
    let request = match cmd.as_str() {
        "get" => {
            request_op::Request::RequestRange(super::get::build_request(&with(super::get::FLAGS)?)?)
        }
        "put" => {
            request_op::Request::RequestPut(super::put::build_request(&with(super::put::FLAGS)?)?)
        }
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
