//! The Watch gRPC stream: create, cancel and progress requests from the client; events,
//! created/canceled notices and progress from the hub, with full response headers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::Streaming;

use super::etcdserverpb::{
    watch_create_request::FilterType, watch_request::RequestUnion, ResponseHeader, WatchRequest,
    WatchResponse,
};
use crate::mvcc::RangeEnd;
use crate::server::EtcdServer;
use crate::watch::{WatchSpec, WatcherKey};
use tonic::codegen::BoxStream;

/// Responses buffered per stream; a watcher whose stream is this far behind catches up from
/// storage instead of holding more in memory.
const STREAM_CAPACITY: usize = 128;

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..Default::default()
    })
}

/// Serves one client Watch stream.
pub fn serve(
    server: Arc<EtcdServer>,
    mut inbound: Streaming<WatchRequest>,
    ai: Option<crate::auth::AuthInfo>,
) -> BoxStream<WatchResponse> {
    let (tx, rx) = mpsc::channel::<WatchResponse>(STREAM_CAPACITY);
    let hub = server.watch.clone();
    let checker = server.clone();
    tokio::spawn(async move {
        let mut mine: HashMap<i64, WatcherKey> = HashMap::new();
        let mut next_id: i64 = 0;
        loop {
            let req = match inbound.next().await {
                Some(Ok(req)) => req,
                Some(Err(_)) => break,
                // The client half-closed its side: as etcd does, its watches go on until it
                // cancels the call (or goes away).
                None => {
                    tx.closed().await;
                    break;
                }
            };
            match req.request_union {
                Some(RequestUnion::CreateRequest(c)) => {
                    let rev = hub.current_rev();
                    if checker.check_read(&ai, &c.key, &c.range_end).is_err() {
                        let _ = tx
                            .send(WatchResponse {
                                header: header(rev),
                                watch_id: -1,
                                created: true,
                                canceled: true,
                                cancel_reason: "rpc error: code = PermissionDenied desc = etcdserver: permission denied".into(),
                                ..Default::default()
                            })
                            .await;
                        continue;
                    }
                    let id = if c.watch_id != 0 {
                        c.watch_id
                    } else {
                        while mine.contains_key(&next_id) {
                            next_id += 1;
                        }
                        next_id
                    };
                    if mine.contains_key(&id) {
                        let _ = tx
                            .send(WatchResponse {
                                header: header(rev),
                                watch_id: id,
                                created: true,
                                canceled: true,
                                cancel_reason:
                                    "mvcc: duplicate watch ID provided on the WatchStream".into(),
                                ..Default::default()
                            })
                            .await;
                        continue;
                    }
                    if c.watch_id == 0 {
                        next_id = id + 1;
                    }
                    let spec = WatchSpec {
                        end: RangeEnd::from_request(&c.range_end),
                        key: c.key,
                        start_rev: if c.start_revision > 0 {
                            c.start_revision
                        } else {
                            rev + 1
                        },
                        prev_kv: c.prev_kv,
                        no_put: c.filters.contains(&(FilterType::Noput as i32)),
                        no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
                        progress_notify: c.progress_notify,
                        fragment: c.fragment,
                    };
                    if tx
                        .send(WatchResponse {
                            header: header(rev),
                            watch_id: id,
                            created: true,
                            ..Default::default()
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                    match hub.watch(id, spec, tx.clone()) {
                        Ok(k) => {
                            mine.insert(id, k);
                        }
                        Err(compact_revision) => {
                            // As etcd answers it: no revision, no cancel reason (clients
                            // tell a compaction by compact_revision).
                            let _ = tx
                                .send(WatchResponse {
                                    header: header(0),
                                    watch_id: id,
                                    canceled: true,
                                    compact_revision,
                                    ..Default::default()
                                })
                                .await;
                        }
                    }
                }
                Some(RequestUnion::CancelRequest(c)) => {
                    if let Some(k) = mine.remove(&c.watch_id) {
                        hub.cancel(k);
                        let _ = tx
                            .send(WatchResponse {
                                header: header(hub.current_rev()),
                                watch_id: c.watch_id,
                                canceled: true,
                                ..Default::default()
                            })
                            .await;
                    }
                }
                Some(RequestUnion::ProgressRequest(_)) => {
                    // Every event up to the current revision has been handed to the stream.
                    let _ = tx
                        .send(WatchResponse {
                            header: header(hub.current_rev()),
                            watch_id: -1,
                            ..Default::default()
                        })
                        .await;
                }
                None => {}
            }
        }
        for k in mine.values() {
            hub.cancel(*k);
        }
    });
    let stream = ReceiverStream::new(rx).map(move |mut r| {
        let rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
        let mut h = server.header();
        h.revision = rev;
        r.header = Some(h);
        Ok(r)
    });
    Box::pin(stream)
}
