//! # Topkart's engine: everything between an HTTP handler and the store, with no HTTP in it.
//!
//! ## Layout — what each module owns
//!
//! - [`clock`]: wall-clock milliseconds, the one time unit of the engine.
//! - [`deal`]: a deal's record, its pure synchronous [`deal::DealState`] (the stock, the window,
//!   the per-customer counts, the conservation assertion) and the thin actix [`deal::DealActor`]
//!   that owns one deal's state and decides every reservation in order.
//! - [`mirror`]: the lock-free copy of each deal's stock and window that lets a doomed request be
//!   refused without queuing behind the deal's actor.
//! - [`ledger`]: a deal's available units as one atomic word the actor can lend to the HTTP
//!   workers, so an open, unlimited deal's orders are claimed without a message to its actor.
//! - [`limits`]: the range of every number about a deal or an order, in one place, and the
//!   check of a stored deal against them.
//! - [`placing`]: how an order enters the engine (a claim, or the deal's actor).
//! - [`registry`]: which actor owns which deal.
//! - [`journal`]: what the engine needs from the store (the writer's commit, the daily re-arm).
//! - [`order_writer`]: the group-committing persistence actor; it acknowledges an order only
//!   after the order's batch committed, and gives the units back when a commit fails.

pub mod clock;
pub mod deal;
pub mod journal;
pub mod ledger;
pub mod limits;
pub mod mirror;
pub mod order_writer;
pub mod placing;
pub mod registry;

/// A deal's id, as the store assigns it.
pub type DealId = i64;
/// A user's id, as the store assigns it.
pub type CustomerId = i64;
/// An order's id, as the store assigns it.
pub type OrderId = i64;
/// Unix time in milliseconds (UTC).
pub type Millis = i64;
