//! The fast path: what lets most orders skip the deal's mailbox. The [`mirror`] refuses doomed
//! requests from atomics; the [`ledger`] is the counter the deal's actor lends to the HTTP
//! workers, so an open, unlimited deal's orders are claimed with one compare-and-swap.

pub mod ledger;
pub mod mirror;
