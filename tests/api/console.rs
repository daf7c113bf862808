//! The admin console (`/admin`) and the API browser (`/docs`) in a real browser: Debian's
//! chromium driven by playwright-core (`tests/console/console.mjs`). The script signs in,
//! creates a deal in the form, watches its stock bar fall while orders arrive (moved by the
//! event stream alone), closes the deal, approves an order, opens the cluster and
//! performance pages and the API browser, and checks that no request leaves the engine.
//! Screenshots of every page are kept in `target/console-screenshots/`. Then the store is
//! checked for what the clicks did. `.ci/run` installs chromium; this test installs the
//! script's one npm package (`npm ci`) when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use actix_web::http::StatusCode;
use actors::model::OrderStatus;

use crate::helpers::{ADMIN_PASSWORD, Backend, spawn_app};

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// `npm ci` once, when playwright-core is not installed yet.
fn ensure_playwright() {
    let dir = console_dir();
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm runs (Node.js and npm are needed for the browser test)");
    assert!(status.success(), "npm ci in tests/console failed");
}

#[actix_web::test]
async fn the_console_runs_a_sale_in_a_real_browser() {
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "the browser test needs Debian's chromium (apt-get install chromium; .ci/run does)"
    );
    ensure_playwright();
    let app = spawn_app(Backend::Sqlite).await;
    // The pages themselves: HTML, with every asset served here.
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/console.js", "text/javascript"),
        ("/docs", "text/html"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let response = app
            .client
            .get(app.url(path))
            .send()
            .await
            .expect("page served");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let base = app.base.clone();
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new("node")
            .arg("console.mjs")
            .current_dir(console_dir())
            .env("BASE_URL", base)
            .env("ADMIN_USERNAME", "admin")
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SCREENSHOTS", &screenshots)
            .output()
            .expect("node runs")
    })
    .await
    .expect("the browser run ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .last()
            .expect("the script prints its summary"),
    )
    .expect("the summary is JSON");
    println!("browser run: {summary}");

    // What the clicks did, in the store.
    let deal_id = summary["deal_id"].as_i64().expect("deal id");
    let stored = app
        .store()
        .load_deal(deal_id)
        .await
        .expect("store answers")
        .expect("deal stored");
    assert!(stored.record.closed, "the deal was closed from the console");
    let stock = app.stock(deal_id).await;
    assert_eq!(stock.total_units, 200);
    assert_eq!(stock.available_units, 200 - 150);
    assert!(stock.conserved());
    let approved = summary["approved_order_id"].as_i64().expect("order id");
    let order = app
        .store()
        .order_by_id(approved)
        .await
        .expect("store answers")
        .expect("order stored");
    assert_eq!(order.status, OrderStatus::Approved);
    assert!(
        summary["operations"].as_u64().is_some_and(|n| n >= 20),
        "the API browser rendered the operations: {summary}"
    );
    for page in [
        "01-sign-in",
        "03-stock-falling",
        "04-deal-closed",
        "06-order-approved",
        "07-cluster",
        "08-performance",
        "09-api-docs",
    ] {
        let shot = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/console-screenshots")
            .join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1_000),
            "{} was taken",
            shot.display()
        );
    }
    app.finish().await;
}
