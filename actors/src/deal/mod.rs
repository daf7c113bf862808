//! One deal: its pure state ([`DealState`]), the messages its actor answers, and the actor
//! ([`DealActor`]), the thin actix shell that owns the state and decides every order in turn.

mod actor;
mod claims;
mod message;
mod state;
mod waitlist;

pub use actor::{DealActor, link};
pub use claims::{Claim, Claims, PaymentRefusal};
pub use message::{
    Amend, Attribute, BeginPayment, ChangeQuantity, ChangeRefusal, EndChange, EndPayment, Follow,
    JoinWaitlist, LeaveWaitlist, LoseOwnership, PlaceOrder, Release, Reload, Resize, ReturnUnits,
    SetClosed, Snapshot, StoredClaims,
};
pub use state::{DealState, Reservation, order_total};
pub use waitlist::{EntryId, JoinRefusal, Leaving, WaitingEntry, Waitlist};

// The deal's plain data, where code written against `deal::` looks for it.
pub use crate::model::{
    ClaimedOrder, DealRecord, DealStatus, DealTerms, PlaceError, PlaceReply, Recurrence,
    ReserveError, ResizeError,
};
