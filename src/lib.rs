//! # Topkart: the service around the engine
//!
//! ## Layout — what each module owns
//!
//! - [`config`]: the command line and environment; every knob with one doc line.
//! - [`startup`]: `Application::build` (store, migrations, engine, routes) and the graceful
//!   shutdown in `run_until_stopped`; [`listener`]: its listening socket.
//! - [`routes`]: one module per resource, plus the operations endpoints and the original
//!   Topkart paths.
//! - [`auth`]: JWTs, argon2id passwords, the caller extractors.
//! - [`store`]: SQLite and Postgres behind one type, the same SQL for both.
//! - [`error`]: the one error envelope and the table of error codes.
//! - [`json`], [`wire`]: request parsing and the JSON shapes of the API.
//! - [`idempotency`]: `Idempotency-Key` replay for placing orders.
//! - [`live`]: the live stock event streams, coalesced to ten updates a second per deal.
//! - [`rate_limit`]: 429s for password guessing, registration floods and order bots.
//! - [`loadtest`]: `topkart loadtest`, the load bench users run.
//!
//! The engine itself (deal actors, registry, order writer) is the `actors` crate.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod listener;
pub mod live;
pub mod loadtest;
pub mod mail;
pub mod rate_limit;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod wire;
