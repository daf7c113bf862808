//! Live stock: `GET /api/v1/deals/{id}/events`, a server-sent event stream per deal.
//!
//! Nothing on the order path knows about listeners. One ticker looks, every [`TICK`], at the
//! deals that have listeners (two atomic loads and the derived status each); when what a
//! listener would see changed, it renders the event once and puts it in the deal's
//! `watch` channel. A listener wakes, takes the latest event and writes it: a listener that
//! fell behind skips straight to the newest state, so a deal sends at most ten updates a
//! second however fast it sells, and 10,000 listeners cost one rendered event per tick plus
//! one write each.
//!
//! Every event is one write to each listener's socket, so the node also keeps a budget of event
//! writes a second (`TOPKART_EVENT_WRITES_PER_SEC`, 20,000 by default): up to 2,000 listeners
//! each get ten updates a second; beyond that the ticker spaces its rounds so that the writes
//! stay within the budget (10,000 listeners: two a second each). Measured in
//! docs/BENCHMARKS.md: unbudgeted, 10,000 listeners took 100,000 writes a second and most of
//! a 2-core machine's order throughput with them.
//!
//! The ticker itself runs from `startup` (it needs the whole state: the registry and whether
//! the node is draining).
//!
//! The same code serves a followed deal in cluster mode: its mirror moves with the owner's
//! feed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use actors::clock::now_ms;
use actors::fast_path::mirror::DealMirror;
use actors::{DealId, Millis};
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

/// How often the ticker looks: at most ten updates a second per deal.
pub const TICK: Duration = Duration::from_millis(100);
/// How long one stream lasts at most, unless configured otherwise.
pub const STREAM_MAX_SECS_DEFAULT: u64 = 300;
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The channels of the deals that have listeners, and the listener count.
pub struct LiveStock {
    channels: DashMap<DealId, Channel>,
    listeners: Arc<AtomicUsize>,
    max_listeners: usize,
    writes_per_sec: usize,
    /// How long one stream lasts at most (`TOPKART_EVENT_STREAM_MAX_SECS`).
    stream_max: Duration,
}

struct Channel {
    sender: watch::Sender<Bytes>,
    last: Seen,
}

/// What a listener sees of a deal; a change of any part is an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    version: u64,
    available_units: i64,
    status: &'static str,
}

/// One event's data: the deal's whole live state, so a client needs no other request.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StockEvent<'a> {
    deal_id: DealId,
    /// `SCHEDULED`, `ACTIVE`, `SOLD_OUT`, `EXPIRED` or `CLOSED`.
    #[schema(value_type = String)]
    status: &'a str,
    available_units: i64,
    total_units: i64,
    /// Percentage of the round's units claimed, one decimal.
    claimed_percent: f64,
    round: i64,
    /// When the state was read (RFC 3339, UTC).
    #[schema(format = DateTime)]
    at: String,
}

/// Refused: the node holds as many listeners as it was configured for.
#[derive(Debug)]
pub struct TooManyListeners;

/// One listener: its channel, and its place in the count (given back when dropped).
pub struct Listener {
    receiver: watch::Receiver<Bytes>,
    _counted: Counted,
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        let left = self.0.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("topkart_event_listeners").set(left as f64);
    }
}

impl LiveStock {
    /// `stream_max`: how long one stream lasts at most.
    pub fn new(max_listeners: usize, writes_per_sec: usize, stream_max: Duration) -> Self {
        Self {
            channels: DashMap::new(),
            listeners: Arc::new(AtomicUsize::new(0)),
            max_listeners,
            writes_per_sec: writes_per_sec.max(1),
            stream_max,
        }
    }

    /// How long one stream lasts at most.
    pub fn stream_max(&self) -> Duration {
        self.stream_max
    }

    /// How long the ticker waits between rounds: [`TICK`], or longer when the listeners would
    /// otherwise take more than the budget's writes a second.
    pub fn spacing(&self) -> Duration {
        let budgeted =
            Duration::from_secs_f64(self.listeners() as f64 / self.writes_per_sec as f64);
        budgeted.max(TICK)
    }

    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Acquire)
    }

    /// A new listener of the deal; its first event is the deal as it is now.
    pub fn subscribe(
        &self,
        deal_id: DealId,
        mirror: &DealMirror,
    ) -> Result<Listener, TooManyListeners> {
        let counted = self
            .listeners
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < self.max_listeners).then_some(count + 1)
            })
            .map_err(|_| TooManyListeners)?;
        metrics::gauge!("topkart_event_listeners").set((counted + 1) as f64);
        let counted = Counted(self.listeners.clone());
        let now = now_ms();
        let mut channel = self.channels.entry(deal_id).or_insert_with(|| Channel {
            sender: watch::Sender::new(render(mirror, now)),
            last: seen(mirror, now),
        });
        // The first event is the deal as it is now, not as the last tick saw it.
        let now_seen = seen(mirror, now);
        if now_seen != channel.last {
            channel.last = now_seen;
            channel.sender.send_replace(render(mirror, now));
        }
        let receiver = channel.sender.subscribe();
        drop(channel);
        Ok(Listener {
            receiver,
            _counted: counted,
        })
    }

    /// One tick: every listened deal whose state moved gets its new event; channels without
    /// listeners, and of deals gone, are dropped (which ends their streams).
    pub fn tick(&self, mirror_of: impl Fn(DealId) -> Option<Arc<DealMirror>>) {
        let now = now_ms();
        self.channels.retain(|deal_id, channel| {
            if channel.sender.receiver_count() == 0 {
                return false;
            }
            let Some(mirror) = mirror_of(*deal_id) else {
                return false;
            };
            let now_seen = seen(&mirror, now);
            if now_seen != channel.last {
                channel.last = now_seen;
                channel.sender.send_replace(render(&mirror, now));
            }
            true
        });
    }

    /// Ends every stream (shutdown: open streams would otherwise hold the server open).
    pub fn close_all(&self) {
        self.channels.clear();
    }
}

fn seen(mirror: &DealMirror, now: Millis) -> Seen {
    Seen {
        version: mirror.version(),
        available_units: mirror.available_units(),
        status: mirror.status(now).as_str(),
    }
}

/// The name of every event of the stream (`event:`), as the OpenAPI document gives it.
pub const EVENT_NAME: &str = "stock";

/// The deal's state as one SSE event (`event:` and `data:` lines, blank line).
fn render(mirror: &DealMirror, now: Millis) -> Bytes {
    let deal = mirror.snapshot();
    let total = deal.total_units;
    let claimed_percent = if total > 0 {
        ((total - deal.available_units) as f64 * 1000.0 / total as f64).round() / 10.0
    } else {
        0.0
    };
    let event = StockEvent {
        deal_id: deal.id,
        status: mirror.status(now).as_str(),
        available_units: deal.available_units,
        total_units: total,
        claimed_percent,
        round: deal.round,
        at: crate::wire::rfc3339(now),
    };
    let data = serde_json::to_string(&event).unwrap_or_default();
    Bytes::from(format!("event: {EVENT_NAME}\ndata: {data}\n\n"))
}

/// The listener's events as a response body: the current state at once (after a `retry:`
/// hint), then every change, and a keep-alive comment when the deal is quiet. The stream ends
/// when the deal's channel is dropped (the deal is gone, or the node shuts down), or once it
/// has lasted `lasting` (the client's EventSource reconnects after the `retry` hint: no
/// connection is held for ever, and long-lived listeners spread again over the nodes).
pub fn stream(
    listener: Listener,
    lasting: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let ends = actix_web::rt::time::Instant::now() + lasting;
    futures_util::stream::unfold((listener, true), move |(mut listener, first)| async move {
        if first {
            let current = listener.receiver.borrow_and_update().clone();
            let mut frame = Vec::with_capacity(16 + current.len());
            frame.extend_from_slice(b"retry: 2000\n");
            frame.extend_from_slice(&current);
            return Some((Ok(Bytes::from(frame)), (listener, false)));
        }
        let now = actix_web::rt::time::Instant::now();
        if now >= ends {
            return None;
        }
        let wait = KEEP_ALIVE.min(ends - now);
        match actix_web::rt::time::timeout(wait, listener.receiver.changed()).await {
            Ok(Ok(())) => {
                let current = listener.receiver.borrow_and_update().clone();
                Some((Ok(current), (listener, false)))
            }
            Ok(Err(_)) => None,
            Err(_) if actix_web::rt::time::Instant::now() >= ends => None,
            Err(_) => Some((
                Ok(Bytes::from_static(b": keep-alive\n\n")),
                (listener, false),
            )),
        }
    })
}
