//! The README's walkthrough, run exactly as written (issue 11): the shell block between
//! `<!-- walkthrough -->` and `<!-- /walkthrough -->` against an engine started as the README
//! starts it (SQLite, one node, the README's admin password), with bash, curl and jq. A README
//! that stops working fails this test.

use std::process::Command;

use crate::engine_process::EngineProcess;
use crate::helpers::{Backend, TestStore};

/// The text between `start` and `end` in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("README has {start}"))
        + start.len();
    let to = from
        + text[from..]
            .find(end)
            .unwrap_or_else(|| panic!("README has {end}"));
    &text[from..to]
}

#[actix_web::test]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let trying = between(&readme, "## Trying it", "<!-- walkthrough -->");
    let password = between(trying, "TOPKART_ADMIN_PASSWORD=", " ")
        .trim()
        .to_owned();
    let script = between(&readme, "<!-- walkthrough -->", "<!-- /walkthrough -->")
        .trim()
        .strip_prefix("```sh")
        .and_then(|block| block.strip_suffix("```"))
        .expect("a sh block");

    let store = TestStore::create(Backend::Sqlite).await;
    let engine = EngineProcess::start_with_env(&store, &[("TOPKART_ADMIN_PASSWORD", &password)]);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("API", &engine.base)
        .output()
        .expect("bash runs (curl and jq are needed: .ci/run installs them)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the walkthrough failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].contains(r#""product_name":"Kettle","status":"ACTIVE","available_units":100"#),
        "the deal is on sale: {stdout}"
    );
    assert_eq!(lines[1], "98", "two units ordered: {stdout}");
    assert!(
        lines[2].contains(r#""status":"OPEN","quantity":2,"total_price":"59.98""#),
        "the order as its customer sees it: {stdout}"
    );
    assert_eq!(
        (lines[3], lines[4]),
        ("CANCELLED", "100"),
        "cancelled, units back: {stdout}"
    );
    drop(engine);
    store.remove().await;
}
