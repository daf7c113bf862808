//! What must hold after every scenario, checked over the API:
//!
//! - no deal sold more units than it has, and none left a unit unsold while buyers were told
//!   SOLD_OUT;
//! - every acknowledged (201) order is stored, and nothing is stored beyond the 201s and the
//!   requests whose answer was lost;
//! - conservation: available + stored units == total, for every deal.
//!
//! Every 201 is looked up by id when there are at most `LOOKUPS_MAX` of them; above that an
//! even sample of that size is, and the per-deal counts cover the rest.

use std::collections::HashSet;

use serde::Serialize;

use super::drive::RunResult;
use super::setup::{Api, Prepared, join_all};

const LOOKUPS_MAX: usize = 2_000;

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub passed: bool,
    pub checks: Vec<String>,
    pub failures: Vec<String>,
}

pub async fn check(
    api: &Api,
    prepared: &Prepared,
    result: &RunResult,
) -> Result<Verification, String> {
    let deal_ids = prepared.plan.deal_ids();
    let mut checks = Vec::new();
    let mut failures = Vec::new();
    if deal_ids.is_empty() {
        checks.push("no stock involved".to_owned());
        return Ok(Verification {
            passed: true,
            checks,
            failures,
        });
    }
    let distinct: HashSet<i64> = result.created_ids.iter().copied().collect();
    if distinct.len() != result.created_ids.len() {
        failures.push(format!(
            "{} acknowledged orders share an id",
            result.created_ids.len() - distinct.len()
        ));
    }
    let (mut total_stored, mut total_units, mut conserved) = (0i64, 0i64, 0usize);
    for (index, deal_id) in deal_ids.iter().enumerate() {
        let (status, deal) = api
            .call("GET", &format!("/api/v1/deals/{deal_id}"), false, None)
            .await?;
        let (status_list, listing) = api
            .call(
                "GET",
                &format!("/api/v1/orders?deal_id={deal_id}&page_size=1"),
                true,
                None,
            )
            .await?;
        if status != 200 || status_list != 200 {
            failures.push(format!(
                "deal {deal_id}: could not read it back ({status}, {status_list})"
            ));
            continue;
        }
        let total = deal["total_units"].as_i64().unwrap_or(-1);
        let available = deal["available_units"].as_i64().unwrap_or(-1);
        let stored = listing["count"].as_i64().unwrap_or(-1);
        let tally = result.per_deal[index];
        let setup = prepared.setup_orders.get(index).copied().unwrap_or(0);
        let created = tally.created as i64 + setup;
        total_stored += stored;
        total_units += total;
        let mut fail = |what: String| failures.push(format!("deal {deal_id}: {what}"));
        if available + stored != total {
            fail(format!(
                "not conserved: available {available} + stored {stored} != total {total}"
            ));
        } else {
            conserved += 1;
        }
        if stored > total {
            fail(format!("oversold: {stored} orders for {total} units"));
        }
        if stored < created {
            fail(format!(
                "{} acknowledged orders are missing ({stored} stored, {created} acknowledged)",
                created - stored
            ));
        }
        if stored > created + tally.no_answer as i64 {
            fail(format!(
                "{stored} stored but only {created} acknowledged and {} unanswered",
                tally.no_answer
            ));
        }
        if tally.sold_out > 0 && available != 0 {
            fail(format!(
                "{} buyers were told SOLD_OUT while {available} units are left",
                tally.sold_out
            ));
        }
    }
    let lookups: Vec<i64> = if result.created_ids.len() <= LOOKUPS_MAX {
        result.created_ids.clone()
    } else {
        let step = result.created_ids.len() as f64 / LOOKUPS_MAX as f64;
        (0..LOOKUPS_MAX)
            .map(|i| result.created_ids[(i as f64 * step) as usize])
            .collect()
    };
    let mut missing = 0;
    for chunk in lookups.chunks(64) {
        let paths: Vec<String> = chunk
            .iter()
            .map(|id| format!("/api/v1/orders/{id}"))
            .collect();
        let answers = join_all(
            paths
                .iter()
                .map(|path| api.call("GET", path, true, None))
                .collect(),
        )
        .await;
        missing += answers
            .into_iter()
            .filter(|answer| !matches!(answer, Ok((200, _))))
            .count();
    }
    if missing > 0 {
        failures.push(format!(
            "{missing} of {} acknowledged orders looked up are not stored",
            lookups.len()
        ));
    }
    checks.push(format!(
        "{} deal(s), {total_units} units: {total_stored} orders stored, {} acknowledged in the run, {} unanswered; conserved {conserved}/{}",
        deal_ids.len(),
        result.created(),
        result.tally.no_answer,
        deal_ids.len()
    ));
    checks.push(format!(
        "{} acknowledged orders looked up by id: {} found",
        lookups.len(),
        lookups.len() - missing
    ));
    Ok(Verification {
        passed: failures.is_empty(),
        checks,
        failures,
    })
}
