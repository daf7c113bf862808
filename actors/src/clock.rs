//! Wall-clock time in Unix milliseconds. The deal state never reads the clock itself: callers
//! pass `now`, so tests inject any instant they like.

use crate::Millis;

/// Milliseconds in one day; daily deals are re-armed on these boundaries (00:00 UTC).
pub const DAY_MS: Millis = 86_400_000;

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
