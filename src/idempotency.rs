//! Idempotency keys for placing orders: the same key from the same customer within 24 hours
//! gets the first answer again and never reserves twice.
//!
//! While a keyed request is being decided its key is held here as in flight, so a concurrent
//! duplicate is told to retry (409 `IDEMPOTENCY_IN_PROGRESS`) instead of reserving again. Decided
//! answers are kept for 24 hours; successful orders also carry the key in the store, which
//! answers for them after a restart. Transient failures (5xx) are forgotten, so a retry with
//! the same key is a real retry.

use actors::journal::OrderRecord;
use actors::{CustomerId, DealId, Millis};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::error::ApiError;

/// How long an answer is replayed for.
pub const IDEMPOTENCY_TTL_MS: Millis = 24 * 3_600_000;

/// What a keyed request asked for; a replay must ask for the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub deal_id: DealId,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
enum Entry {
    InFlight {
        fingerprint: Fingerprint,
    },
    Decided {
        fingerprint: Fingerprint,
        outcome: Result<OrderRecord, ApiError>,
        at: Millis,
    },
}

/// What to do with a keyed request.
#[derive(Debug)]
pub enum KeyClaim {
    /// First time seen: decide it, then `settle` the key.
    Fresh,
    Replay(Result<OrderRecord, ApiError>),
    Mismatch,
    InProgress,
    /// The cache is at its bound even after dropping expired answers.
    Full,
}

pub struct IdempotencyCache {
    entries: DashMap<(CustomerId, String), Entry>,
    max_entries: usize,
}

impl IdempotencyCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: DashMap::new(),
            max_entries,
        }
    }

    pub fn claim(
        &self,
        customer_id: CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: Millis,
    ) -> KeyClaim {
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, entry| !matches!(entry, Entry::Decided { at, .. } if now - *at >= IDEMPOTENCY_TTL_MS));
            if self.entries.len() >= self.max_entries {
                return KeyClaim::Full;
            }
        }
        match self.entries.entry((customer_id, key.to_owned())) {
            MapEntry::Vacant(slot) => {
                slot.insert(Entry::InFlight { fingerprint });
                KeyClaim::Fresh
            }
            MapEntry::Occupied(mut slot) => match slot.get() {
                Entry::Decided { at, .. } if now - *at >= IDEMPOTENCY_TTL_MS => {
                    slot.insert(Entry::InFlight { fingerprint });
                    KeyClaim::Fresh
                }
                Entry::Decided {
                    fingerprint: first, ..
                }
                | Entry::InFlight { fingerprint: first }
                    if *first != fingerprint =>
                {
                    KeyClaim::Mismatch
                }
                Entry::InFlight { .. } => KeyClaim::InProgress,
                Entry::Decided { outcome, .. } => KeyClaim::Replay(outcome.clone()),
            },
        }
    }

    /// Records the answer to a `Fresh` claim; a transient failure releases the key instead.
    pub fn settle(
        &self,
        customer_id: CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        outcome: &Result<OrderRecord, ApiError>,
        now: Millis,
    ) {
        let map_key = (customer_id, key.to_owned());
        match outcome {
            Err(error) if error.code.status().is_server_error() => {
                self.entries.remove(&map_key);
            }
            _ => {
                self.entries.insert(
                    map_key,
                    Entry::Decided {
                        fingerprint,
                        outcome: outcome.clone(),
                        at: now,
                    },
                );
            }
        }
    }
}
