//! The engine's plain data — deals, orders, refusals — with no actix and no I/O: the leaf every
//! other module of the engine (and the service) builds on.

mod deal;
mod order;
mod refusal;

pub use deal::{DealRecord, DealStatus, DealTerms, LoadedDeal, Problem, Recurrence};
pub use order::{
    Claim, ClaimedOrder, NewOrder, OrderRecord, OrderStatus, PaymentStatus, PlaceReply,
    ReturnedUnits, WaitingEntry,
};
pub use refusal::{PlaceError, ReserveError, ResizeError};
