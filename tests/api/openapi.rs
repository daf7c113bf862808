//! The served OpenAPI document describes every route of the contract, with its bodies and
//! error responses.

use actix_web::http::StatusCode;

use crate::helpers::{Backend, spawn_app};

const CONTRACT: &[(&str, &str)] = &[
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/me"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users/{id}/balance"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/deals"),
    ("get", "/api/v1/deals"),
    ("get", "/api/v1/deals/{id}"),
    ("put", "/api/v1/deals/{id}"),
    ("patch", "/api/v1/deals/{id}"),
    ("post", "/api/v1/deals/{id}/close"),
    ("post", "/api/v1/deals/{id}/open"),
    ("get", "/api/v1/deals/{id}/events"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{id}"),
    ("post", "/api/v1/orders/{id}/cancel"),
    ("post", "/api/v1/orders/{id}/pay"),
    ("patch", "/api/v1/orders/{id}"),
    ("get", "/api/v1/orders/statistics"),
    ("post", "/api/v1/deals/{id}/waitlist"),
    ("get", "/api/v1/deals/{id}/waitlist/me"),
    ("delete", "/api/v1/deals/{id}/waitlist/me"),
    ("post", "/api/v1/orders/{id}/tracking"),
    ("get", "/api/v1/orders/{id}/tracking"),
    ("patch", "/api/v1/orders/{id}/status"),
    ("get", "/livez"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/cluster"),
    ("post", "/topkart/create/users/"),
    ("post", "/topkart/create/update/deals/"),
    ("put", "/topkart/create/update/deals/"),
    ("put", "/topkart/update/order_status/"),
    ("get", "/topkart/get/active/deals/"),
    ("post", "/topkart/place/order/"),
    ("get", "/topkart/check/order_status/"),
    ("post", "/create-deal/"),
    ("get", "/fetch-deals/"),
    ("post", "/create-order/"),
    ("post", "/update-order/"),
    ("post", "/track-status/"),
];

/// Every (method, path) of API.md is documented, each with responses, and nothing else is.
async fn the_document_covers_the_contract(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in CONTRACT {
        let operation = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is missing"))[*method];
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    let documented: usize = paths
        .values()
        .map(|item| {
            item.as_object().map_or(0, |ops| {
                ops.keys()
                    .filter(|k| CONTRACT.iter().any(|(m, _)| m == k))
                    .count()
            })
        })
        .sum();
    assert_eq!(
        documented,
        CONTRACT.len(),
        "no undocumented extras and no duplicates"
    );
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let order_errors = doc["paths"]["/api/v1/orders"]["post"]["responses"]
        .as_object()
        .expect("responses");
    for code in ["201", "400", "401", "404", "409", "422", "503"] {
        assert!(
            order_errors.contains_key(code),
            "POST /orders documents {code}"
        );
    }
    app.finish().await;
}

/// `/livez` answers without touching anything; `/readyz` reports the store; `/metrics` is text.
async fn operations_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/livez", None).await.0, StatusCode::OK);
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(
        (status, &ready["status"]),
        (StatusCode::OK, &serde_json::json!("ready"))
    );
    let mut response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let body = String::from_utf8(response.body().await.expect("body").to_vec()).expect("text");
    assert!(body.contains("topkart_writer_orders_committed"), "{body}");
    app.finish().await;
}

crate::on_both_stores!(the_document_covers_the_contract, operations_endpoints);

/// The served document is a valid OpenAPI 3 document by openapi-spec-validator (every response
/// described, a server named), with no error. `.ci/run` installs the validator.
#[actix_web::test]
async fn the_document_passes_openapi_spec_validator() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, document) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["servers"][0]["url"], "/", "a server is named");
    let path = std::env::temp_dir().join(format!("topkart-openapi-{}.json", std::process::id()));
    std::fs::write(&path, document.to_string()).expect("written");
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator==0.9.0): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.finish().await;
}

/// The original Topkart paths' bodies are described as they are accepted: a deal's
/// `expires_at` optional, a user's `user_type` required (v1's bodies the other way round).
#[actix_web::test]
async fn the_original_paths_bodies_are_described_as_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, document) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let body_schema = |path: &str| {
        let reference =
            document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}'s body is a named schema"))
                .trim_start_matches("#/components/schemas/")
                .to_owned();
        document["components"]["schemas"][reference.as_str()]["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .filter_map(|field| field.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let has = |fields: &[String], name: &str| fields.iter().any(|field| field == name);
    assert!(has(&body_schema("/api/v1/deals"), "expires_at"));
    assert!(!has(
        &body_schema("/topkart/create/update/deals/"),
        "expires_at"
    ));
    assert!(!has(&body_schema("/api/v1/users"), "user_type"));
    assert!(has(&body_schema("/topkart/create/users/"), "user_type"));
    app.finish().await;
}
