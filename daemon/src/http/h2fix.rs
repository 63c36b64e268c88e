//! Tolerance for gRPC clients that send a full URL as the HTTP/2 `:authority`.
//!
//! etcdctl 3.4 dials some endpoints (e.g. `endpoint status --endpoints http://host:2379`)
//! through gRPC's passthrough resolver, so its `:authority` is `http://host:2379`. Go's server
//! accepts that; the Rust `h2` server rejects the stream as malformed. For a connection whose
//! first request carries such an authority, this module re-encodes every HEADERS block the
//! client sends (HPACK-decoded with the client's table state, the scheme stripped from
//! `:authority`, re-encoded for the server) before hyper sees it. Every other connection is
//! passed through untouched after its first request is inspected.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which hyper keeps.
const MAX_FRAME: usize = 16384;

/// What the wrapper is doing with the client's bytes.
enum Mode {
    /// Reading the connection preface (or finding out it is not HTTP/2).
    Preface,
    /// HTTP/2, before the first header block.
    Frames,
    /// Re-encoding every header block.
    Rewrite(hpack::Encoder<'static>),
    /// Plain pass-through.
    Pass,
}

/// A client connection whose incoming HTTP/2 header blocks are fixed up in-line.
pub struct H2Fix {
    inner: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    mode: Mode,
    decoder: hpack::Decoder<'static>,
    eof: bool,
}

impl H2Fix {
    pub fn new(inner: TcpStream) -> H2Fix {
        H2Fix {
            inner,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            mode: Mode::Preface,
            decoder: hpack::Decoder::new(),
            eof: false,
        }
    }

    /// Moves whatever can be processed from `inbuf` to `out`. Returns false when more
    /// input is needed.
    fn process(&mut self) -> io::Result<bool> {
        let mut progressed = false;
        loop {
            match &mut self.mode {
                Mode::Pass => {
                    if !self.inbuf.is_empty() {
                        self.out.append(&mut self.inbuf);
                        progressed = true;
                    }
                    return Ok(progressed);
                }
                Mode::Preface => {
                    let n = self.inbuf.len().min(PREFACE.len());
                    if self.inbuf[..n] != PREFACE[..n] {
                        self.mode = Mode::Pass;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(progressed);
                    }
                    self.out.extend(self.inbuf.drain(..PREFACE.len()));
                    self.mode = Mode::Frames;
                    progressed = true;
                }
                Mode::Frames | Mode::Rewrite(_) => {
                    let Some((frame_len, ty)) = frame_at(&self.inbuf, 0) else {
                        return Ok(progressed);
                    };
                    if ty != TYPE_HEADERS {
                        self.out.extend(self.inbuf.drain(..frame_len));
                        progressed = true;
                        continue;
                    }
                    let Some(block_len) = block_len(&self.inbuf)? else {
                        return Ok(progressed);
                    };
                    let raw: Vec<u8> = self.inbuf.drain(..block_len).collect();
                    let block = parse_block(&raw)?;
                    let headers = self
                        .decoder
                        .decode(&block.fragment)
                        .map_err(|e| io::Error::other(format!("HPACK: {e:?}")))?;
                    if matches!(self.mode, Mode::Frames) {
                        if needs_fix(&headers) {
                            self.mode = Mode::Rewrite(hpack::Encoder::new());
                        } else {
                            // The client's encoder state and hyper's decoder stay in step:
                            // pass everything through from here on.
                            self.out.extend_from_slice(&raw);
                            self.mode = Mode::Pass;
                            progressed = true;
                            continue;
                        }
                    }
                    if let Mode::Rewrite(enc) = &mut self.mode {
                        encode_block(enc, &block, headers, &mut self.out);
                    }
                    progressed = true;
                }
            }
        }
    }
}

impl AsyncRead for H2Fix {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Pass) && this.inbuf.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.process()? {
                continue;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        this.eof = true;
                        // Whatever is left unparsed goes through as it is.
                        this.mode = Mode::Pass;
                    } else {
                        this.inbuf.extend_from_slice(rb.filled());
                    }
                }
            }
        }
    }
}

impl AsyncWrite for H2Fix {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The length and type of a complete frame at `at`, if it is all in `b`.
fn frame_at(b: &[u8], at: usize) -> Option<(usize, u8)> {
    let h = b.get(at..at + 9)?;
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
    (b.len() >= at + 9 + len).then_some((9 + len, h[3]))
}

/// The length of a complete header block (HEADERS + CONTINUATIONs) at the start of `b`.
fn block_len(b: &[u8]) -> io::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some((len, ty)) = frame_at(b, at) else {
            return Ok(None);
        };
        if at > 0 && ty != TYPE_CONTINUATION {
            return Err(io::Error::other("HTTP/2: expected CONTINUATION"));
        }
        let flags = b[at + 4];
        at += len;
        if flags & FLAG_END_HEADERS != 0 {
            return Ok(Some(at));
        }
    }
}

/// Splits a complete raw header block into its parts.
fn parse_block(raw: &[u8]) -> io::Result<Block> {
    let bad = |m: &str| io::Error::other(format!("HTTP/2: {m}"));
    let flags = raw[4];
    let stream = u32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]) & 0x7fff_ffff;
    let (first_len, _) = frame_at(raw, 0).ok_or_else(|| bad("short frame"))?;
    let mut p = &raw[9..first_len];
    let mut pad = 0usize;
    if flags & FLAG_PADDED != 0 {
        pad = *p.first().ok_or_else(|| bad("bad padding"))? as usize;
        p = &p[1..];
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        if p.len() < 5 {
            return Err(bad("bad priority"));
        }
        let mut b = [0u8; 5];
        b.copy_from_slice(&p[..5]);
        priority = Some(b);
        p = &p[5..];
    }
    if pad > p.len() {
        return Err(bad("bad padding"));
    }
    let mut fragment = p[..p.len() - pad].to_vec();
    let mut at = first_len;
    while at < raw.len() {
        let (len, _) = frame_at(raw, at).ok_or_else(|| bad("short frame"))?;
        fragment.extend_from_slice(&raw[at + 9..at + len]);
        at += len;
    }
    Ok(Block {
        flags,
        stream,
        priority,
        fragment,
    })
}

/// A complete header block: the HEADERS frame and its CONTINUATIONs.
struct Block {
    flags: u8,
    stream: u32,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// `http://host:port` -> `host:port`; `None` when the authority is fine as it is.
fn fixed_authority(v: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(v).ok()?;
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))?;
    Some(rest.trim_end_matches('/').as_bytes().to_vec())
}

fn needs_fix(headers: &[(Vec<u8>, Vec<u8>)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.as_slice() == b":authority" && fixed_authority(v).is_some())
}

fn encode_block(
    enc: &mut hpack::Encoder<'_>,
    b: &Block,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    out: &mut Vec<u8>,
) {
    let headers: Vec<(Vec<u8>, Vec<u8>)> = headers
        .into_iter()
        .map(|(n, v)| {
            if n.as_slice() == b":authority" {
                let v = fixed_authority(&v).unwrap_or(v);
                (n, v)
            } else {
                (n, v)
            }
        })
        .collect();
    let block = enc.encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
    let mut first = Vec::new();
    let mut flags = b.flags & FLAG_END_STREAM;
    if let Some(p) = b.priority {
        flags |= FLAG_PRIORITY;
        first.extend_from_slice(&p);
    }
    let room = MAX_FRAME - first.len();
    let (head, mut rest) = block.split_at(block.len().min(room));
    first.extend_from_slice(head);
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    write_frame(out, TYPE_HEADERS, flags, b.stream, &first);
    while !rest.is_empty() {
        let (chunk, r) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = r;
        let f = if rest.is_empty() { FLAG_END_HEADERS } else { 0 };
        write_frame(out, TYPE_CONTINUATION, f, b.stream, chunk);
    }
}

fn write_frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}
