//! The store: SQLite (embedded default) or Postgres (production), chosen by the URL's scheme,
//! one file per resource.
//!
//! Both backends run the very same SQL text (`$N` placeholders work in both through sqlx), so
//! the two cannot drift apart in meaning: the [`on_pool!`] macro expands each query once per
//! backend. Only the migrations differ (the id column's type). The one story test in
//! `tests/store_story.rs` and the whole API suite run against both.

//!
//! - `pool`: the connection and `on_pool!`; `error`: `StoreError`; `rows`: row types.
//! - `users`, `tokens`, `deals`, `orders`: the queries of each resource, as `impl Store` blocks.
//! - `tracking`: an order's tracking events; `statistics`: the figures, kept in `order_stats`
//!   (`stats_rows`: where an order counts there).
//! - `payments`: wallets, paying an order, lapsing unpaid claims (money moves with its entry).
//! - `waitlist`: waitlist entries, and serving them (order and promotion in one transaction).
//! - `outbox`: the e-mail owed, written with what caused it, and the mailer's leases.
//! - `journal`: the store as the engine's `Journal`.
//! - `sqlite_writer`: SQLite's order writer (rusqlite, a thread of its own); `sqlite_held`:
//!   SQLite's start-up sum of the units each customer holds.

mod deals;
mod error;
mod journal;
mod orders;
mod outbox;
mod payments;
mod pool;
mod rows;
mod sqlite_held;
mod sqlite_writer;
mod statistics;
mod stats_rows;
mod tokens;
mod tracking;
mod users;
mod waitlist;

pub use deals::{LoadedDeals, MalformedDeal, NewDeal, StockCheck};
pub use error::StoreError;
pub use journal::StoreJournal;
pub use orders::{OrderFilter, Transition};
pub use outbox::{MailKind, MailOrder, OwedMail};
pub use payments::{Payment, UserFilter};
pub use pool::{Store, WRITER_CONNECTIONS_MAX};
pub use rows::{DealRow, User};
pub use statistics::{DaySales, DealSale, OrderTotals};
pub use tracking::{NewTrackingEvent, TrackingEvent};
pub use users::NewUser;
pub use waitlist::EntryRow;
