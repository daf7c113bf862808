//! Paying an order, changing an unpaid order's quantity, and crediting a wallet (issue 12's
//! lifecycle).
//!
//! A payment asks the deal's actor first (`BeginPayment`): the actor decides, at the instant,
//! whether it comes before the order's deadline, and from then on no lapse touches the claim.
//! Then the store debits the wallet and marks the order paid in one transaction (or changes
//! nothing), and the actor hears the outcome (`EndPayment`) whatever it was, so that a claim
//! whose payment failed after its deadline lapses at once.

use actors::clock::now_ms;
use actors::deal::{
    BeginPayment, ChangeQuantity, ChangeRefusal, EndChange, EndPayment, PaymentRefusal, PlaceError,
};
use actors::journal::{OrderRecord, OrderStatus, PaymentStatus};
use actors::limits::{BALANCE_MAX_MINOR, CREDIT_MAX_MINOR};

use super::engine_gone;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::{Payment, StoreError, User};

/// Pays the caller's order from their wallet. With an `Idempotency-Key`, a retry of a payment
/// that went through answers as it did (the order, PAID); a payment is debited once per order
/// in any case (the store's unique entry per order and kind).
pub async fn pay_order(
    state: &AppState,
    caller: Caller,
    order_id: i64,
    key: Option<String>,
) -> Result<OrderRecord, ApiError> {
    let order = super::orders::order_for(state, caller, order_id).await?;
    if order.customer_id != caller.user_id {
        // An admin sees the order but pays for nobody.
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an order is paid by its customer",
        ));
    }
    match order.payment_status {
        PaymentStatus::Unpaid if order.status == OrderStatus::Open => {}
        PaymentStatus::Paid if key.is_some() => {
            if state.store.payment_key(order.id).await? == key {
                return Ok(order);
            }
            return Err(not_payable(&order));
        }
        _ => return Err(not_payable(&order)),
    }
    let handle = super::handle_of(state, order.deal_id)?;
    let begun = handle
        .addr
        .send(BeginPayment { order_id })
        .await
        .map_err(engine_gone)?;
    match begun {
        Ok(_) => {}
        Err(PaymentRefusal::Expired) => {
            return Err(ApiError::new(
                ErrorCode::PaymentExpired,
                "the order's payment deadline has passed: it is being cancelled",
            ));
        }
        Err(PaymentRefusal::InProgress) => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a payment of this order is under way",
            ));
        }
        Err(PaymentRefusal::NotOwner) => return Err(ApiError::deal_unavailable()),
        Err(PaymentRefusal::NotClaimed) => {
            // Paid, cancelled or lapsed since it was read: the store says which.
            let current = super::orders::order_for(state, caller, order_id).await?;
            return Err(not_payable(&current));
        }
    }
    let paid = state
        .store
        .pay_order(order_id, caller.user_id, key.as_deref(), now_ms())
        .await;
    // The actor hears the outcome whatever it was (a mailbox error here would leave the claim
    // `Paying`: it is then lapsed when the deal reloads).
    let settled = matches!(paid, Ok(Payment::Paid));
    handle.addr.do_send(EndPayment {
        order_id,
        paid: settled,
    });
    match paid? {
        Payment::Paid => {
            metrics::counter!("topkart_payments_total").increment(1);
            tracing::info!(order_id, "order paid");
            super::orders::order_for(state, caller, order_id).await
        }
        Payment::InsufficientBalance { balance } => Err(ApiError::new(
            ErrorCode::InsufficientBalance,
            format!(
                "the wallet holds {}, the order costs {}",
                crate::wire::Money(balance),
                crate::wire::Money(order.total_price)
            ),
        )
        .with_extra("balance", serde_json::json!(crate::wire::Money(balance)))),
        Payment::NotPayable => {
            let current = super::orders::order_for(state, caller, order_id).await?;
            Err(not_payable(&current))
        }
    }
}

fn not_payable(order: &OrderRecord) -> ApiError {
    let why = match (order.status, order.payment_status) {
        (_, PaymentStatus::NotRequired) => "needs no payment".to_owned(),
        (_, PaymentStatus::Paid) => "is paid already".to_owned(),
        (_, PaymentStatus::Refunded) => "was paid and refunded".to_owned(),
        (status, PaymentStatus::Unpaid) => format!("is {}", status.as_str()),
    };
    ApiError::new(
        ErrorCode::InvalidTransition,
        format!("the order {why}: there is nothing to pay"),
    )
}

/// Credits `amount` (minor units) to a user's wallet (an admin's act).
pub async fn credit(state: &AppState, user_id: i64, amount: i64) -> Result<User, ApiError> {
    if !(1..=CREDIT_MAX_MINOR).contains(&amount) {
        return Err(ApiError::field(
            "amount",
            format!(
                "must be more than 0.00 and at most {}",
                crate::wire::Money(CREDIT_MAX_MINOR)
            ),
        ));
    }
    match state
        .store
        .credit(user_id, amount, BALANCE_MAX_MINOR, now_ms())
        .await
    {
        Ok(Some(user)) => {
            tracing::info!(user_id, amount, "wallet credited");
            Ok(user)
        }
        Ok(None) => Err(ApiError::not_found("user")),
        Err(StoreError::Conflict { .. }) => Err(ApiError::field(
            "amount",
            format!(
                "would take the wallet past {}",
                crate::wire::Money(BALANCE_MAX_MINOR)
            ),
        )),
        Err(error) => Err(error.into()),
    }
}

/// Changes the quantity of the caller's open, unpaid order (`PATCH /orders/{id}`), through the
/// deal's actor: more units are taken first (refused as an order of them would be) and given
/// back if the store does not take the change; fewer come back to the deal only once the
/// store has it. An order that is a claim is held (not lapsed, not paid) meanwhile.
pub async fn change_quantity(
    state: &AppState,
    caller: Caller,
    order_id: i64,
    quantity: i64,
) -> Result<OrderRecord, ApiError> {
    let order = super::orders::order_for(state, caller, order_id).await?;
    if order.customer_id != caller.user_id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an order's quantity is changed by its customer",
        ));
    }
    if !(1..=super::orders::QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::field(
            "quantity",
            format!("must be from 1 to {}", super::orders::QUANTITY_MAX),
        ));
    }
    let changeable = order.status == OrderStatus::Open
        && matches!(
            order.payment_status,
            PaymentStatus::NotRequired | PaymentStatus::Unpaid
        );
    if !changeable {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "only an open, unpaid order's quantity can change",
        ));
    }
    if quantity == order.quantity {
        return Ok(order);
    }
    let handle = super::handle_of(state, order.deal_id)?;
    let take = (quantity - order.quantity).max(0);
    let begun = handle
        .addr
        .send(ChangeQuantity {
            order_id,
            customer_id: order.customer_id,
            round: order.round,
            take,
        })
        .await
        .map_err(engine_gone)?;
    let epoch = match begun {
        Ok(epoch) => epoch,
        Err(ChangeRefusal::Refused(refusal)) => return Err(PlaceError::from(refusal).into()),
        Err(ChangeRefusal::Claim(PaymentRefusal::Expired)) => {
            return Err(ApiError::new(
                ErrorCode::PaymentExpired,
                "the order's payment deadline has passed: it is being cancelled",
            ));
        }
        Err(ChangeRefusal::Claim(_)) => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "the order is being paid or changed; retry shortly",
            ));
        }
        Err(ChangeRefusal::NotOwner) => return Err(ApiError::deal_unavailable()),
    };
    let now = now_ms();
    let mut stored = state
        .store
        .change_order_quantity(&order, quantity, epoch, now)
        .await;
    // The answer lost: the order read back says whether the change was made; when the store
    // does not say in time, nothing is given back (the deal's memory then lacks units the
    // store may have, never the other way round).
    let mut unknown = false;
    if let Err(StoreError::OutcomeUnknown { .. }) = &stored {
        let made = |stored: &OrderRecord| stored.quantity == quantity && stored.updated_at == now;
        match super::read_back_order(state, order_id, made).await {
            Some(found) => stored = Ok(found.is_some()),
            None => unknown = true,
        }
    }
    let applied = matches!(stored, Ok(true));
    handle.addr.do_send(EndChange {
        order_id,
        customer_id: order.customer_id,
        round: order.round,
        // A stored decrease frees its units; an increase not stored gives back what it took.
        give_back: if unknown {
            0
        } else if applied {
            (order.quantity - quantity).max(0)
        } else {
            take
        },
        quantity: applied.then_some(quantity),
    });
    if unknown {
        return Err(super::outcome_unknown());
    }
    match stored? {
        true => {
            tracing::info!(
                order_id,
                from = order.quantity,
                to = quantity,
                "order quantity changed"
            );
            super::orders::order_for(state, caller, order_id).await
        }
        false => {
            let current = super::orders::order_for(state, caller, order_id).await?;
            Err(ApiError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "the order changed meanwhile (it is {}, {}): nothing was done",
                    current.status.as_str(),
                    current.payment_status.as_str()
                ),
            ))
        }
    }
}
