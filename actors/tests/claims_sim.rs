//! A seeded random-command simulation of a deal with a payment window (issue 12): claims are
//! placed, paid (in time or not), changed in quantity, cancelled and lapsed at their deadlines,
//! in any order, and after every step the deal conserves its units, respects the per-customer
//! limit, and the claims agree with what happened: no claim past its deadline is still waiting
//! after the actor's look, a paid claim never lapses, a lapsed one was never paid, and a
//! payment begins only before its deadline. Customers join and leave the waitlist; whatever
//! frees units (a cancellation, a lapse, a smaller order, units added, a promotion the store
//! did not take) serves it, and the promotions' stores succeed or fail in any order. After every
//! step: no unit is free while a waiting entry fits it, entries are served first come first
//! served (first fit), and the per-customer limit counts what is being served.
//! `TOPKART_SIM_SEED=n` replays one seed.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use actors::deal::{
    Claim, DealState, DealStatus, JoinRefusal, Leaving, PaymentRefusal, WaitingEntry,
};
use actors::{Millis, OrderId};
use support::Rng;

const WINDOW_MS: i64 = 10_000;
/// Entries a waitlist holds at most in the simulation.
const WAITLIST_MAX: usize = 4;
const CUSTOMERS: i64 = 8;

/// What the histories did, over all seeds: a simulation that never served anyone proves nothing.
static JOINED: AtomicUsize = AtomicUsize::new(0);
static SERVED: AtomicUsize = AtomicUsize::new(0);
static UNSERVED: AtomicUsize = AtomicUsize::new(0);
static LEFT: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Waiting,
    Busy,
    Lapsing,
}

/// What the model knows of a live order of the round.
#[derive(Debug, Clone, Copy)]
struct Live {
    customer: i64,
    quantity: i64,
    /// `None` once paid (the claim ended).
    claim: Option<(Millis, Stage)>,
}

/// What the model knows of the waitlist: entries waiting (by id, the order they joined) and
/// those being served (their units taken, their order being stored).
#[derive(Debug, Default)]
struct Line {
    waiting: BTreeMap<i64, (i64, i64)>,
    serving: Vec<WaitingEntry>,
    next_id: i64,
}

/// The actor's step after anything that frees units: serve every entry that fits, checking each
/// promotion against the model (the first waiting entry that fits, within the limit).
fn serve(
    state: &mut DealState,
    line: &mut Line,
    held_by: &dyn Fn(i64, &Line) -> i64,
    limit: Option<i64>,
    now: Millis,
) -> Result<(), String> {
    loop {
        let available = state.available_units();
        let expected = line
            .waiting
            .iter()
            .find(|(_, (customer, quantity))| {
                *quantity <= available
                    && limit.is_none_or(|limit| held_by(*customer, line) + quantity <= limit)
            })
            .map(|(id, _)| *id);
        let selling = matches!(state.status(now), DealStatus::Active | DealStatus::SoldOut);
        let promoted = state.promote_next(now);
        match (promoted, expected) {
            (None, None) => return Ok(()),
            (None, Some(_)) if !selling => return Ok(()),
            (Some((entry, reservation)), Some(id)) if entry.id == id => {
                if reservation.quantity != entry.quantity
                    || reservation.customer_id != entry.customer_id
                {
                    return Err(format!("entry {id} served as {reservation:?}"));
                }
                line.waiting.remove(&id);
                line.serving.push(entry);
            }
            (promoted, expected) => {
                return Err(format!(
                    "served {promoted:?} where the first entry that fits is {expected:?} ({available} free)"
                ));
            }
        }
    }
}

fn simulate(seed: u64, steps: usize) -> Result<(), String> {
    let mut rng = Rng(seed);
    let total = 1 + rng.below(30);
    let limit = (rng.below(3) == 0).then(|| 1 + rng.below(6));
    let mut record = support::open_deal(total);
    record.per_customer_limit = limit;
    record.payment_window_secs = Some(WINDOW_MS / 1_000);
    let mut now = record.starts_at + 1;
    let mut state = DealState::new(record);
    let mut live: HashMap<OrderId, Live> = HashMap::new();
    let mut next_id: OrderId = 0;
    let mut line = Line::default();
    // Units a customer holds: live orders and entries being served.
    let held_by = |customer: i64, live: &HashMap<OrderId, Live>, line: &Line| -> i64 {
        live.values()
            .filter(|l| l.customer == customer)
            .map(|l| l.quantity)
            .sum::<i64>()
            + line
                .serving
                .iter()
                .filter(|e| e.customer_id == customer)
                .map(|e| e.quantity)
                .sum::<i64>()
    };
    for step in 0..steps {
        let fail = |what: String| Err(format!("seed {seed}, step {step}: {what}"));
        let pick = |rng: &mut Rng, live: &HashMap<OrderId, Live>| -> Option<OrderId> {
            let mut ids: Vec<OrderId> = live.keys().copied().collect();
            ids.sort_unstable();
            (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize])
        };
        let mut freed = false;
        match rng.below(16) {
            // A claim: the reservation, then the writer's report of the stored order.
            0..=3 => {
                let (customer, quantity) = (rng.below(6), 1 + rng.below(3));
                if state.reserve(customer, quantity, now).is_ok() {
                    next_id += 1;
                    let pay_by = now + WINDOW_MS;
                    let round = state.round();
                    state.claims_mut().insert(
                        next_id,
                        Claim {
                            customer_id: customer,
                            quantity,
                            round,
                            pay_by,
                        },
                    );
                    live.insert(
                        next_id,
                        Live {
                            customer,
                            quantity,
                            claim: Some((pay_by, Stage::Waiting)),
                        },
                    );
                }
            }
            // A payment begins.
            4 => {
                if let Some(id) = pick(&mut rng, &live) {
                    let began = state.claims_mut().begin_payment(id, now);
                    let model = live.get_mut(&id).expect("live");
                    match (model.claim, began) {
                        (Some((pay_by, Stage::Waiting)), Ok(_)) if now < pay_by => {
                            model.claim = Some((pay_by, Stage::Busy));
                        }
                        (Some((pay_by, Stage::Waiting)), Err(PaymentRefusal::Expired))
                            if now >= pay_by => {}
                        (Some((_, Stage::Busy)), Err(PaymentRefusal::InProgress)) => {}
                        (Some((_, Stage::Lapsing)), Err(PaymentRefusal::Expired)) => {}
                        (None, Err(PaymentRefusal::NotClaimed)) => {}
                        (claim, began) => {
                            return fail(format!(
                                "order {id} ({claim:?}) at {now}: payment {began:?}"
                            ));
                        }
                    }
                }
            }
            // A payment (or a quantity change) ends: paid or not; the change may move units.
            5 => {
                let busy: Vec<OrderId> = live
                    .iter()
                    .filter(|(_, l)| matches!(l.claim, Some((_, Stage::Busy))))
                    .map(|(id, _)| *id)
                    .collect();
                if let Some(&id) = busy.iter().min() {
                    let paid = rng.below(2) == 0;
                    let lapse = state.claims_mut().end_payment(id, paid, now);
                    let model = live.get_mut(&id).expect("live");
                    let (pay_by, _) = model.claim.expect("a claim");
                    if paid {
                        if lapse.is_some() {
                            return fail(format!("paid order {id} lapsed"));
                        }
                        model.claim = None;
                    } else if now >= pay_by {
                        if lapse != Some(id) {
                            return fail(format!(
                                "order {id} unpaid past its deadline did not lapse"
                            ));
                        }
                        model.claim = Some((pay_by, Stage::Lapsing));
                    } else {
                        model.claim = Some((pay_by, Stage::Waiting));
                    }
                }
            }
            // The actor's look at the deadlines, and the store cancelling what lapsed.
            6 | 7 => {
                for id in state.claims_mut().due(now) {
                    match live.get(&id).and_then(|l| l.claim) {
                        Some((pay_by, Stage::Waiting)) if pay_by <= now => {
                            live.get_mut(&id).expect("live").claim = Some((pay_by, Stage::Lapsing));
                        }
                        other => return fail(format!("lapsed order {id} that was {other:?}")),
                    }
                }
                let lapsing: Vec<OrderId> = live
                    .iter()
                    .filter(|(_, l)| matches!(l.claim, Some((_, Stage::Lapsing))))
                    .map(|(id, _)| *id)
                    .collect();
                for id in lapsing {
                    let claim = state.claims_mut().settled(id).expect("a lapsing claim");
                    let model = live.remove(&id).expect("live");
                    if claim.quantity != model.quantity {
                        return fail(format!(
                            "order {id} lapsed {} units, holds {}",
                            claim.quantity, model.quantity
                        ));
                    }
                    let round = state.round();
                    state.release(model.customer, model.quantity, round);
                    freed = true;
                }
                if let Some(deadline) = state.claims().next_deadline() {
                    if deadline <= now {
                        return fail(format!(
                            "a waiting claim is past its deadline {deadline} at {now}"
                        ));
                    }
                }
            }
            // A cancellation (not while its claim is being paid or lapsed).
            8 => {
                if let Some(id) = pick(&mut rng, &live) {
                    let model = live[&id];
                    if matches!(model.claim, None | Some((_, Stage::Waiting))) {
                        state.claims_mut().forget(id);
                        live.remove(&id);
                        let round = state.round();
                        state.release(model.customer, model.quantity, round);
                        freed = true;
                    }
                }
            }
            // A quantity change of a waiting claim: held while the store takes it.
            9 => {
                if let Some(id) = pick(&mut rng, &live) {
                    let model = live[&id];
                    if let Some((pay_by, Stage::Waiting)) = model.claim {
                        if now < pay_by && state.claims_mut().begin_payment(id, now).is_ok() {
                            let to = 1 + rng.below(4);
                            let more = (to - model.quantity).max(0);
                            let round = state.round();
                            let taken = more == 0
                                || state.take_more(model.customer, more, round, now).is_ok();
                            let quantity = taken.then_some(to);
                            if taken && to < model.quantity {
                                state.release(model.customer, model.quantity - to, round);
                                freed = true;
                            }
                            let lapse = state.claims_mut().end_change(id, quantity, now);
                            if lapse.is_some() {
                                return fail(format!(
                                    "order {id} lapsed on a change before its deadline"
                                ));
                            }
                            if taken {
                                live.get_mut(&id).expect("live").quantity = to;
                            }
                        }
                    }
                }
            }
            // A customer joins the waitlist.
            10 | 11 => {
                let (customer, quantity) = (rng.below(CUSTOMERS as u64) as i64, 1 + rng.below(3));
                line.next_id += 1;
                let entry = WaitingEntry {
                    id: line.next_id,
                    customer_id: customer,
                    quantity,
                    round: state.round(),
                };
                let already = held_by(customer, &live, &line);
                let waits = line.waiting.values().any(|(c, _)| *c == customer)
                    || line.serving.iter().any(|e| e.customer_id == customer);
                let joined = state.join_waitlist(entry, now, WAITLIST_MAX);
                let expected = if state.available_units() > 0 {
                    Err(JoinRefusal::NotSoldOut {
                        available_units: state.available_units(),
                    })
                } else if let Some(limit) = limit.filter(|limit| already + quantity > *limit) {
                    Err(JoinRefusal::LimitExceeded { limit, already })
                } else if waits {
                    Err(JoinRefusal::AlreadyWaiting)
                } else if line.waiting.len() >= WAITLIST_MAX {
                    Err(JoinRefusal::Full { max: WAITLIST_MAX })
                } else {
                    Ok(line.waiting.len() + 1)
                };
                if joined != expected {
                    return fail(format!(
                        "join of {entry:?}: {joined:?}, expected {expected:?}"
                    ));
                }
                if joined.is_ok() {
                    JOINED.fetch_add(1, Ordering::Relaxed);
                    line.waiting.insert(entry.id, (customer, quantity));
                }
            }
            // A customer leaves.
            12 => {
                let customer = rng.below(CUSTOMERS as u64) as i64;
                let left = state.waitlist_mut().leave(customer);
                let waiting = line
                    .waiting
                    .iter()
                    .find(|(_, (c, _))| *c == customer)
                    .map(|(id, _)| *id);
                let serving = line
                    .serving
                    .iter()
                    .find(|e| e.customer_id == customer)
                    .map(|e| e.id);
                let expected = match (waiting, serving) {
                    (Some(id), _) => Leaving::Left(id),
                    (None, Some(id)) => Leaving::Serving(id),
                    (None, None) => Leaving::NotWaiting,
                };
                if left != expected {
                    return fail(format!(
                        "customer {customer} leaving: {left:?}, expected {expected:?}"
                    ));
                }
                if let Leaving::Left(id) = left {
                    LEFT.fetch_add(1, Ordering::Relaxed);
                    line.waiting.remove(&id);
                }
            }
            // The store answers on a promotion: stored (a claim of its own), or not (its units
            // come back and it waits again in its place).
            13 => {
                if !line.serving.is_empty() {
                    let entry = line
                        .serving
                        .remove(rng.below(line.serving.len() as u64) as usize);
                    if rng.below(4) > 0 {
                        if state.waitlist_mut().served(entry.id) != Some(entry) {
                            return fail(format!("entry {entry:?} was not being served"));
                        }
                        SERVED.fetch_add(1, Ordering::Relaxed);
                        next_id += 1;
                        let pay_by = now + WINDOW_MS;
                        let claim = Claim {
                            customer_id: entry.customer_id,
                            quantity: entry.quantity,
                            round: entry.round,
                            pay_by,
                        };
                        state.claims_mut().insert(next_id, claim);
                        live.insert(
                            next_id,
                            Live {
                                customer: entry.customer_id,
                                quantity: entry.quantity,
                                claim: Some((pay_by, Stage::Waiting)),
                            },
                        );
                    } else {
                        if state.waitlist_mut().unserve(entry.id) != Some(entry) {
                            return fail(format!("entry {entry:?} was not being served"));
                        }
                        UNSERVED.fetch_add(1, Ordering::Relaxed);
                        state.release(entry.customer_id, entry.quantity, entry.round);
                        line.waiting
                            .insert(entry.id, (entry.customer_id, entry.quantity));
                        freed = true;
                    }
                }
            }
            // An admin adds units.
            14 => {
                if state.resize(1 + rng.below(3) as i64).is_ok() {
                    freed = true;
                }
            }
            _ => now += rng.below(WINDOW_MS as u64 / 2),
        }
        if freed {
            let held = |customer: i64, line: &Line| held_by(customer, &live, line);
            serve(&mut state, &mut line, &held, limit, now)
                .map_err(|e| format!("seed {seed}, step {step}: {e}"))?;
        }
        if !state.no_waiting_entry_fits(now) {
            return fail("a unit is free while a waiting entry fits it".into());
        }
        let selling = matches!(state.status(now), DealStatus::Active | DealStatus::SoldOut);
        let fits = line.waiting.values().any(|(customer, quantity)| {
            *quantity <= state.available_units()
                && limit.is_none_or(|limit| held_by(*customer, &live, &line) + quantity <= limit)
        });
        if selling && fits {
            return fail(format!(
                "{} units free while a waiting entry fits (model)",
                state.available_units()
            ));
        }
        if state.waitlist().len() != line.waiting.len()
            || state.waitlist().serving() != line.serving.len()
        {
            return fail(format!(
                "waitlist {} waiting / {} serving, model {:?}",
                state.waitlist().len(),
                state.waitlist().serving(),
                line
            ));
        }
        let held: i64 = live.values().map(|l| l.quantity).sum::<i64>()
            + line.serving.iter().map(|e| e.quantity).sum::<i64>();
        if state.sold_units() != held
            || state.available_units() + held != state.record().total_units
        {
            return fail(format!(
                "conservation: available {} + held {held} != total {} (state: sold {})",
                state.available_units(),
                state.record().total_units,
                state.sold_units()
            ));
        }
        let claims = live.values().filter(|l| l.claim.is_some()).count();
        if state.claims().len() != claims {
            return fail(format!(
                "{} claims kept, {claims} expected",
                state.claims().len()
            ));
        }
        if let Some(limit) = limit {
            for customer in 0..CUSTOMERS {
                let mine = held_by(customer, &live, &line);
                if mine > limit || state.units_held_by(customer) != mine {
                    return fail(format!(
                        "customer {customer} holds {mine} (state {}), limit {limit}",
                        state.units_held_by(customer)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Thousands of seeded histories; a failure names its seed (`TOPKART_SIM_SEED=n` replays it).
#[test]
fn random_histories_with_claims_and_a_waitlist_conserve_units_and_serve_in_order() {
    support::run_seeds(simulate, 3_000);
    let counts = [&JOINED, &SERVED, &UNSERVED, &LEFT].map(|count| count.load(Ordering::Relaxed));
    println!(
        "waitlist: {} joined, {} served, {} stores failed and waited again, {} left",
        counts[0], counts[1], counts[2], counts[3]
    );
    assert!(
        counts.iter().all(|count| *count > 100),
        "the histories exercised the waitlist: {counts:?}"
    );
}
