//! `topkart loadtest` against a real server: the scenario is set up over the API, the run is
//! verified against the store, and the warm-up's requests are verified but kept out of the
//! figures.

use topkart::config::Secret;
use topkart::loadtest::{self, LoadtestArgs, Scenario};

use crate::helpers::{ADMIN_PASSWORD, Backend, TestStore, spawn_app_with};

fn args(url: &str, scenario: Scenario, out_dir: std::path::PathBuf) -> LoadtestArgs {
    LoadtestArgs {
        url: url.to_owned(),
        admin_username: "admin".into(),
        admin_password: Secret(ADMIN_PASSWORD.into()),
        scenario,
        connections: Some(8),
        rate: None,
        duration_secs: 1,
        warmup_secs: 1,
        units: 1_000_000,
        buyers: 10,
        deals: 10,
        threads: 1,
        out_dir,
    }
}

#[actix_web::test]
async fn the_warm_up_is_verified_but_kept_out_of_the_figures() {
    let store = TestStore::create(Backend::Sqlite).await;
    let app = spawn_app_with(store, |settings| settings.rate_limits = "off".into()).await;
    let out_dir = std::env::temp_dir().join(format!("topkart-loadtest-{}", std::process::id()));

    let closed = args(&app.base, Scenario::HotDeal, out_dir.clone());
    let reports = loadtest::run(&closed).await.expect("the run verifies");
    let hot = &reports[0];
    assert!(hot.verification.passed, "{:?}", hot.verification.failures);
    assert!(hot.warmup.requests > 0, "the warm-up sent requests");
    assert!(hot.tally.ok_2xx > 0, "the measured window sold");
    // Every order is verified, the warm-up's included; the figures count the measured ones.
    assert_eq!(
        hot.orders_created,
        hot.tally.ok_2xx + hot.warmup.requests,
        "every request of an unlimited hot deal with units left is a 201"
    );

    let open = LoadtestArgs {
        connections: None,
        rate: Some(200),
        ..args(&app.base, Scenario::HotDeal, out_dir.clone())
    };
    let reports = loadtest::run(&open).await.expect("the run verifies");
    let hot = &reports[0];
    assert!(hot.verification.passed, "{:?}", hot.verification.failures);
    assert!(hot.warmup.requests > 0 && hot.tally.answered() > 0);
    assert!(hot.order_latency_ms.is_some());
    let _ = std::fs::remove_dir_all(&out_dir);
    app.finish().await;
}
