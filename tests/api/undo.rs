//! When the store refuses a deal change that the deal's actor already made, the service undoes
//! it in the actor; when that undo fails too, the failure is logged with both causes and the deal
//! is reloaded from the store, so memory and store never part silently (issue 9).

use std::process::Stdio;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::json;
use sqlx::Connection;

use crate::engine_process::{EngineProcess, admin_token};
use crate::helpers::{Backend, TestStore, rfc3339};

/// Makes every change of a deal's `closed` flag wait until the deal's window is over, then fail:
/// a slow, failing store.
const FAULT: [&str; 2] = [
    "CREATE FUNCTION refuse_close() RETURNS trigger AS $$ BEGIN \
       PERFORM pg_sleep(GREATEST(0, (NEW.expires_at - extract(epoch FROM clock_timestamp()) * 1000) / 1000.0 + 0.3)); \
       RAISE EXCEPTION 'injected: the store refuses this change of closed'; \
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_close BEFORE UPDATE OF closed ON deals \
     FOR EACH ROW EXECUTE FUNCTION refuse_close()",
];

/// A close the store refuses after the deal's window ended: the actor had closed the deal, and
/// the undo (reopening it) is refused because the window is over. The log names both causes and
/// the reload; the deal as served is the deal as stored (not closed, expired).
#[actix_web::test]
async fn a_failed_undo_is_logged_and_the_deal_reloaded_from_the_store() {
    let store = TestStore::create(Backend::Postgres).await;
    std::fs::create_dir_all(store.data_dir()).expect("data dir");
    let log_path = store.data_dir().join("engine.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let engine = EngineProcess::start_with(&store, Stdio::from(log), Some("warn"));
    let admin = admin_token(&engine).await;
    let deal = json!({"product_name": "Kettle", "actual_price": "50.00", "final_price": "29.99",
        "total_units": 10, "expires_at": rfc3339(now_ms() + 1_500)});
    let (status, deal) = engine
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().expect("id");
    let mut conn = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    for sql in FAULT {
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("fault installed");
    }

    let path = format!("/api/v1/deals/{deal_id}/close");
    let (status, refused) = engine.call("POST", &path, Some(&admin), None).await;
    assert!(status.is_server_error(), "{status} {refused}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).expect("read the log");
        if log.contains("deal reloaded from the store") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let undo_line = log
        .lines()
        .find(|line| line.contains("its undo failed"))
        .unwrap_or_else(|| panic!("no undo failure in the log:\n{log}"));
    assert!(
        undo_line.contains(&format!("deal_id={deal_id}"))
            && undo_line.contains("the deal has expired")
            && undo_line.contains("injected: the store refuses"),
        "the line names the deal and both causes: {undo_line}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("deal reloaded from the store")
                && line.contains(&format!("deal_id={deal_id}"))),
        "{log}"
    );

    let (_, served) = engine
        .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
        .await;
    let (closed,): (bool,) = sqlx::query_as("SELECT closed FROM deals WHERE id = $1")
        .bind(deal_id)
        .fetch_one(&mut conn)
        .await
        .expect("stored deal");
    assert!(!closed, "the store refused the close");
    assert_eq!(
        served["status"], "EXPIRED",
        "memory follows the store (without the reload it said CLOSED): {served}"
    );
    drop(conn);
    drop(engine);
    store.remove().await;
}
