//! `DealState` with an injected clock: the reservation rules, the expiry instant, and a seeded
//! random-command simulation that checks conservation and the expiry rule after every step.
//!
//! Longer than 500 lines: the seeded simulations and the unit cases they grew from, side by
//! side, so a failing seed can be turned into a case next to its kin.

mod support;

use std::collections::HashMap;

use actors::deal::{DealRecord, DealState, DealStatus, Recurrence, ReserveError, ResizeError};
use actors::limits::{ORDER_QUANTITY_MAX, UNITS_MAX};
use support::{Rng, run_seeds};

const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_795_000_000_000;

fn deal(total_units: i64, limit: Option<i64>) -> DealRecord {
    DealRecord {
        id: 7,
        product_name: "Kettle".into(),
        actual_price: 5_000,
        final_price: 2_500,
        total_units,
        available_units: total_units,
        starts_at: T0,
        expires_at: T0 + HOUR_MS,
        per_customer_limit: limit,
        payment_window_secs: None,
        closed: false,
        recurrence: Recurrence::None,
        round: 1,
        rearmed_day: 0,
        owner_epoch: 0,
        created_at: T0,
        updated_at: T0,
    }
}

/// An order one millisecond before `expires_at` sells; one at `expires_at` or after does not.
#[test]
fn expiry_is_decided_at_the_exact_instant() {
    let mut state = DealState::new(deal(10, None));
    let expires_at = state.record().expires_at;
    assert!(state.reserve(1, 1, expires_at - 1).is_ok());
    assert_eq!(state.reserve(1, 1, expires_at), Err(ReserveError::Expired));
    assert_eq!(
        state.reserve(1, 1, expires_at + 1),
        Err(ReserveError::Expired)
    );
    assert_eq!(state.status(expires_at - 1), DealStatus::Active);
    assert_eq!(state.status(expires_at), DealStatus::Expired);
    assert_eq!(state.available_units(), 9);
}

/// Before `starts_at` a deal is SCHEDULED and refuses; at `starts_at` it sells.
#[test]
fn a_scheduled_deal_sells_from_its_start() {
    let mut state = DealState::new(deal(10, None));
    assert_eq!(state.reserve(1, 1, T0 - 1), Err(ReserveError::NotStarted));
    assert_eq!(state.status(T0 - 1), DealStatus::Scheduled);
    assert!(state.reserve(1, 1, T0).is_ok());
}

/// The last units go exactly once; the refusal says how many are left.
#[test]
fn the_last_unit_sells_once() {
    let mut state = DealState::new(deal(3, None));
    assert!(state.reserve(1, 2, T0).is_ok());
    assert_eq!(
        state.reserve(2, 2, T0),
        Err(ReserveError::SoldOut { available_units: 1 })
    );
    assert!(state.reserve(2, 1, T0).is_ok());
    assert_eq!(
        state.reserve(3, 1, T0),
        Err(ReserveError::SoldOut { available_units: 0 })
    );
    assert_eq!(state.status(T0), DealStatus::SoldOut);
    assert_eq!(state.sold_units(), 3);
}

/// The price comes from the deal, never from the caller; totals are price × quantity.
#[test]
fn the_reservation_carries_the_deals_price() {
    let mut state = DealState::new(deal(5, None));
    let reservation = state.reserve(4, 2, T0).expect("units are available");
    assert_eq!(
        (reservation.unit_price, reservation.total_price),
        (2_500, 5_000)
    );
}

/// The per-customer limit counts what the customer already holds; a release frees it.
#[test]
fn the_per_customer_limit_holds_and_releases() {
    let mut state = DealState::new(deal(10, Some(2)));
    assert!(state.reserve(1, 2, T0).is_ok());
    assert_eq!(
        state.reserve(1, 1, T0),
        Err(ReserveError::LimitExceeded {
            limit: 2,
            already: 2
        })
    );
    assert!(state.reserve(2, 2, T0).is_ok());
    assert!(state.release(1, 1, 1));
    assert!(state.reserve(1, 1, T0).is_ok());
}

/// Closed deals refuse; releases of an earlier round do not become this round's stock.
#[test]
fn closed_deals_refuse_and_stale_rounds_release_nothing() {
    let mut state = DealState::new(deal(5, None));
    assert!(state.reserve(1, 1, T0).is_ok());
    state.set_closed(true, T0);
    assert_eq!(state.reserve(1, 1, T0), Err(ReserveError::Closed));
    assert!(
        !state.release(1, 1, 0),
        "a release of round 0 must not restock round 1"
    );
    assert_eq!(state.available_units(), 4);
}

/// Units cannot drop below what is sold; growing and shrinking move available and total together.
#[test]
fn resizing_never_goes_below_the_units_sold() {
    let mut state = DealState::new(deal(10, None));
    assert!(state.reserve(1, 6, T0).is_ok());
    assert_eq!(
        state.resize(-5),
        Err(ResizeError::BelowSold { sold_units: 6 })
    );
    assert_eq!(state.resize(-4), Ok(()));
    assert_eq!(
        (state.record().total_units, state.available_units()),
        (6, 0)
    );
    assert_eq!(state.resize(3), Ok(()));
    assert_eq!(
        (state.record().total_units, state.available_units()),
        (9, 3)
    );
}

/// A change of units that would take the total past its range is refused before any arithmetic
/// could wrap (issue 8: `i64::MIN` wrapped to a huge delta), and changes nothing; so is an
/// order of more units than one order may hold.
#[test]
fn extreme_resizes_and_quantities_are_refused_and_change_nothing() {
    let mut state = DealState::new(deal(100, None));
    assert!(state.reserve(1, 3, T0).is_ok());
    let before = state.record().clone();
    for delta in [
        i64::MIN,
        i64::MIN + 1,
        -101,
        UNITS_MAX - 99,
        UNITS_MAX,
        i64::MAX - 100,
        i64::MAX,
    ] {
        assert_eq!(state.resize(delta), Err(ResizeError::OutOfRange), "{delta}");
        assert_eq!(state.record(), &before, "{delta} changed the deal");
    }
    assert_eq!(state.resize(UNITS_MAX - 100), Ok(()));
    assert_eq!(state.record().total_units, UNITS_MAX);
    for quantity in [0, ORDER_QUANTITY_MAX + 1, i64::MAX, i64::MIN] {
        assert_eq!(
            state.reserve(2, quantity, T0),
            Err(ReserveError::InvalidQuantity),
            "{quantity}"
        );
    }
    let order = state
        .reserve(2, ORDER_QUANTITY_MAX, T0)
        .expect("the largest order");
    assert_eq!(order.total_price, order.unit_price * ORDER_QUANTITY_MAX);
}

/// Recovery trusts the orders: stored stock that drifted is re-derived and the drift reported.
#[test]
fn recovery_derives_the_stock_from_the_orders() {
    let mut record = deal(10, None);
    record.available_units = 9; // the store claims one sold, the orders say three
    let (state, drift) = DealState::recover(record, HashMap::from([(1, 2), (2, 1)]));
    assert_eq!(state.available_units(), 7);
    assert_eq!(drift, 2);
}

/// Runs one seeded history of random commands against a model of what must hold.
fn simulate(seed: u64, steps: usize) -> Result<(), String> {
    let mut rng = Rng(seed);
    let total = 1 + rng.below(50);
    let limit = (rng.below(3) == 0).then(|| 1 + rng.below(5));
    let mut state = DealState::new(deal(total, limit));
    let mut now = T0 - HOUR_MS / 4 + rng.below(HOUR_MS as u64 / 2);
    // The live orders the model knows of: (customer, quantity).
    let mut live: Vec<(i64, i64)> = Vec::new();
    for step in 0..steps {
        let fail = |what: String| Err(format!("seed {seed}, step {step}: {what}"));
        match rng.below(10) {
            0..=4 => {
                let (customer, quantity) = (rng.below(8), 1 + rng.below(4));
                let before = state.available_units();
                let outcome = state.reserve(customer, quantity, now);
                let record = state.record();
                let expected_open =
                    !record.closed && now >= record.starts_at && now < record.expires_at;
                match outcome {
                    Ok(reservation) => {
                        if !expected_open {
                            return fail(format!(
                                "sold at {now} outside [{}, {}) or while closed",
                                record.starts_at, record.expires_at
                            ));
                        }
                        if quantity > before {
                            return fail(format!("sold {quantity} with {before} available"));
                        }
                        if reservation.quantity != quantity {
                            return fail("reserved another quantity".into());
                        }
                        live.push((customer, quantity));
                    }
                    Err(ReserveError::SoldOut { available_units })
                        if available_units >= quantity =>
                    {
                        return fail(format!(
                            "refused {quantity} as sold out with {available_units} available"
                        ));
                    }
                    Err(ReserveError::Expired) if now < record.expires_at => {
                        return fail("refused as expired before expires_at".into());
                    }
                    Err(_) => {}
                }
            }
            5 | 6 if !live.is_empty() => {
                let index = rng.below(live.len() as u64) as usize;
                let (customer, quantity) = live.swap_remove(index);
                if !state.release(customer, quantity, state.round()) {
                    return fail("a live order's release restocked nothing".into());
                }
            }
            7 => {
                let delta = rng.below(11) - 5;
                let sold = state.sold_units();
                match state.resize(delta) {
                    Ok(()) if state.record().total_units < sold => {
                        return fail("resized below the units sold".into());
                    }
                    Err(_) if state.record().total_units + delta >= sold => {
                        return fail("refused a legal resize".into());
                    }
                    _ => {}
                }
            }
            8 => {
                let closed = rng.below(2) == 0;
                state.set_closed(closed, now);
            }
            _ => now += rng.below(HOUR_MS as u64 / 8),
        }
        let held: i64 = live.iter().map(|(_, quantity)| quantity).sum();
        if state.sold_units() != held
            || state.available_units() + held != state.record().total_units
        {
            return fail(format!(
                "conservation: available {} + held {held} != total {} (state says sold {})",
                state.available_units(),
                state.record().total_units,
                state.sold_units()
            ));
        }
        if let Some(limit) = limit {
            for customer in 0..8 {
                let mine: i64 = live
                    .iter()
                    .filter(|(c, _)| *c == customer)
                    .map(|(_, q)| q)
                    .sum();
                if mine > limit || state.units_held_by(customer) != mine {
                    return fail(format!(
                        "customer {customer} holds {mine} (state: {}), limit {limit}",
                        state.units_held_by(customer)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Thousands of seeded random histories: conservation, the expiry rule and the limit hold
/// after every step. A failure prints its seed; `TOPKART_SIM_SEED=n` replays one.
#[test]
fn random_histories_conserve_units() {
    run_seeds(simulate, 5_000);
}

/// Claims on the lent counter count as sold at once and as a customer's units once attributed;
/// a claim that is returned gives its units back exactly once.
#[test]
fn claims_are_absorbed_attributed_and_returned() {
    let mut state = DealState::new(deal(10, None));
    assert!(state.lendable());
    // Workers claimed 3 units (the ledger went from 10 to 7).
    state.absorb_claims(7);
    assert_eq!((state.available_units(), state.sold_units()), (7, 3));
    assert_eq!(state.unattributed_units(), 3);
    assert!(state.attribute(1, 2, 1));
    assert_eq!(state.units_held_by(1), 2);
    assert!(state.return_claim(1, 1));
    assert_eq!((state.available_units(), state.sold_units()), (8, 2));
    assert_eq!(state.unattributed_units(), 0);
    assert!(
        !state.attribute(1, 1, 0),
        "another round's claim is not this state's"
    );
    assert!(state.release(1, 2, 1));
    assert_eq!(state.available_units(), 10);
}

/// A limited deal is never lent, and waits for attribution before checking its limit.
#[test]
fn a_limit_added_over_unattributed_claims_waits_for_them() {
    let mut state = DealState::new(deal(10, None));
    state.absorb_claims(8);
    let mut terms = state.record().terms();
    terms.per_customer_limit = Some(2);
    state.amend(terms, T0);
    assert!(!state.lendable());
    assert!(state.awaits_attribution());
    assert!(state.attribute(4, 2, 1));
    assert!(!state.awaits_attribution());
    assert_eq!(
        state.reserve(4, 1, T0 + 1),
        Err(ReserveError::LimitExceeded {
            limit: 2,
            already: 2
        })
    );
}

/// The actor's discipline around a lent counter, as the test drives it: every change recalls
/// the loan first and lends again afterwards if the deal is lendable.
struct LentDeal {
    state: DealState,
    /// The counter while lent (what workers claim from); `None` while not lent.
    lent: Option<i64>,
}

impl LentDeal {
    fn recall(&mut self) {
        if let Some(left) = self.lent.take() {
            self.state.absorb_claims(left);
        }
    }

    fn publish(&mut self) {
        assert!(self.lent.is_none());
        if self.state.lendable() {
            self.lent = Some(self.state.available_units());
        }
    }

    fn available(&self) -> i64 {
        self.lent.unwrap_or(self.state.available_units())
    }
}

/// Seeded histories with a lent counter: claims by workers, the writer's attributions and
/// returns, the actor's own reservations, releases, resizes, closes and a limit switched on and
/// off. Conservation (counting claims not yet taken in), the window, and the limit (counting
/// claims not yet attributed) hold after every step.
fn simulate_lent(seed: u64, steps: usize) -> Result<(), String> {
    let mut rng = Rng(seed);
    let total = 1 + rng.below(50);
    let mut deal = LentDeal {
        state: DealState::new(deal(total, None)),
        lent: None,
    };
    deal.publish();
    let mut now = T0 - HOUR_MS / 4 + rng.below(HOUR_MS as u64 / 2);
    // Claimed on the lent counter, not yet reported by the writer: (customer, quantity).
    let mut claimed: Vec<(i64, i64)> = Vec::new();
    // Orders whose customer the state knows: (customer, quantity).
    let mut live: Vec<(i64, i64)> = Vec::new();
    for step in 0..steps {
        let fail = |what: String| Err(format!("seed {seed}, step {step}: {what}"));
        let record = deal.state.record().clone();
        match rng.below(12) {
            0..=3 => {
                // A worker's claim.
                let (customer, quantity) = (rng.below(8), 1 + rng.below(4));
                if let Some(units) = deal.lent.as_mut() {
                    if record.closed || record.per_customer_limit.is_some() {
                        return fail("lent while closed or limited".into());
                    }
                    let open = now >= record.starts_at && now < record.expires_at;
                    if open && *units >= quantity {
                        *units -= quantity;
                        claimed.push((customer, quantity));
                    }
                }
            }
            4 if !claimed.is_empty() => {
                // The writer takes a claim into a batch and reports it.
                let (customer, quantity) = claimed.remove(0);
                if let Some(units) = deal.lent {
                    deal.state.absorb_claims(units);
                }
                deal.state.attribute(customer, quantity, 1);
                live.push((customer, quantity));
            }
            5 if !claimed.is_empty() => {
                // A claim that never reached a batch comes back.
                let index = rng.below(claimed.len() as u64) as usize;
                let (_, quantity) = claimed.swap_remove(index);
                deal.recall();
                deal.state.return_claim(quantity, 1);
                deal.publish();
            }
            6 => {
                // An order through the actor (it parks while the limit awaits attribution).
                let (customer, quantity) = (rng.below(8), 1 + rng.below(4));
                deal.recall();
                if !deal.state.awaits_attribution() {
                    let mine: i64 = live
                        .iter()
                        .chain(&claimed)
                        .filter(|(c, _)| *c == customer)
                        .map(|(_, q)| q)
                        .sum();
                    if deal.state.reserve(customer, quantity, now).is_ok() {
                        if let Some(limit) = record.per_customer_limit {
                            if mine + quantity > limit {
                                return fail(format!(
                                    "customer {customer} with {mine} got {quantity} more, limit {limit}"
                                ));
                            }
                        }
                        live.push((customer, quantity));
                    }
                }
                deal.publish();
            }
            7 if !live.is_empty() => {
                let index = rng.below(live.len() as u64) as usize;
                let (customer, quantity) = live.swap_remove(index);
                deal.recall();
                if !deal.state.release(customer, quantity, 1) {
                    return fail("a live order's release restocked nothing".into());
                }
                deal.publish();
            }
            8 => {
                deal.recall();
                let _ = deal.state.resize(rng.below(11) - 5);
                deal.publish();
            }
            9 => {
                deal.recall();
                deal.state.set_closed(rng.below(3) == 0, now);
                deal.publish();
            }
            10 => {
                deal.recall();
                let mut terms = deal.state.record().terms();
                terms.per_customer_limit = (rng.below(2) == 0).then(|| 2 + rng.below(6));
                deal.state.amend(terms, now);
                deal.publish();
            }
            _ => now += rng.below(HOUR_MS as u64 / 8),
        }
        let held: i64 = live.iter().chain(&claimed).map(|(_, q)| q).sum();
        let total = deal.state.record().total_units;
        if deal.available() + held != total || deal.available() < 0 {
            return fail(format!(
                "conservation: available {} + held {held} != total {total}",
                deal.available()
            ));
        }
        let absorbed_but_unreported = deal.state.unattributed_units();
        let pending: i64 = claimed.iter().map(|(_, q)| q).sum();
        let not_absorbed = deal.state.available_units() - deal.available();
        if absorbed_but_unreported + not_absorbed != pending {
            return fail(format!(
                "unattributed {absorbed_but_unreported} + not taken in {not_absorbed} != claimed {pending}"
            ));
        }
    }
    Ok(())
}

#[test]
fn random_histories_with_a_lent_counter_conserve_units() {
    run_seeds(simulate_lent, 2_000);
}
