//! Watch: streams of MVCC events per key range, with etcd's guarantees — ordered by revision,
//! each event once, no gaps, all events of a revision in one response, resumable from any
//! revision not yet compacted.
//!
//! Committed batches reach the hub from the state machine ([`WatchHub::notify`]). A *synced*
//! watcher gets them at once. A watcher that starts in the past, or whose stream is too slow to
//! take a response (its channel is full), is *unsynced*: a background loop catches it up by
//! scanning the revision range from storage in bounded batches, then makes it synced again.
//! Each watcher remembers the next revision it owes, so the two paths never send an event twice
//! and never skip one. Memory per watcher is bounded by its stream's channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::api::etcdserverpb::{ResponseHeader, WatchResponse};
use crate::api::mvccpb::{event::EventType, Event};
use crate::error::EtcdError;
use crate::mvcc::{RangeEnd, Store};

/// Revisions an unsynced watcher catches up per round (etcd: 1000).
const CATCH_UP_REVS: i64 = 1000;
/// How often unsynced watchers are served.
const SYNC_EVERY: Duration = Duration::from_millis(100);

/// What a client asked to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    pub end: RangeEnd,
    /// First revision to deliver.
    pub start_rev: i64,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
    pub progress_notify: bool,
    /// Split responses larger than the request size limit.
    pub fragment: bool,
}

struct Watcher {
    watch_id: i64,
    spec: WatchSpec,
    /// The next revision this watcher is owed.
    next_rev: i64,
    synced: bool,
    tx: mpsc::Sender<WatchResponse>,
    last_sent: Instant,
}

/// Previous values by (key, revision of the event), for one batch.
type PrevCache = HashMap<(Vec<u8>, i64), Option<crate::api::mvccpb::KeyValue>>;

/// Handle of a registered watcher.
pub type WatcherKey = u64;

#[derive(Default)]
struct Inner {
    watchers: HashMap<WatcherKey, Watcher>,
    next_key: WatcherKey,
}

pub struct WatchHub {
    store: Arc<Store>,
    /// Largest response a fragmenting watcher gets (--max-request-bytes).
    max_response: usize,
    inner: Mutex<Inner>,
    wake: tokio::sync::Notify,
    progress_every: Duration,
}

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..Default::default()
    })
}

impl WatchHub {
    /// Creates the hub and starts its catch-up loop.
    pub fn start(
        store: Arc<Store>,
        progress_every: Duration,
        max_response: usize,
    ) -> Arc<WatchHub> {
        let hub = Arc::new(WatchHub {
            store,
            max_response,
            inner: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            progress_every,
        });
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let Some(h) = weak.upgrade() else { return };
                let _ = tokio::time::timeout(SYNC_EVERY, h.wake.notified()).await;
                h.sync_round();
                h.progress_round();
            }
        });
        hub
    }

    pub fn current_rev(&self) -> i64 {
        self.store.current_rev()
    }

    /// Registers a watcher whose responses go to `tx`. A start revision below the compacted
    /// revision fails with the compacted revision.
    pub fn watch(
        &self,
        watch_id: i64,
        spec: WatchSpec,
        tx: mpsc::Sender<WatchResponse>,
    ) -> Result<WatcherKey, i64> {
        let compact = self.store.compact_rev();
        if spec.start_rev < compact {
            return Err(compact);
        }
        let mut inner = self.inner.lock();
        let key = inner.next_key;
        inner.next_key += 1;
        // Past revisions come from storage; the notify path takes over once caught up.
        let synced = spec.start_rev > self.store.current_rev();
        inner.watchers.insert(
            key,
            Watcher {
                watch_id,
                next_rev: spec.start_rev,
                spec,
                synced,
                tx,
                last_sent: Instant::now(),
            },
        );
        drop(inner);
        if !synced {
            self.wake.notify_one();
        }
        Ok(key)
    }

    pub fn cancel(&self, key: WatcherKey) {
        self.inner.lock().watchers.remove(&key);
    }

    /// Number of watchers (for metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers a committed batch of events (in revision order) to synced watchers.
    pub fn notify(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.watchers.is_empty() {
            return;
        }
        let mut lagging = false;
        let mut prev = PrevCache::new();
        for w in inner.watchers.values_mut().filter(|w| w.synced) {
            // One response per revision: all events of a revision together.
            let mut i = 0;
            while i < events.len() {
                let rev = events[i].kv.as_ref().map(|k| k.mod_revision).unwrap_or(0);
                let mut j = i;
                while j < events.len() && events[j].kv.as_ref().map(|k| k.mod_revision) == Some(rev)
                {
                    j += 1;
                }
                if rev >= w.next_rev {
                    let mine = self.select(w, &events[i..j], &mut prev);
                    if !mine.is_empty() {
                        if !send_events(w, rev, mine, self.max_response) {
                            // Too slow (or gone): catch up from storage from this revision.
                            w.synced = false;
                            lagging = true;
                            break;
                        }
                        w.last_sent = Instant::now();
                    }
                    w.next_rev = rev + 1;
                }
                i = j;
            }
        }
        drop(inner);
        if lagging {
            self.wake.notify_one();
        }
    }

    /// After the store was replaced (snapshot install): everyone catches up from storage.
    pub fn resync_all(&self) {
        for w in self.inner.lock().watchers.values_mut() {
            w.synced = false;
        }
        self.wake.notify_one();
    }

    /// The events of `evs` this watcher wants, with previous values if asked. Previous values
    /// are read once per event and shared by every watcher of the batch through `prev`.
    fn select(&self, w: &Watcher, evs: &[Event], prev: &mut PrevCache) -> Vec<Event> {
        evs.iter()
            .filter(|e| {
                let Some(kv) = e.kv.as_ref() else {
                    return false;
                };
                if !w.spec.end.contains(&w.spec.key, &kv.key) {
                    return false;
                }
                let is_put = e.r#type == EventType::Put as i32;
                !(is_put && w.spec.no_put || !is_put && w.spec.no_delete)
            })
            .map(|e| {
                let mut e = e.clone();
                if w.spec.prev_kv {
                    if let Some(kv) = e.kv.as_ref() {
                        let k = (kv.key.clone(), kv.mod_revision);
                        e.prev_kv = prev
                            .entry(k)
                            .or_insert_with(|| self.store.get_at(&kv.key, kv.mod_revision - 1))
                            .clone();
                    }
                }
                e
            })
            .collect()
    }

    /// Serves unsynced watchers from storage.
    fn sync_round(&self) {
        let keys: Vec<WatcherKey> = {
            let inner = self.inner.lock();
            inner
                .watchers
                .iter()
                .filter(|(_, w)| !w.synced)
                .map(|(k, _)| *k)
                .collect()
        };
        for key in keys {
            let (from, capacity) = {
                let inner = self.inner.lock();
                let Some(w) = inner.watchers.get(&key) else {
                    continue;
                };
                (w.next_rev, w.tx.capacity())
            };
            if capacity == 0 {
                continue;
            }
            let to = (from + CATCH_UP_REVS - 1).min(self.store.current_rev());
            let events = if from <= to {
                self.store.events_between(from, to)
            } else {
                Ok(Vec::new())
            };
            let mut inner = self.inner.lock();
            let Some(w) = inner.watchers.get_mut(&key) else {
                continue;
            };
            if w.next_rev != from {
                continue;
            }
            match events {
                Err(EtcdError::Compacted) => {
                    // As etcd answers it: no revision, no cancel reason.
                    let _ = w.tx.try_send(WatchResponse {
                        header: header(0),
                        watch_id: w.watch_id,
                        canceled: true,
                        compact_revision: self.store.compact_rev(),
                        ..Default::default()
                    });
                    inner.watchers.remove(&key);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watch catch-up failed; retrying");
                }
                Ok(evs) => {
                    let mine = self.select(w, &evs, &mut HashMap::new());
                    if !mine.is_empty() {
                        if !send_events(w, to, mine, self.max_response) {
                            continue;
                        }
                        w.last_sent = Instant::now();
                    }
                    w.next_rev = to.max(from - 1) + 1;
                    // Caught up: under the lock no batch can be notified in between.
                    if w.next_rev > self.store.current_rev() {
                        w.synced = true;
                    }
                }
            }
        }
    }

    /// Progress notifications for idle watchers that asked for them.
    fn progress_round(&self) {
        let now = Instant::now();
        let rev = self.store.current_rev();
        let mut inner = self.inner.lock();
        for w in inner.watchers.values_mut() {
            let due = w.spec.progress_notify
                && w.synced
                && now.duration_since(w.last_sent) >= self.progress_every;
            if due
                && w.tx
                    .try_send(WatchResponse {
                        header: header(rev),
                        watch_id: w.watch_id,
                        ..Default::default()
                    })
                    .is_ok()
            {
                w.last_sent = now;
            }
        }
    }
}

/// Sends `events` to `w` in one response, or (if it asked for fragments and the response would
/// be larger than `max`) in several, all but the last marked `fragment`. False when the
/// stream has no room: nothing was sent and the watcher catches up later.
fn send_events(w: &Watcher, rev: i64, events: Vec<Event>, max: usize) -> bool {
    use prost::Message;
    let size: usize = events.iter().map(|e| e.encoded_len()).sum();
    let mut parts: Vec<Vec<Event>> = Vec::new();
    if w.spec.fragment && size > max {
        let mut part = Vec::new();
        let mut part_size = 0;
        for e in events {
            let n = e.encoded_len();
            if !part.is_empty() && part_size + n > max {
                parts.push(std::mem::take(&mut part));
                part_size = 0;
            }
            part_size += n;
            part.push(e);
        }
        parts.push(part);
    } else {
        parts.push(events);
    }
    let Ok(permits) = w.tx.try_reserve_many(parts.len()) else {
        return false;
    };
    let last = parts.len() - 1;
    for (i, (events, permit)) in parts.into_iter().zip(permits).enumerate() {
        permit.send(WatchResponse {
            header: header(rev),
            watch_id: w.watch_id,
            events,
            fragment: i != last,
            ..Default::default()
        });
    }
    true
}
