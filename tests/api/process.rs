//! The real binary as a process: killed with SIGKILL in the middle of a burst it loses no
//! acknowledged order and sells exactly the remaining units after a restart; stopped with
//! SIGTERM during a burst it answers what is in flight, flushes and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::http::StatusCode;
use serde_json::json;
use topkart::store::Store;

use crate::engine_process::{EngineProcess, assert_acknowledged_orders_stored, fire, scenario};
use crate::helpers::{ADMIN_PASSWORD, Backend, JWT_SECRET, TestStore};

/// SIGKILL mid-burst, then restart: every 201 is stored, conservation holds, and the deal sells
/// exactly its remaining units.
async fn sigkill_mid_burst_loses_no_acknowledged_order(backend: Backend) {
    let store = TestStore::create(backend).await;
    let mut engine = EngineProcess::start(&store);
    // More units than the first burst asks for, so units remain whatever the moment of the kill.
    let units = 5_000;
    let (deal_id, tokens) = scenario(&engine, units, 40).await;

    let mut outcomes = fire(&engine, deal_id, &tokens, 1_000);
    let mut acknowledged = Vec::new();
    let mut answered = 0;
    while answered < 20 {
        let Some(outcome) = outcomes.recv().await else {
            break;
        };
        answered += 1;
        if let Ok((StatusCode::CREATED, body)) = outcome {
            acknowledged.push(body["id"].as_i64().expect("id"));
        }
    }
    engine.child.kill().expect("SIGKILL");
    let _ = engine.child.wait();
    // Answers that were already on their way count too; the rest died with the process.
    while let Some(outcome) = outcomes.recv().await {
        if let Ok((StatusCode::CREATED, body)) = outcome {
            acknowledged.push(body["id"].as_i64().expect("id"));
        }
    }
    println!(
        "SIGKILL after {answered} answers; {} orders acknowledged",
        acknowledged.len()
    );
    assert_acknowledged_orders_stored(&store, deal_id, &acknowledged).await;

    let engine = EngineProcess::start(&store);
    let (_, deal) = engine
        .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
        .await;
    let remaining = deal["available_units"].as_i64().expect("available") as usize;
    assert!(
        remaining > 0 && remaining < units as usize,
        "the kill came mid-burst: {remaining} left"
    );
    let mut outcomes = fire(&engine, deal_id, &tokens, remaining + 100);
    let mut sold_after = 0;
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Ok((StatusCode::CREATED, _)) => sold_after += 1,
            Ok((StatusCode::CONFLICT, body)) => assert_eq!(body["code"], "SOLD_OUT"),
            other => panic!("unexpected outcome after restart: {other:?}"),
        }
    }
    let db = Store::connect(&store.url, 1).await.expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    db.close().await;
    assert_eq!(
        (stock.units_held, stock.available_units),
        (units, 0),
        "sold exactly the units there are"
    );
    assert_eq!(
        sold_after, remaining,
        "the restarted engine sold exactly the remaining units"
    );
    drop(engine);
    store.remove().await;
}

/// SIGTERM during a burst: `/readyz` answers 503 at once (while the node still serves during
/// its drain grace period), in-flight requests are answered, the writer flushes, exit code 0,
/// and every 201 is in the store.
async fn sigterm_drains_and_exits_cleanly(backend: Backend) {
    let store = TestStore::create(backend).await;
    let mut engine = EngineProcess::start_with_env(&store, &[("TOPKART_DRAIN_GRACE_MS", "3000")]);
    let (deal_id, tokens) = scenario(&engine, 200, 40).await;
    let (status, _) = engine.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "ready before the signal");

    let mut outcomes = fire(&engine, deal_id, &tokens, 600);
    let mut acknowledged = Vec::new();
    for _ in 0..50 {
        if let Some(Ok((StatusCode::CREATED, body))) = outcomes.recv().await {
            acknowledged.push(body["id"].as_i64().expect("id"));
        }
    }
    let pid = engine.child.id().to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    // `/readyz` turns 503 at once, while the node still answers during its grace period.
    let mut readiness = Vec::new();
    for _ in 0..1_000 {
        let (status, body) = engine.call("GET", "/readyz", None, None).await;
        readiness.push(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "OVERLOADED", "{body}");
            break;
        }
    }
    assert_eq!(
        readiness.last(),
        Some(&StatusCode::SERVICE_UNAVAILABLE),
        "/readyz turned 503 after SIGTERM: {readiness:?}"
    );
    while let Some(outcome) = outcomes.recv().await {
        if let Ok((StatusCode::CREATED, body)) = outcome {
            acknowledged.push(body["id"].as_i64().expect("id"));
        }
    }
    assert_eq!(
        engine.wait_exit(Duration::from_secs(30)),
        Some(0),
        "a clean exit"
    );
    assert!(!acknowledged.is_empty());
    assert_acknowledged_orders_stored(&store, deal_id, &acknowledged).await;
    drop(engine);
    store.remove().await;
}

/// The README's first command on a fresh machine: no configuration at all (only a free port,
/// so the test cannot collide with a running engine) gives a working engine on SQLite under
/// ./data, with a generated JWT secret kept there.
#[actix_web::test]
async fn starts_with_no_configuration() {
    let workdir =
        std::env::temp_dir().join(format!("topkart_zero_{}", topkart::auth::random_hex(6)));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_topkart"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOPKART_") || name == "DATABASE_URL" || name == "REDIS_URL" {
            command.env_remove(name);
        }
    }
    let mut child = command
        .current_dir(&workdir)
        .env("TOPKART_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("topkart listening on ")
        .expect("listening line")
        .to_owned();
    let client = awc::Client::default();
    let engine = EngineProcess {
        child,
        base,
        client,
    };

    let (status, ready) = engine.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, &ready["store"]),
        (StatusCode::OK, &json!("sqlite"))
    );
    let signup =
        json!({"username": "first", "email": "first@example.com", "password": "first-password"});
    assert_eq!(
        engine
            .call("POST", "/api/v1/users", None, Some(signup))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, deals) = engine.call("GET", "/api/v1/deals", None, None).await;
    assert_eq!((status, &deals["count"]), (StatusCode::OK, &json!(0)));
    assert!(
        workdir.join("data/topkart.db").is_file(),
        "the SQLite file is under ./data"
    );
    assert!(
        workdir.join("data/jwt-secret").is_file(),
        "the generated secret is kept in ./data"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&workdir);
}

/// A full run logged at `debug` (users, logins, refresh, deals, orders, shutdown) never writes a
/// password, a token or the JWT secret into the log.
async fn the_log_holds_no_secrets(backend: Backend) {
    let store = TestStore::create(backend).await;
    let log_path = store.data_dir().join("engine.log");
    std::fs::create_dir_all(store.data_dir()).expect("data dir");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut engine = EngineProcess::start_with(&store, Stdio::from(log), Some("debug"));
    let (deal_id, _) = scenario(&engine, 10, 1).await;
    let password = "customer-secret-password-4711";
    let signup =
        json!({"username": "logcheck", "email": "logcheck@example.com", "password": password});
    assert_eq!(
        engine
            .call("POST", "/api/v1/users", None, Some(signup))
            .await
            .0,
        StatusCode::CREATED
    );
    let wrong = json!({"username": "logcheck", "password": "wrong-secret-password-0815"});
    assert_eq!(
        engine
            .call("POST", "/api/v1/auth/login", None, Some(wrong))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (_, pair) = engine
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "logcheck", "password": password})),
        )
        .await;
    let access = pair["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let refresh = pair["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (_, rotated) = engine
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(
        engine
            .call(
                "POST",
                "/api/v1/orders",
                Some(&access),
                Some(json!({"deal_id": deal_id}))
            )
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        engine
            .call("GET", "/api/v1/users/me", Some(&access), None)
            .await
            .0,
        StatusCode::OK
    );
    let signalled = Command::new("kill")
        .args(["-TERM", &engine.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    assert_eq!(engine.wait_exit(Duration::from_secs(30)), Some(0));

    let written = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        written.lines().count() > 5,
        "the run logged something at debug:\n{written}"
    );
    let rotated_refresh = rotated["refresh_token"]
        .as_str()
        .unwrap_or("missing")
        .to_owned();
    let rotated_access = rotated["access_token"]
        .as_str()
        .unwrap_or("missing")
        .to_owned();
    for (what, secret) in [
        ("the password", password),
        ("the wrong password", "wrong-secret-password-0815"),
        ("the admin password", ADMIN_PASSWORD),
        ("the JWT secret", JWT_SECRET),
        ("an access token", access.as_str()),
        ("a refresh token", refresh.as_str()),
        ("a rotated refresh token", rotated_refresh.as_str()),
        ("a rotated access token", rotated_access.as_str()),
    ] {
        assert!(!written.contains(secret), "{what} appears in the log");
        // A token's signature alone is as good as the token.
        if let Some(signature) = secret
            .rsplit('.')
            .next()
            .filter(|s| s.len() > 20 && secret.contains('.'))
        {
            assert!(
                !written.contains(signature),
                "{what}'s signature appears in the log"
            );
        }
    }
    drop(engine);
    store.remove().await;
}

crate::on_both_stores!(
    sigkill_mid_burst_loses_no_acknowledged_order,
    sigterm_drains_and_exits_cleanly,
    the_log_holds_no_secrets
);

/// A burst of connections far past std's default listen backlog (128), made while the engine
/// is paused (SIGSTOP) so that none is accepted meanwhile: the kernel holds every one for the
/// engine instead of dropping their SYNs (a dropped SYN is sent again only a second later: a
/// buyer's ~1 s wait at a sale's opening). Once the engine runs again, each one is served.
#[actix_web::test]
async fn a_burst_of_connections_is_held_for_the_engine_not_dropped() {
    const BURST: usize = 1_000;
    let store = TestStore::create(Backend::Sqlite).await;
    let engine = EngineProcess::start(&store);
    let address: std::net::SocketAddr = engine
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the engine's address");
    engine.signal("-STOP");
    // Each connect given half a second: less than the second a dropped SYN waits to be resent.
    let connecting: Vec<_> = (0..BURST)
        .map(|_| {
            actix_web::rt::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(address),
                )
                .await
                .ok()
                .and_then(Result::ok)
            })
        })
        .collect();
    let mut connected = Vec::with_capacity(BURST);
    for connect in connecting {
        connected.extend(connect.await.expect("the connect task ends"));
    }
    engine.signal("-CONT");
    assert_eq!(
        connected.len(),
        BURST,
        "connections completed while the engine was paused (the rest had their SYNs dropped)"
    );
    // Every held connection is accepted and answered once the engine runs.
    let answers: Vec<_> = connected
        .into_iter()
        .map(|mut stream| {
            actix_web::rt::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                stream
                    .write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .await
                    .ok()?;
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
                    .await
                    .ok()?
                    .ok()?;
                Some(answer.starts_with(b"HTTP/1.1 200"))
            })
        })
        .collect();
    let mut served = 0;
    for answer in answers {
        if answer.await.expect("the request task ends") == Some(true) {
            served += 1;
        }
    }
    assert_eq!(served, BURST, "every held connection answered 200");
}
