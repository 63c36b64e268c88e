//! Every output format of etcdctl in one place: simple, json, fields, table, protobuf.
//! JSON is what Go's encoding/json makes of etcd's gogoproto structs: fields in declaration
//! order, zero values omitted, bytes as base64, 64-bit numbers unquoted.

use base64::Engine;

use crate::etcdserverpb::{DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader};
use crate::mvccpb::KeyValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Simple,
    Json,
    Fields,
    Table,
    Protobuf,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        Ok(match s {
            "simple" => Format::Simple,
            "json" => Format::Json,
            "fields" => Format::Fields,
            "table" => Format::Table,
            "protobuf" => Format::Protobuf,
            other => return Err(format!("unknown output format {other:?}")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Json => "json",
            Format::Fields => "fields",
            Format::Table => "table",
            Format::Protobuf => "protobuf",
        }
    }

    /// etcdctl's answer when a command has no printer for this format (exit code 4).
    pub fn unsupported(self) -> crate::client::Failure {
        crate::client::Failure::bad_feature(format!(
            "{} not supported as output format",
            self.name()
        ))
    }
}

/// A JSON object built field by field, leaving out zero values as `omitempty` does.
#[derive(Default)]
pub struct Obj(Vec<String>);

impl Obj {
    pub fn num(mut self, k: &str, v: impl Into<i128>) -> Obj {
        let v = v.into();
        if v != 0 {
            self.0.push(format!("\"{k}\":{v}"));
        }
        self
    }

    pub fn bytes(mut self, k: &str, v: &[u8]) -> Obj {
        if !v.is_empty() {
            let b = base64::engine::general_purpose::STANDARD.encode(v);
            self.0.push(format!("\"{k}\":\"{b}\""));
        }
        self
    }

    pub fn boolean(mut self, k: &str, v: bool) -> Obj {
        if v {
            self.0.push(format!("\"{k}\":true"));
        }
        self
    }

    pub fn raw(mut self, k: &str, v: Option<String>) -> Obj {
        if let Some(v) = v {
            self.0.push(format!("\"{k}\":{v}"));
        }
        self
    }

    pub fn list(self, k: &str, items: Vec<String>) -> Obj {
        if items.is_empty() {
            return self;
        }
        self.raw(k, Some(format!("[{}]", items.join(","))))
    }

    pub fn done(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

pub fn header_json(h: &Option<ResponseHeader>) -> Option<String> {
    h.as_ref().map(|h| {
        Obj::default()
            .num("cluster_id", h.cluster_id)
            .num("member_id", h.member_id)
            .num("revision", h.revision)
            .num("raft_term", h.raft_term)
            .done()
    })
}

/// A response that is only a header, in JSON, with the line end etcdctl prints.
/// Names as quoted JSON strings, for [`Obj::list`].
pub fn quoted(v: &[String]) -> Vec<String> {
    v.iter().map(|s| go_json(s)).collect()
}

/// A string as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u00XX`, control characters other than `\n \r \t` as `\u00XX`.
pub fn go_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One response as etcdctl's printers show it. `simple` always exists; a format left out has
/// no printer for this command in etcdctl, which says "<format> not supported as output
/// format" (exit 4) — after the request was made, as here.
#[derive(Default)]
pub struct Shown {
    simple: String,
    json: Option<String>,
    fields: Option<String>,
    table: Option<String>,
    protobuf: Option<Vec<u8>>,
}

impl Shown {
    pub fn simple(simple: impl Into<String>) -> Shown {
        Shown {
            simple: simple.into(),
            ..Default::default()
        }
    }

    /// A gRPC response printed whole by etcdctl's JSON and protobuf printers.
    pub fn rpc(simple: impl Into<String>, json: String, msg: &impl prost::Message) -> Shown {
        Shown {
            simple: simple.into(),
            json: Some(json),
            protobuf: Some(msg.encode_to_vec()),
            ..Default::default()
        }
    }

    /// A response that is only a header (the auth changes): JSON, protobuf and fields show
    /// the header.
    pub fn header_only(
        simple: impl Into<String>,
        h: &Option<ResponseHeader>,
        msg: &impl prost::Message,
    ) -> Shown {
        let mut fields = String::new();
        fields_header(&mut fields, h);
        Shown::rpc(simple, header_only_json(h), msg).fields(fields)
    }

    pub fn json(mut self, json: String) -> Shown {
        self.json = Some(json);
        self
    }

    pub fn fields(mut self, fields: String) -> Shown {
        self.fields = Some(fields);
        self
    }

    pub fn table(mut self, table: String) -> Shown {
        self.table = Some(table);
        self
    }

    pub fn protobuf(mut self, bytes: Vec<u8>) -> Shown {
        self.protobuf = Some(bytes);
        self
    }

    /// The text to print in `format` (protobuf goes straight to stdout: it is not text).
    pub fn pick(self, format: Format) -> Result<String, crate::client::Failure> {
        let chosen = match format {
            Format::Simple => Some(self.simple),
            Format::Json => self.json,
            Format::Fields => self.fields,
            Format::Table => self.table,
            Format::Protobuf => {
                return match self.protobuf {
                    Some(b) => {
                        use std::io::Write;
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&b);
                        let _ = out.flush();
                        Ok(String::new())
                    }
                    None => Err(format.unsupported()),
                }
            }
        };
        chosen.ok_or_else(|| format.unsupported())
    }
}

pub fn header_only_json(h: &Option<ResponseHeader>) -> String {
    Obj::default().raw("header", header_json(h)).done() + "\n"
}

pub fn kv_json(kv: &KeyValue) -> String {
    Obj::default()
        .bytes("key", &kv.key)
        .num("create_revision", kv.create_revision)
        .num("mod_revision", kv.mod_revision)
        .num("version", kv.version)
        .bytes("value", &kv.value)
        .num("lease", kv.lease)
        .done()
}

pub fn range_json(r: &RangeResponse) -> String {
    Obj::default()
        .raw("header", header_json(&r.header))
        .list("kvs", r.kvs.iter().map(kv_json).collect())
        .boolean("more", r.more)
        .num("count", r.count)
        .done()
}

pub fn put_json(r: &PutResponse) -> String {
    Obj::default()
        .raw("header", header_json(&r.header))
        .raw("prev_kv", r.prev_kv.as_ref().map(kv_json))
        .done()
}

pub fn delete_json(r: &DeleteRangeResponse) -> String {
    Obj::default()
        .raw("header", header_json(&r.header))
        .num("deleted", r.deleted)
        .list("prev_kvs", r.prev_kvs.iter().map(kv_json).collect())
        .done()
}

/// Go's `%q` (strconv.Quote): printable characters as they are, bytes that are not UTF-8 as
/// `\xHH`, other characters escaped.
pub fn go_quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            push_quoted_char(&mut out, ch);
        }
        for &c in chunk.invalid() {
            out.push_str(&format!("\\x{c:02x}"));
        }
    }
    out.push('"');
    out
}

fn push_quoted_char(out: &mut String, ch: char) {
    match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if go_printable(c) => out.push(c),
        c if (c as u32) < 0x1_0000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `unicode.IsPrint` for characters beyond ASCII, without its tables: everything but
/// controls, spaces other than U+0020, the common format characters and private use.
fn go_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(
            u,
            0xAD | 0x61C
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x206F
                | 0xFEFF
                | 0xFFF9..=0xFFFB
                | 0xE000..=0xF8FF
                | 0xF_0000..
        ))
}

/// Go's `time.Duration.String()`: `1.244878ms`, `5s`, `1m30s`, `2h0m0s`.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    let trim = |s: String| s.trim_end_matches('0').trim_end_matches('.').to_string();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return trim(format!("{:.3}", ns as f64 / 1e3)) + "µs";
    }
    if ns < 1_000_000_000 {
        return trim(format!("{:.6}", ns as f64 / 1e6)) + "ms";
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let s = trim(format!("{}.{frac:09}", secs % 60)) + "s";
    match (secs / 3600, secs / 60 % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// `--hex`: bytes as hex escapes, as etcdctl prints them.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("\\x{c:02x}")).collect()
}

/// The first of 256 code points (the last of Unicode) that stand for single raw bytes in
/// output text: etcdctl prints keys and values as the bytes they are, UTF-8 or not.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

fn raw_byte(b: u8) -> char {
    char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// `b` as output text that [`output_bytes`] turns back into exactly `b`: valid UTF-8 stays
/// as it is; other bytes (and the stand-in code points themselves) become stand-ins.
pub fn raw(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if u32::from(ch) >= RAW_BYTE_BASE {
                let mut buf = [0u8; 4];
                out.extend(ch.encode_utf8(&mut buf).bytes().map(raw_byte));
            } else {
                out.push(ch);
            }
        }
        out.extend(chunk.invalid().iter().map(|&x| raw_byte(x)));
    }
    out
}

/// The bytes to write for output text: stand-ins made by [`raw`] become their bytes again.
pub fn output_bytes(s: &str) -> std::borrow::Cow<'_, [u8]> {
    // Every stand-in is encoded starting with 0xF4; most output has none.
    if !s.as_bytes().contains(&0xF4) {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for ch in s.chars() {
        match u32::from(ch).checked_sub(RAW_BYTE_BASE) {
            Some(b) => out.push(b as u8),
            None => out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes()),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One key (unless `value_only`) and its value, each on its own line.
pub fn simple_kv(out: &mut String, kv: &KeyValue, is_hex: bool, value_only: bool) {
    let show = |b: &[u8]| if is_hex { hex(b) } else { raw(b) };
    if !value_only {
        out.push_str(&show(&kv.key));
        out.push('\n');
    }
    out.push_str(&show(&kv.value));
    out.push('\n');
}

pub fn fields_header(out: &mut String, h: &Option<ResponseHeader>) {
    let h = (*h).unwrap_or_default();
    out.push_str(&format!("\"ClusterID\" : {}\n", h.cluster_id));
    out.push_str(&format!("\"MemberID\" : {}\n", h.member_id));
    out.push_str(&format!("\"Revision\" : {}\n", h.revision));
    out.push_str(&format!("\"RaftTerm\" : {}\n", h.raft_term));
}

pub fn fields_kv(out: &mut String, kv: &KeyValue) {
    fields_kv_prefixed(out, "", kv)
}

/// A key-value in the fields format, its names prefixed (`Prev` for previous values).
pub fn fields_kv_prefixed(out: &mut String, pfx: &str, kv: &KeyValue) {
    out.push_str(&format!("\"{pfx}Key\" : {}\n", go_quote(&kv.key)));
    out.push_str(&format!(
        "\"{pfx}CreateRevision\" : {}\n",
        kv.create_revision
    ));
    out.push_str(&format!("\"{pfx}ModRevision\" : {}\n", kv.mod_revision));
    out.push_str(&format!("\"{pfx}Version\" : {}\n", kv.version));
    out.push_str(&format!("\"{pfx}Value\" : {}\n", go_quote(&kv.value)));
    out.push_str(&format!("\"{pfx}Lease\" : {}\n", kv.lease));
}

/// `-w protobuf`: the response's wire encoding, written to standard output as is.
pub fn protobuf(m: &impl prost::Message) -> String {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&m.encode_to_vec());
    let _ = out.flush();
    String::new()
}

pub fn txn_json(r: &crate::etcdserverpb::TxnResponse) -> String {
    use crate::etcdserverpb::response_op::Response;
    let ops = r
        .responses
        .iter()
        .map(|op| {
            let inner = match &op.response {
                Some(Response::ResponseRange(x)) => {
                    format!("{{\"ResponseRange\":{}}}", range_json(x))
                }
                Some(Response::ResponsePut(x)) => format!("{{\"ResponsePut\":{}}}", put_json(x)),
                Some(Response::ResponseDeleteRange(x)) => {
                    format!("{{\"ResponseDeleteRange\":{}}}", delete_json(x))
                }
                Some(Response::ResponseTxn(x)) => format!("{{\"ResponseTxn\":{}}}", txn_json(x)),
                None => "null".to_string(),
            };
            format!("{{\"Response\":{inner}}}")
        })
        .collect();
    Obj::default()
        .raw("header", header_json(&r.header))
        .boolean("succeeded", r.succeeded)
        .list("responses", ops)
        .done()
}

/// A table as etcdctl draws them (olekukonko/tablewriter): headers centered, every cell
/// right-aligned, `+---+` rules.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0))
                .chain(std::iter::once(h.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let mut out = rule.clone();
    for (h, w) in headers.iter().zip(&widths) {
        let pad = w - h.chars().count();
        let left = pad / 2;
        out.push_str(&format!(
            "| {}{}{} ",
            " ".repeat(left),
            h,
            " ".repeat(pad - left)
        ));
    }
    out.push_str("|\n");
    out.push_str(&rule);
    for r in rows {
        for (c, w) in r.iter().zip(&widths) {
            out.push_str(&format!("| {c:>w$} "));
        }
        out.push_str("|\n");
    }
    out.push_str(&rule);
    out
}

/// go-humanize's `Bytes` (SI units), as etcdctl prints database sizes.
pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 10.0 {
        return format!("{} B", n as i64);
    }
    let sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = (n.ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(sizes.len() - 1);
    let val = (n / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", sizes[e])
    } else {
        format!("{val:.0} {}", sizes[e])
    }
}

pub fn event_json(e: &crate::mvccpb::Event) -> String {
    Obj::default()
        .num("type", e.r#type)
        .raw("kv", e.kv.as_ref().map(kv_json))
        .raw("prev_kv", e.prev_kv.as_ref().map(kv_json))
        .done()
}

/// clientv3's WatchResponse as encoding/json writes it (capitalised Go field names).
pub fn watch_json(r: &crate::etcdserverpb::WatchResponse) -> String {
    let events: Vec<String> = r.events.iter().map(event_json).collect();
    format!(
        "{{\"Header\":{},\"Events\":{},\"CompactRevision\":{},\"Canceled\":{},\"Created\":{}}}",
        header_json(&r.header).unwrap_or_else(|| "{}".into()),
        if events.is_empty() {
            "null".to_string()
        } else {
            format!("[{}]", events.join(","))
        },
        r.compact_revision,
        r.canceled,
        r.created
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_output_gives_back_every_byte() {
        let cases: [&[u8]; 5] = [
            b"plain",
            b"\xc3\xa9\xff\x00z",
            b"\xf4\x8f\xbc\x80\xf4\x8f\xbf\xbf",
            b"\xf4\x8f",
            b"",
        ];
        for b in cases {
            let text = format!("<{}>", raw(b));
            let mut want = b"<".to_vec();
            want.extend_from_slice(b);
            want.push(b'>');
            assert_eq!(output_bytes(&text).as_ref(), &want[..], "{b:?}");
        }
    }

    #[test]
    fn go_quote_escapes_as_strconv_quote() {
        assert_eq!(go_quote(b"a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote(b"\xc3\xa9\xff\x01"), r#""é\xff\x01""#);
        assert_eq!(
            go_quote("\u{200b}\u{a0}\u{85} ".as_bytes()),
            r#""\u200b\u00a0\u0085 ""#
        );
        assert_eq!(go_quote("\u{10ffff}".as_bytes()), r#""\U0010ffff""#);
    }
}
