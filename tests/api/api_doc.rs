//! docs/API.md, the API reference kept in the repository, is checked against what the engine
//! serves: its operations are exactly the served OpenAPI document's, and its table of error
//! codes is exactly the engine's (names and statuses).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use topkart::error::ErrorCode;

use crate::helpers::{Backend, spawn_app};

fn api_doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md is readable")
}

/// The `| METHOD | `path` | …` rows of the document's tables.
fn documented_operations(doc: &str) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, method, path, ..] = cells.as_slice() else {
            continue;
        };
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        if methods.contains(method) && path.starts_with("`/") && path.ends_with('`') {
            operations.insert((
                method.to_ascii_lowercase(),
                path.trim_matches('`').to_owned(),
            ));
        }
    }
    operations
}

#[actix_web::test]
async fn the_api_reference_matches_the_served_document() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, spec) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut served = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                served.insert((method.clone(), path.clone()));
            }
        }
    }
    let doc = api_doc();
    let documented = documented_operations(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/API.md and the served document differ:\n  served, not in docs/API.md: {missing:?}\n  in docs/API.md, not served: {extra:?}"
    );
    app.finish().await;
}

#[test]
fn the_api_reference_lists_every_error_code() {
    let doc = api_doc();
    let mut listed = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, code, status, ..] = cells.as_slice()
            && code.starts_with('`')
            && status.parse::<u16>().is_ok()
        {
            listed.insert((code.trim_matches('`').to_owned(), status.to_string()));
        }
    }
    let engine: BTreeSet<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|code| (code.name().to_owned(), code.status().as_u16().to_string()))
        .collect();
    assert_eq!(
        listed, engine,
        "docs/API.md's table of error codes differs from the engine's"
    );
}
