//! The lent counter under real contention: threads claim while the owner recalls and lends
//! again, as the deal's actor does on every change. No unit is created or lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

mod support;

use actors::clock::now_ms;
use actors::deal::ReserveError;
use actors::fast_path::mirror::{DealMirror, FastClaim};

#[test]
fn claims_racing_recalls_sell_every_unit_exactly_once() {
    const UNITS: i64 = 200_000;
    let mirror = Arc::new(DealMirror::new(&support::open_deal(UNITS)));
    mirror.lend(UNITS);
    let sold_out = Arc::new(AtomicBool::new(false));
    let claimers: Vec<_> = (0..4)
        .map(|worker| {
            let (mirror, sold_out) = (mirror.clone(), sold_out.clone());
            thread::spawn(move || {
                let (mut claimed, mut asked_actor) = (0_i64, 0_u64);
                let quantity = 1 + worker % 3;
                loop {
                    match mirror.try_claim(quantity, now_ms()) {
                        FastClaim::Claimed(terms) => {
                            assert_eq!(terms.final_price, 1_000);
                            claimed += quantity;
                        }
                        FastClaim::AskTheActor => asked_actor += 1,
                        FastClaim::Refused(ReserveError::SoldOut { available_units }) => {
                            assert!(available_units < quantity);
                            if available_units == 0 || sold_out.load(Ordering::Acquire) {
                                return (claimed, asked_actor);
                            }
                        }
                        FastClaim::Refused(other) => panic!("refused: {other}"),
                    }
                }
            })
        })
        .collect();
    // The owner: recall, take the count, lend it again — thousands of times during the run.
    let mut recalls = 0;
    let left = loop {
        let left = mirror.recall();
        recalls += 1;
        if left < 3 {
            // Too few for every claimer's quantity: stop lending, let them finish.
            sold_out.store(true, Ordering::Release);
            mirror.publish_available(left);
            mirror.lend(left);
            break left;
        }
        mirror.lend(left);
        thread::yield_now();
    };
    let (claimed, asked): (Vec<i64>, Vec<u64>) = claimers
        .into_iter()
        .map(|claimer| claimer.join().expect("claimer ran"))
        .unzip();
    let claimed_after: i64 = claimed.iter().sum();
    let final_units = mirror.recall();
    assert!(final_units <= left);
    assert_eq!(
        claimed_after + final_units,
        UNITS,
        "claimed {claimed_after} + left {final_units} after {recalls} recalls (claims that met a recall: {})",
        asked.iter().sum::<u64>()
    );
}

/// A claim needs a lent counter, a positive quantity, and the window of the loan's terms.
#[test]
fn claims_refuse_what_the_actor_would_refuse() {
    let mut deal = support::open_deal(5);
    let mirror = DealMirror::new(&deal);
    let now = now_ms();
    assert!(
        matches!(mirror.try_claim(1, now), FastClaim::AskTheActor),
        "not lent yet"
    );
    mirror.lend(5);
    assert!(matches!(
        mirror.try_claim(0, now),
        FastClaim::Refused(ReserveError::InvalidQuantity)
    ));
    assert!(matches!(
        mirror.try_claim(6, now),
        FastClaim::Refused(ReserveError::SoldOut { available_units: 5 })
    ));
    assert!(matches!(
        mirror.try_claim(1, deal.expires_at),
        FastClaim::Refused(ReserveError::Expired)
    ));
    assert!(matches!(
        mirror.try_claim(1, deal.starts_at - 1),
        FastClaim::Refused(ReserveError::NotStarted)
    ));
    assert_eq!(mirror.available_units(), 5, "no refusal took a unit");

    // New terms published with a new loan apply to the next claim.
    mirror.recall();
    deal.final_price = 700;
    mirror.publish_record(&deal);
    mirror.lend(5);
    match mirror.try_claim(2, now) {
        FastClaim::Claimed(terms) => assert_eq!(terms.final_price, 700),
        other => panic!("not claimed: {other:?}"),
    }
    assert_eq!(mirror.recall(), 3);
}
