//! The load generator's connections. Over TLS they are tonic channels, as etcdctl's. Over
//! plain TCP a request goes straight onto an HTTP/2 connection (the `h2` crate under hyper):
//! tonic's channel hands every request to a buffer task and hyper spawns a task per request
//! body, and the load generator shares the CPUs with the members it measures, so what it
//! spends per request is taken from them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One connection to a member.
#[derive(Clone)]
pub enum Wire {
    Tonic(Channel),
    H2(H2Wire),
}

/// An HTTP/2 connection, and the tonic channel that takes over once it is gone (tonic's
/// reconnects, as clientv3's do, when a member restarts under load).
#[derive(Clone)]
pub struct H2Wire {
    send: h2::client::SendRequest<Bytes>,
    authority: Authority,
    fallback: Channel,
    broken: Arc<AtomicBool>,
    /// This handle's last `poll_ready` went to the fallback (so `call` must too).
    on_fallback: bool,
}

/// HTTP/2 windows as hyper's client sets them (2 MiB per stream, 5 MiB per connection), so
/// large responses flow as they do through tonic.
const STREAM_WINDOW: u32 = 2 << 20;
const CONN_WINDOW: u32 = 5 << 20;

impl H2Wire {
    /// Opens a plain HTTP/2 connection to `host:port`; its I/O runs in a task of its own.
    pub async fn connect(authority: &str, fallback: Channel) -> Result<H2Wire, String> {
        let authority: Authority = authority
            .parse()
            .map_err(|e| format!("{authority}: bad address: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONN_WINDOW)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|e| format!("{authority}: HTTP/2 handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2Wire {
            send,
            authority,
            fallback,
            broken: Arc::new(AtomicBool::new(false)),
            on_fallback: false,
        })
    }
}

impl Service<http::Request<Body>> for Wire {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Wire::Tonic(c) => c.poll_ready(cx).map_err(Into::into),
            Wire::H2(w) => {
                if !w.broken.load(Ordering::Relaxed) {
                    match w.send.poll_ready(cx) {
                        Poll::Ready(Err(_)) => w.broken.store(true, Ordering::Relaxed),
                        other => {
                            w.on_fallback = false;
                            return other.map_err(Into::into);
                        }
                    }
                }
                w.on_fallback = true;
                w.fallback.poll_ready(cx).map_err(Into::into)
            }
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match self {
            Wire::Tonic(c) => through(c, req),
            Wire::H2(w) if w.on_fallback => through(&mut w.fallback, req),
            Wire::H2(w) => {
                let sent = w.start(req);
                Box::pin(async move {
                    let (response, body) = sent?;
                    if let Some(body) = body {
                        tokio::spawn(body);
                    }
                    let r = response.await?;
                    Ok(r.map(|recv| Body::new(Incoming(recv))))
                })
            }
        }
    }
}

/// A request through a tonic channel (polled ready before).
fn through(
    c: &mut Channel,
    req: http::Request<Body>,
) -> <Wire as Service<http::Request<Body>>>::Future {
    let f = c.call(req);
    Box::pin(async move { f.await.map_err(Into::into) })
}

/// The rest of a request body that was not complete when the request went out (a client
/// stream), copied to the connection as it comes.
type Rest = Pin<Box<dyn Future<Output = ()> + Send>>;

impl H2Wire {
    /// Sends the request's headers and what its body has ready (all of it for a unary call,
    /// which then goes out as one DATA frame with END_STREAM).
    fn start(
        &mut self,
        req: http::Request<Body>,
    ) -> Result<(h2::client::ResponseFuture, Option<Rest>), BoxError> {
        let (mut parts, mut body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = http::Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()?;
        let head = http::Request::from_parts(parts, ());
        let (response, mut tx) = self.send.send_request(head, false)?;
        // A body's frames are ready at once for a unary call; poll with a waker that does
        // nothing and leave the rest, if any, to a task.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut held: Option<Bytes> = None;
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => {
                    if let Some(prev) = held.take() {
                        tx.send_data(prev, false)?;
                    }
                    match f.into_data() {
                        Ok(d) => held = Some(d),
                        Err(f) => {
                            if let Ok(t) = f.into_trailers() {
                                tx.send_trailers(t)?;
                                return Ok((response, None));
                            }
                        }
                    }
                }
                Poll::Ready(None) => {
                    tx.send_data(held.unwrap_or_default(), true)?;
                    return Ok((response, None));
                }
                Poll::Ready(Some(Err(e))) => {
                    tx.send_reset(h2::Reason::CANCEL);
                    return Err(e.into());
                }
                Poll::Pending => {
                    if let Some(prev) = held.take() {
                        tx.send_data(prev, false)?;
                    }
                    return Ok((response, Some(Box::pin(pipe(body, tx)))));
                }
            }
        }
    }
}

/// Copies a streaming request body to its HTTP/2 stream.
async fn pipe(mut body: Body, mut tx: h2::SendStream<Bytes>) {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let sent = match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => tx.send_data(d, false),
                Err(f) => match f.into_trailers() {
                    Ok(t) => {
                        let _ = tx.send_trailers(t);
                        return;
                    }
                    Err(_) => Ok(()),
                },
            },
            None => {
                let _ = tx.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(_)) => return tx.send_reset(h2::Reason::CANCEL),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A response body read from its HTTP/2 stream; what is read is handed back to the flow
/// control window at once.
struct Incoming(h2::RecvStream);

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        match self.0.poll_data(cx) {
            Poll::Ready(Some(Ok(d))) => {
                let _ = self.0.flow_control().release_capacity(d.len());
                Poll::Ready(Some(Ok(Frame::data(d))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => match self.0.poll_trailers(cx) {
                Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                Poll::Ready(Ok(None)) => Poll::Ready(None),
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}
