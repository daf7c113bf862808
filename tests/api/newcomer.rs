//! What a newcomer meets (issue 11): errors that name every wrong field in a client's words
//! (no Rust type names, no backticks), 401s that say which scheme to use, a status filter that
//! says it is for admins instead of silently showing less, and the original paths with or
//! without their trailing slash.

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, rfc3339, spawn_app};

/// No message of a 400 may read like Rust: no type names, no backticks.
fn assert_in_words(body: &Value) {
    let text = body.to_string();
    for leak in [
        "i64",
        "u64",
        "i32",
        "f64",
        "`",
        "invalid type",
        "struct ",
        "line 1 column",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaks into {body}");
    }
}

fn future(ms: i64) -> String {
    rfc3339(actors::clock::now_ms() + ms)
}

async fn create(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.call("POST", "/api/v1/deals", Some(&app.admin_token), Some(body))
        .await
}

#[actix_web::test]
async fn every_wrong_field_is_named_in_a_clients_words() {
    let app = spawn_app(Backend::Sqlite).await;
    // A number sent as text.
    let (status, body) = create(
        &app,
        json!({"product_name": "Kettle", "actual_price": "50.00", "final_price": "29.99",
               "total_units": "3", "expires_at": future(3_600_000)}),
    )
    .await;
    assert_error(
        &(status, body.clone()),
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    assert_eq!(
        body["errors"]["total_units"][0], "must be a whole number, not the text \"3\"",
        "{body}"
    );
    assert_in_words(&body);

    // Three wrong fields at once: all three are named.
    let (status, body) = create(
        &app,
        json!({"actual_price": "50.00", "final_price": true, "total_units": "3",
               "expires_at": future(3_600_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let named: Vec<&String> = body["errors"].as_object().expect("errors").keys().collect();
    assert_eq!(
        named,
        ["final_price", "product_name", "total_units"],
        "{body}"
    );
    assert_eq!(body["errors"]["product_name"][0], "is required", "{body}");
    assert_in_words(&body);

    // A missing password on sign-up.
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "newcomer", "email": "newcomer@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"]["password"][0], "is required", "{body}");
    assert_in_words(&body);

    // A negative total names total_units only (available_units was not sent).
    let (status, body) = create(
        &app,
        json!({"product_name": "Kettle", "actual_price": "50.00", "final_price": "29.99",
               "total_units": -1, "expires_at": future(3_600_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let named: Vec<&String> = body["errors"].as_object().expect("errors").keys().collect();
    assert_eq!(named, ["total_units"], "{body}");

    // A past expires_at without starts_at: the past is the problem, not a starts_at never sent.
    let (status, body) = create(
        &app,
        json!({"product_name": "Kettle", "actual_price": "50.00", "final_price": "29.99",
               "total_units": 5, "expires_at": future(-60_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"]["expires_at"],
        json!(["must be in the future"]),
        "{body}"
    );
    // Nothing was created by any of these.
    let (_, all) = app
        .call(
            "GET",
            "/api/v1/deals?status=all",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(all["count"], 0, "{all}");
    app.finish().await;
}

/// The `WWW-Authenticate` header and the message of a 401 to `GET /orders` sent with
/// `authorization` (none: no header).
async fn unauthorized(app: &TestApp, authorization: Option<&str>) -> (String, Value) {
    let mut request = app.client.get(app.url("/api/v1/orders"));
    if let Some(value) = authorization {
        request = request.insert_header(("Authorization", value));
    }
    let mut response = request.send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("WWW-Authenticate")
        .and_then(|value| value.to_str().ok())
        .expect("every 401 carries WWW-Authenticate")
        .to_owned();
    (challenge, response.json().await.expect("envelope"))
}

#[actix_web::test]
async fn a_401_says_how_to_authenticate() {
    let app = spawn_app(Backend::Sqlite).await;
    let (challenge, body) = unauthorized(&app, None).await;
    assert_eq!(
        (challenge.as_str(), &body["code"]),
        ("Bearer", &json!("UNAUTHORIZED"))
    );
    // The token alone, without its scheme.
    let (challenge, body) = unauthorized(&app, Some(&app.admin_token.clone())).await;
    assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    assert_eq!(
        body["message"], "the Authorization header must read \"Bearer <access token>\"",
        "{body}"
    );
    // The scheme in another case is the same scheme.
    let (status, _) = app
        .call_with(
            "GET",
            "/api/v1/orders",
            None,
            None,
            &[("Authorization", &format!("BEARER {}", app.admin_token))],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = unauthorized(&app, Some("Bearer not-a-token")).await;
    assert_eq!(body["code"], "INVALID_TOKEN");
    app.finish().await;
}

#[actix_web::test]
async fn the_status_filter_says_it_is_for_admins() {
    let app = spawn_app(Backend::Sqlite).await;
    let customer = &app.customers(1).await[0];
    assert_error(
        &app.call("GET", "/api/v1/deals?status=all", None, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );
    assert_error(
        &app.call(
            "GET",
            "/api/v1/deals?status=CLOSED",
            Some(&customer.token),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    // What everyone may see, narrowed, stays open to everyone.
    let (status, _) = app
        .call("GET", "/api/v1/deals?status=ACTIVE", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/deals?status=all",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

#[actix_web::test]
async fn the_original_paths_answer_with_or_without_their_slash() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/topkart/get/active/deals/", "/topkart/get/active/deals"] {
        let (status, body) = app.call("GET", path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body["results"].is_array(), "{body}");
    }
    app.finish().await;
}

/// Start-up tells a newcomer what is missing, in a log fit for a file: with no admin it says
/// how to make one, with rate limits off it says so, and a log written to a file carries no
/// terminal colour codes.
#[actix_web::test]
async fn start_up_says_what_is_missing_in_a_plain_log() {
    use std::io::{BufRead, BufReader};
    let store = crate::helpers::TestStore::create(Backend::Sqlite).await;
    std::fs::create_dir_all(store.data_dir()).expect("data dir");
    let log_path = store.data_dir().join("start.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_topkart"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOPKART_") || name == "DATABASE_URL" || name == "REDIS_URL" {
            command.env_remove(name);
        }
    }
    let mut child = command
        .env("TOPKART_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", &store.url)
        .env("TOPKART_DATA_DIR", store.data_dir())
        .env("TOPKART_JWT_SECRET", crate::helpers::JWT_SECRET)
        .env("TOPKART_RATE_LIMITS", "off")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("the engine starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    assert!(line.starts_with("topkart listening on "), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).expect("the log");
    assert!(
        text.contains("no admin exists") && text.contains("topkart admin create"),
        "{text}"
    );
    assert!(text.contains("rate limits are off"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
    store.remove().await;
}
