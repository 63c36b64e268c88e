//! The raft stream: a plain TCP connection on the peer port that carries the messages a write
//! waits for: AppendEntries from a leader's replication task to one follower, and the writes a
//! follower forwards to the leader. One request and its answer at a time per connection.
//!
//! gRPC puts several task hand-offs on each message (the channel's buffer task and the
//! HTTP/2 connection task on the sender, a task per request on the receiver); a write waits
//! for one AppendEntries round trip before it commits, and a follower's watchers wait for a
//! second. Here the sending task writes the frame to the socket itself and the receiving
//! connection's task serves it in place.
//!
//! A connection starts with [`MAGIC`] (its first byte is no HTTP method and no TLS record, so
//! the peer listener tells the two apart by one byte) and the receiver answers with the same
//! bytes: a member that does not speak raft streams answers otherwise or closes, and the
//! sender keeps to gRPC. Then each request is a frame `[u32 length][u8 kind][protobuf]` and
//! each answer `[u32 length][u8 code][body]`: code 0 with the answer, or a gRPC status code
//! with its message, so errors map as they do over gRPC.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// What a raft stream connection starts with.
pub const MAGIC: &[u8] = b"RETCD-RAFT-STREAM/1\n";
/// A frame carrying an AppendEntries request (a `RaftMessage`).
pub const KIND_APPEND: u8 = 1;
/// A frame carrying forwarded writes (a `ProposeBatchRequest`).
pub const KIND_PROPOSE: u8 = 2;
const HEADER: usize = 5;

/// Reads one frame: `None` when the other side closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; HEADER];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raft stream frame of {len} bytes is over the {limit}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some((head[4], body)))
}

/// A buffer holding the header of a frame whose body of `len` bytes is to follow (header and
/// body go out in one write).
fn frame_header(tag: u8, len: usize) -> io::Result<Vec<u8>> {
    let len32 = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "raft stream frame too big"))?;
    let mut buf = Vec::with_capacity(HEADER + len);
    buf.extend_from_slice(&len32.to_be_bytes());
    buf.push(tag);
    Ok(buf)
}

fn frame(tag: u8, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut buf = frame_header(tag, body.len())?;
    buf.extend_from_slice(body);
    Ok(buf)
}

/// Writes the answer to one request.
pub async fn write_answer<W: AsyncWrite + Unpin>(
    w: &mut W,
    answer: Result<Vec<u8>, tonic::Status>,
) -> io::Result<()> {
    let buf = match answer {
        Ok(data) => frame(0, &data)?,
        Err(s) => frame(s.code() as u8, s.message().as_bytes())?,
    };
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads `MAGIC` from `r` (within 5 s).
async fn expect_magic<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<()> {
    let mut got = vec![0u8; MAGIC.len()];
    tokio::time::timeout(Duration::from_secs(5), r.read_exact(&mut got))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no raft stream preface"))??;
    if got != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "not a raft stream (bad preface)",
        ));
    }
    Ok(())
}

/// Reads and checks what a raft stream starts with (the listener saw its first byte) and
/// answers it.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> io::Result<()> {
    expect_magic(s).await?;
    s.write_all(MAGIC).await?;
    s.flush().await
}

/// The `host:port` of an `http://` peer URL; `None` for any other scheme (TLS peers keep
/// to gRPC).
pub fn plain_authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then_some(authority)
}

/// The sending side of one raft stream.
pub struct RaftStream {
    io: BufReader<TcpStream>,
}

impl RaftStream {
    /// Connects to `authority` (from `local_ip` when given) and exchanges the preface; a
    /// member that does not speak raft streams fails it with `ErrorKind::Unsupported`.
    pub async fn connect(authority: &str, local_ip: Option<IpAddr>) -> io::Result<RaftStream> {
        let addr: SocketAddr = tokio::net::lookup_host(authority)
            .await?
            .next()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{authority}: no address"))
            })?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = local_ip.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let mut stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(MAGIC).await?;
        let mut io = BufReader::new(stream);
        match expect_magic(&mut io).await {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(io::Error::new(io::ErrorKind::Unsupported, e))
            }
            other => other,
        }?;
        Ok(RaftStream { io })
    }

    /// Whether the peer closed this idle connection (it never sends unasked, so anything
    /// readable means closed or out of step).
    pub fn closed_while_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.io.get_ref().try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends one request and waits for its answer: the data, or the status the peer refused
    /// it with.
    pub async fn call<M: Message>(
        &mut self,
        kind: u8,
        msg: &M,
        limit: usize,
    ) -> io::Result<Result<Vec<u8>, tonic::Status>> {
        let mut buf = frame_header(kind, msg.encoded_len())?;
        msg.encode(&mut buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.io.get_mut().write_all(&buf).await?;
        let (code, body) = read_frame(&mut self.io, limit).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the raft stream before answering",
            )
        })?;
        if code == 0 {
            return Ok(Ok(body));
        }
        Ok(Err(tonic::Status::new(
            tonic::Code::from(i32::from(code)),
            String::from_utf8_lossy(&body).into_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_without_tls_have_a_plain_authority() {
        assert_eq!(
            plain_authority("http://127.0.0.1:2380"),
            Some("127.0.0.1:2380")
        );
        assert_eq!(plain_authority("http://[::1]:2380/"), Some("[::1]:2380"));
        assert_eq!(plain_authority("https://127.0.0.1:2380"), None);
        assert_eq!(plain_authority("http://"), None);
    }

    #[test]
    fn the_preface_is_told_apart_from_http_by_its_first_byte() {
        for start in [
            b'G', b'P', b'H', b'D', b'O', b'C', b'T', // HTTP methods, h2c's "PRI"
            0x16, // a TLS record
        ] {
            assert_ne!(MAGIC[0], start);
        }
    }

    #[tokio::test]
    async fn a_stream_connects_calls_and_notices_when_its_peer_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut io = BufReader::new(s);
            accept(&mut io).await.unwrap();
            let (kind, body) = read_frame(&mut io, 1024).await.unwrap().unwrap();
            assert_eq!(kind, KIND_PROPOSE);
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&body);
            write_answer(io.get_mut(), Ok(answer)).await.unwrap();
            let (_, body) = read_frame(&mut io, 1024).await.unwrap().unwrap();
            assert_eq!(body, b"\x08\x07");
            write_answer(
                io.get_mut(),
                Err(tonic::Status::permission_denied("removed")),
            )
            .await
            .unwrap();
            // and close
        });
        let mut s = RaftStream::connect(&addr, None).await.unwrap();
        let msg = crate::api::retcdpeerpb::ProposeBatchRequest {
            cluster_id: 5,
            requests: Vec::new(),
        };
        let got = s.call(KIND_PROPOSE, &msg, 1024).await.unwrap().unwrap();
        assert_eq!(got, b"echo:\x08\x05");
        assert!(!s.closed_while_idle());
        let msg = crate::api::retcdpeerpb::ProposeBatchRequest {
            cluster_id: 7,
            requests: Vec::new(),
        };
        let refused = s.call(KIND_APPEND, &msg, 1024).await.unwrap().unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(refused.message(), "removed");
        server.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.closed_while_idle());
    }

    #[tokio::test]
    async fn a_member_without_raft_streams_is_told_apart() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // What an HTTP server answers to bytes it cannot parse; then one that just closes.
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut buf).await;
        });
        for _ in 0..2 {
            let e = RaftStream::connect(&addr, None).await.err().unwrap();
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_answer(&mut a, Ok(b"data".to_vec())).await.unwrap();
        write_answer(&mut a, Err(tonic::Status::permission_denied("removed")))
            .await
            .unwrap();
        assert_eq!(
            read_frame(&mut b, 100).await.unwrap(),
            Some((0, b"data".to_vec()))
        );
        assert_eq!(
            read_frame(&mut b, 100).await.unwrap(),
            Some((tonic::Code::PermissionDenied as u8, b"removed".to_vec()))
        );
        write_answer(&mut a, Ok(vec![0; 200])).await.unwrap();
        assert!(read_frame(&mut b, 100).await.is_err());
        drop(a);
        let (_a, mut c) = tokio::io::duplex(16);
        drop(_a);
        assert_eq!(read_frame(&mut c, 100).await.unwrap(), None);
    }
}
