//! Rate limits: fixed-window counters per key, answering 429 `RATE_LIMITED` with `Retry-After`.
//!
//! Failed logins are limited per account and per client address (guessing passwords), logins
//! and registrations per address (generous: a real sale has many buyers behind one carrier NAT),
//! order attempts per customer (bots). Each limit is `N/window` (`10/15m`, `600/1m`, `30/10s`)
//! or `off`; `TOPKART_RATE_LIMITS=off` turns every one off (load tests on loopback).
//!
//! The counters live in memory, per node. Their number is bounded: when full, expired windows
//! are dropped; if it is still full the new key is not limited (fail open — an attack spread over
//! more addresses than the bound must not stop the sale), and a warning is logged.

use std::str::FromStr;

use actors::Millis;
use dashmap::DashMap;

use crate::error::{ApiError, ErrorCode};

/// Keys kept at most across all limits.
const KEYS_MAX: usize = 200_000;

/// `max` attempts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_ms: Millis,
}

/// A limit setting: `N/window` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSetting(pub Option<Limit>);

impl FromStr for LimitSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(LimitSetting(None));
        }
        let bad = || format!("{text:?}: expected N/window such as 10/15m, 600/1m, 30/10s, or off");
        let (max, window) = text.split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let (number, unit) = window.split_at(
            window
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(window.len()),
        );
        let number: i64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| bad())?
        };
        let unit_ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        if max == 0 || number <= 0 {
            return Err(bad());
        }
        // A window longer than a year is a typo, and the bound keeps `started_at + window_ms`
        // far from overflow.
        let window_ms = number
            .checked_mul(unit_ms)
            .filter(|window_ms| *window_ms <= 366 * 24 * 3_600_000)
            .ok_or_else(bad)?;
        Ok(LimitSetting(Some(Limit { max, window_ms })))
    }
}

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    FailedLoginPerAccount,
    FailedLoginPerAddress,
    LoginPerAddress,
    RegistrationPerAddress,
    OrderPerCustomer,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: Millis,
    count: u32,
}

pub struct RateLimits {
    limits: [(Kind, Option<Limit>); 5],
    windows: DashMap<(Kind, String), Window>,
}

impl RateLimits {
    /// `enabled: false` turns every limit off.
    pub fn new(enabled: bool, limits: [(Kind, LimitSetting); 5]) -> Self {
        Self {
            limits: limits.map(|(kind, setting)| (kind, setting.0.filter(|_| enabled))),
            windows: DashMap::new(),
        }
    }

    fn limit(&self, kind: Kind) -> Option<Limit> {
        self.limits
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, limit)| *limit)
    }

    /// Counts one attempt of `kind` by `key`; refuses it when the window is already full.
    pub fn attempt(&self, kind: Kind, key: &str, now: Millis) -> Result<(), ApiError> {
        self.check(kind, key, now)?;
        self.record(kind, key, now);
        Ok(())
    }

    /// Refuses when the window of `kind` for `key` is full, without counting anything.
    pub fn check(&self, kind: Kind, key: &str, now: Millis) -> Result<(), ApiError> {
        let Some(limit) = self.limit(kind) else {
            return Ok(());
        };
        let Some(window) = self.windows.get(&(kind, key.to_owned())).map(|w| *w) else {
            return Ok(());
        };
        let ends_at = window.started_at + limit.window_ms;
        if now < ends_at && window.count >= limit.max {
            let mut refusal =
                ApiError::new(ErrorCode::RateLimited, "too many attempts; retry later");
            refusal.retry_after_secs = Some(
                u32::try_from((ends_at - now + 999) / 1000)
                    .unwrap_or(u32::MAX)
                    .max(1),
            );
            return Err(refusal);
        }
        Ok(())
    }

    /// Counts one event of `kind` for `key` (a failed login, say) without refusing anything.
    pub fn record(&self, kind: Kind, key: &str, now: Millis) {
        let Some(limit) = self.limit(kind) else {
            return;
        };
        if self.windows.len() >= KEYS_MAX {
            self.windows.retain(|(k, _), w| {
                self.limit(*k)
                    .is_some_and(|l| now - w.started_at < l.window_ms)
            });
            if self.windows.len() >= KEYS_MAX {
                tracing::warn!("rate-limit table full; new keys are not limited");
                return;
            }
        }
        let mut window = self
            .windows
            .entry((kind, key.to_owned()))
            .or_insert(Window {
                started_at: now,
                count: 0,
            });
        if now - window.started_at >= limit.window_ms {
            *window = Window {
                started_at: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings read as documented; anything else is refused with the expected form.
    #[test]
    fn limit_settings_parse() {
        assert_eq!(
            "10/15m".parse::<LimitSetting>(),
            Ok(LimitSetting(Some(Limit {
                max: 10,
                window_ms: 900_000
            })))
        );
        assert_eq!(
            "600/1m".parse::<LimitSetting>(),
            Ok(LimitSetting(Some(Limit {
                max: 600,
                window_ms: 60_000
            })))
        );
        assert_eq!(
            "30/10s".parse::<LimitSetting>(),
            Ok(LimitSetting(Some(Limit {
                max: 30,
                window_ms: 10_000
            })))
        );
        assert_eq!(
            "5/h".parse::<LimitSetting>(),
            Ok(LimitSetting(Some(Limit {
                max: 5,
                window_ms: 3_600_000
            })))
        );
        assert_eq!("OFF".parse::<LimitSetting>(), Ok(LimitSetting(None)));
        for bad in ["", "10", "0/1m", "10/0m", "ten/1m", "10/1d", "10/-1m"] {
            assert!(
                bad.parse::<LimitSetting>().is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    /// The window refuses the attempt after `max`, reopens when it ends, and keys are separate.
    #[test]
    fn windows_refuse_then_reopen() {
        let limits = RateLimits::new(
            true,
            [
                (Kind::OrderPerCustomer, "2/10s".parse().expect("setting")),
                (Kind::FailedLoginPerAccount, LimitSetting(None)),
                (Kind::FailedLoginPerAddress, LimitSetting(None)),
                (Kind::LoginPerAddress, LimitSetting(None)),
                (Kind::RegistrationPerAddress, LimitSetting(None)),
            ],
        );
        assert!(limits.attempt(Kind::OrderPerCustomer, "a", 0).is_ok());
        assert!(limits.attempt(Kind::OrderPerCustomer, "a", 1).is_ok());
        let refused = limits
            .attempt(Kind::OrderPerCustomer, "a", 2_500)
            .expect_err("third in the window");
        assert_eq!(refused.retry_after_secs, Some(8));
        assert!(
            limits.attempt(Kind::OrderPerCustomer, "b", 2_500).is_ok(),
            "another key"
        );
        assert!(
            limits.attempt(Kind::OrderPerCustomer, "a", 10_000).is_ok(),
            "a new window"
        );
        assert!(
            limits.attempt(Kind::RegistrationPerAddress, "a", 0).is_ok(),
            "an unlimited kind"
        );
    }
}
