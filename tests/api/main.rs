//! The API suite: every test runs against a real server over real HTTP, once on SQLite and once
//! on Postgres (`on_both_stores!`), each with a fresh store of its own.

mod engine_process;
mod failover;
mod fence;
mod helpers;
// `record_n` and `record_rest` read the fault suite's channels (tests/faults.rs) only.
#[allow(dead_code)]
mod history;

mod access_log;
mod api_doc;
mod burst;
mod changes;
mod claims_cluster;
mod cli;
mod cluster;
mod commit_cut;
mod compat;
mod console;
mod deals;
mod edges;
mod events;
mod every_field;
mod feed;
mod lifecycle;
mod limits;
mod loadtest;
mod mail;
mod metrics;
mod newcomer;
mod openapi;
mod orders;
mod overflow;
mod ownership;
mod passwords;
mod payment_faults;
mod payments;
mod process;
mod readme;
mod redis_outage;
mod security;
mod top_kart;
mod undo;
mod validation;
mod waitlist;
mod waitlist_faults;
