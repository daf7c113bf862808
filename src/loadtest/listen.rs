//! `--listeners N`: live stock listeners (`GET /api/v1/deals/{id}/events`) held open on the
//! scenario's deal while it runs, so that a run measures what they cost the engine: its
//! resident memory before and after they connect (the engine's own `/metrics`), and the
//! throughput beside a run without them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::setup::join_all;

/// What the listeners cost and saw, for the report.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ListenerReport {
    pub listeners: usize,
    /// The engine's resident memory just before they connected, and with them connected.
    pub engine_memory_before_bytes: Option<u64>,
    pub engine_memory_after_bytes: Option<u64>,
    pub engine_bytes_per_listener: Option<f64>,
    /// Events received by all of them during the run.
    pub events_received: u64,
}

/// The open listeners; dropping them hangs up.
pub struct Listeners {
    tasks: Vec<actix_web::rt::task::JoinHandle<()>>,
    events: Arc<AtomicU64>,
    report: ListenerReport,
}

impl Listeners {
    /// Opens `count` streams on the deal, 100 at a time, each awaiting its first event.
    pub async fn open(base: &str, deal_id: i64, count: usize) -> Result<Self, String> {
        let before = engine_memory(base).await;
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().limit(count + 1))
            .finish();
        let url = format!("{base}/api/v1/deals/{deal_id}/events");
        let events = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
            let opened = join_all(
                chunk
                    .iter()
                    .map(|_| async {
                        let mut response = client
                            .get(&url)
                            .send()
                            .await
                            .map_err(|error| format!("opening a listener: {error}"))?;
                        if response.status() != 200 {
                            return Err(format!(
                                "opening a listener: {} (is TOPKART_EVENT_LISTENERS_MAX high enough?)",
                                response.status()
                            ));
                        }
                        // Connected once the first event is in.
                        response.next().await;
                        Ok(response)
                    })
                    .collect(),
            )
            .await;
            for response in opened {
                let mut response = response?;
                let events = events.clone();
                tasks.push(actix_web::rt::spawn(async move {
                    while let Some(Ok(chunk)) = response.next().await {
                        let seen = chunk.windows(5).filter(|w| w == b"data:").count();
                        events.fetch_add(seen as u64, Ordering::Relaxed);
                    }
                }));
            }
            if tasks.len() % 1_000 == 0 || tasks.len() == count {
                eprintln!("   listeners: {}/{count} connected", tasks.len());
            }
        }
        let after = engine_memory(base).await;
        let per_listener = match (before, after) {
            (Some(before), Some(after)) if count > 0 => {
                Some(after.saturating_sub(before) as f64 / count as f64)
            }
            _ => None,
        };
        Ok(Self {
            tasks,
            events,
            report: ListenerReport {
                listeners: count,
                engine_memory_before_bytes: before,
                engine_memory_after_bytes: after,
                engine_bytes_per_listener: per_listener,
                events_received: 0,
            },
        })
    }

    /// Hangs up, and says what they cost and saw.
    pub fn close(self) -> ListenerReport {
        for task in &self.tasks {
            task.abort();
        }
        ListenerReport {
            events_received: self.events.load(Ordering::Relaxed),
            ..self.report
        }
    }
}

/// The engine's resident memory, from its `/metrics` (`process_resident_memory_bytes`).
async fn engine_memory(base: &str) -> Option<u64> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut response = client.get(format!("{base}/metrics")).send().await.ok()?;
    let body = response.body().limit(16 * 1024 * 1024).await.ok()?;
    let text = std::str::from_utf8(&body).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|bytes| bytes as u64)
}
