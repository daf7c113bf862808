//! # Topkart's engine: everything between an HTTP handler and the store, with no HTTP in it.
//!
//! ## Layout — what each module owns (each depends only on those above it)
//!
//! - [`limits`]: the range of every number about a deal or an order, in one place.
//! - [`clock`]: wall-clock milliseconds, the one time unit of the engine, and the [`clock::Clock`]
//!   the actors read it from (tests pause and advance it).
//! - [`model`]: plain data — deal records, orders, refusals — with no actix and no I/O.
//! - [`journal`]: the trait the store implements for the engine (the writer's commit, the
//!   daily re-arm).
//! - [`fast_path`]: the lock-free mirror of each deal and the counter its actor lends to the
//!   HTTP workers, so doomed requests are refused and open deals sold without a message.
//! - [`order_writer`]: the group-committing persistence actor; it acknowledges an order only
//!   after the order's batch committed, and gives the units back when a commit fails. It knows
//!   deals only through the [`order_writer::DealLink`] trait.
//! - [`deal`]: a deal's pure synchronous [`deal::DealState`] (the stock, the window, the
//!   per-customer counts, the conservation assertion), its messages, and the thin actix
//!   [`deal::DealActor`] that owns one deal's state and decides every reservation in order.
//! - [`deal_handle`]: what the service holds of a live deal, and how an order enters it.
//! - [`registry`]: which deals this node runs, and where a deal is (`locate`).
//! - [`engine`]: starts and stops the writer and the deal actors, on threads of their own.

pub mod clock;
pub mod deal;
pub mod deal_handle;
pub mod engine;
pub mod fast_path;
pub mod journal;
pub mod limits;
pub mod model;
pub mod order_writer;
pub mod registry;

/// A deal's id, as the store assigns it.
pub type DealId = i64;
/// A user's id, as the store assigns it.
pub type CustomerId = i64;
/// An order's id, as the store assigns it.
pub type OrderId = i64;
/// Unix milliseconds (UTC).
pub type Millis = i64;
