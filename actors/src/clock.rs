//! Wall-clock time in Unix milliseconds, and the [`Clock`] the engine reads it from.
//!
//! The deal state never reads a clock: callers pass `now`. The deal's actor and the fast path
//! read the engine's `Clock`, so a test can run the engine on a [`TokioClock`] over paused
//! tokio time and drive the actor's timers (expiry, the midnight re-arm) by advancing it.

use std::sync::Arc;

use crate::Millis;

/// Milliseconds in one day; daily deals are re-armed on these boundaries (00:00 UTC).
pub const DAY_MS: Millis = 86_400_000;

/// Where the engine reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds now.
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock: the engine's clock in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        now_ms()
    }
}

/// A wall clock that advances with tokio's clock: `start_ms` at the moment it is made, then
/// whatever tokio's (possibly paused and advanced) time says has passed. The actor's timers run
/// on tokio's clock too, so under `tokio::time::pause()` both move together, in no real time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_ms: Millis,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start_ms: Millis) -> Self {
        Self {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> Millis {
        let elapsed = Millis::try_from(self.start.elapsed().as_millis())
            .expect("elapsed milliseconds fit in i64");
        self.start_ms + elapsed
    }
}

/// The engine's default clock.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the system clock is after 1970");
    Millis::try_from(since_epoch.as_millis()).expect("milliseconds since 1970 fit in i64")
}

/// The day number (days since 1970-01-01, UTC) that contains `at`.
pub fn day_of(at: Millis) -> i64 {
    at.div_euclid(DAY_MS)
}

/// 00:00 UTC of the day after the one containing `at`.
pub fn next_midnight(at: Millis) -> Millis {
    (day_of(at) + 1) * DAY_MS
}
