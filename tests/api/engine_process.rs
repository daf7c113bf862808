//! A real `topkart` binary as a child process, and the helpers the process and fault tests
//! share: set a scenario up over the API, fire a burst, check what was acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use topkart::auth::{JwtKeys, Role, TokenKind};
use topkart::store::Store;

use crate::helpers::{ADMIN_PASSWORD, JWT_SECRET, TestStore, rfc3339, spawn};

/// A running `topkart` process and a client for it.
pub struct EngineProcess {
    pub child: Child,
    pub base: String,
    pub client: awc::Client,
}

impl EngineProcess {
    /// Starts the binary on the test's store and waits for its "listening" line.
    pub fn start(store: &TestStore) -> Self {
        Self::start_with(store, Stdio::inherit(), None)
    }

    /// Same, with the log going to `stderr` at `log_level` (default: `RUST_LOG` or `error`).
    pub fn start_with(store: &TestStore, stderr: Stdio, log_level: Option<&str>) -> Self {
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_topkart")),
            store,
            stderr,
            log_level,
            &[],
        )
    }

    /// Starts the binary with extra environment variables (they win over the tests' defaults).
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_env(store: &TestStore, vars: &[(&str, &str)]) -> Self {
        let command = Command::new(env!("CARGO_BIN_EXE_topkart"));
        Self::spawn(command, store, Stdio::inherit(), None, vars)
    }

    /// Starts the binary with SIGXFSZ ignored, so that a file-size limit imposed on it later
    /// (`prlimit --fsize`) makes its writes fail with EFBIG — a full disk — instead of killing it.
    #[allow(dead_code)] // used by the fault suite only
    pub fn start_ignoring_file_size_signal(store: &TestStore) -> Self {
        let mut command = Command::new("sh");
        // An ignored signal stays ignored across exec; the pid stays the engine's.
        command.args([
            "-c",
            "trap '' XFSZ; exec \"$0\"",
            env!("CARGO_BIN_EXE_topkart"),
        ]);
        Self::spawn(command, store, Stdio::null(), None, &[])
    }

    fn spawn(
        mut command: Command,
        store: &TestStore,
        stderr: Stdio,
        log_level: Option<&str>,
        overrides: &[(&str, &str)],
    ) -> Self {
        let log_level = log_level
            .map(str::to_owned)
            .unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()));
        let mut child = command
            .env("TOPKART_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &store.url)
            .env("TOPKART_DATA_DIR", store.data_dir())
            .env("TOPKART_JWT_SECRET", JWT_SECRET)
            .env("TOPKART_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TOPKART_ARGON2_MEMORY_KIB", "64")
            .env("TOPKART_ARGON2_ITERATIONS", "1")
            .env("RUST_LOG", log_level)
            .envs(overrides.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the topkart binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let address = line
            .trim()
            .strip_prefix("topkart listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(
                // Under the server's 5 s keep-alive: a connection the server closed while idle is
                // never reused (awc would report it as "connector has been disconnected").
                awc::Connector::new()
                    .limit(2_000)
                    .conn_keep_alive(Duration::from_secs(3)),
            )
            .finish();
        Self {
            child,
            base: address.to_owned(),
            client,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request answered");
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status(), body)
    }

    /// Sends the process a signal with `kill` (`-STOP`, `-CONT`, `-TERM` …).
    /// Credits `amount` (e.g. "10.00") to a user's wallet as `admin`; asserts it took.
    pub async fn credit(&self, admin: &str, user_id: i64, amount: &str) {
        let path = format!("/api/v1/users/{user_id}/balance");
        let (status, body) = self
            .call(
                "POST",
                &path,
                Some(admin),
                Some(json!({ "amount": amount })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "credited: {body}");
    }

    pub fn signal(&self, name: &str) {
        let done = std::process::Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(done.success(), "kill {name}");
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<i32> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("the process did not exit within {bound:?}");
    }
}

impl Drop for EngineProcess {
    /// A failing test must not leave its engine running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bootstrap admin's access token, from a real login.
/// Registers and signs in a customer at `engine`: (id, access token).
pub async fn register_buyer(engine: &EngineProcess, name: &str) -> (i64, String) {
    let signup = json!({"username": name, "email": format!("{name}@example.com"), "password": "buyer-password"});
    let (status, user) = engine
        .call("POST", "/api/v1/users", None, Some(signup))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let login = json!({"username": name, "password": "buyer-password"});
    let (status, login) = engine
        .call("POST", "/api/v1/auth/login", None, Some(login))
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    (
        user["id"].as_i64().expect("id"),
        login["access_token"].as_str().expect("token").to_owned(),
    )
}

pub async fn admin_token(engine: &EngineProcess) -> String {
    let (status, login) = engine
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    login["access_token"].as_str().expect("token").to_owned()
}

/// Admin token, a deal of `units`, and `count` registered customers with tokens.
pub async fn scenario(engine: &EngineProcess, units: i64, count: usize) -> (i64, Vec<String>) {
    scenario_with_limit(engine, units, count, None).await
}

/// Same, with `per_customer_limit` on the deal.
pub async fn scenario_with_limit(
    engine: &EngineProcess,
    units: i64,
    count: usize,
    per_customer_limit: Option<i64>,
) -> (i64, Vec<String>) {
    let admin = admin_token(engine).await;
    let deal = json!({"product_name": "Console", "actual_price": "500.00", "final_price": "299.00", "total_units": units,
        "expires_at": rfc3339(now_ms() + 3_600_000), "per_customer_limit": per_customer_limit});
    let (status, deal) = engine
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let keys = JwtKeys::new(JWT_SECRET.as_bytes(), 3_600, 3_600);
    let mut tokens = Vec::new();
    for i in 0..count {
        let name = format!("buyer{i}_{}", topkart::auth::random_hex(3));
        let signup = json!({"username": name, "email": format!("{name}@example.com"), "password": "buyer-password"});
        let (status, user) = engine
            .call("POST", "/api/v1/users", None, Some(signup))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let id = user["id"].as_i64().expect("id");
        tokens.push(
            keys.issue(id, Role::Customer, TokenKind::Access, None, now_ms())
                .0,
        );
    }
    (deal["id"].as_i64().expect("deal id"), tokens)
}

/// A request the client got no answer to: its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// No answer within the client's timeout: the server hung.
    TimedOut,
    /// The connection failed or closed without an answer.
    ConnectionLost,
}

/// What the client saw of one request.
pub type Outcome = Result<(StatusCode, Value), Unanswered>;

/// Fires `count` single-unit orders at once. Each outcome goes on the channel as it arrives.
pub fn fire(
    engine: &EngineProcess,
    deal_id: i64,
    tokens: &[String],
    count: usize,
) -> mpsc::UnboundedReceiver<Outcome> {
    let (sender, outcomes) = mpsc::unbounded_channel();
    for i in 0..count {
        let (client, url, token, sender) = (
            engine.client.clone(),
            format!("{}/api/v1/orders", engine.base),
            tokens[i % tokens.len()].clone(),
            sender.clone(),
        );
        spawn(async move {
            let _ = sender.send(order_one(&client, &url, &token, deal_id).await);
        });
    }
    outcomes
}

/// One single-unit order of `deal_id` by `token`'s customer at `url`, as the client saw it.
pub async fn order_one(client: &awc::Client, url: &str, token: &str, deal_id: i64) -> Outcome {
    let sent = client
        .post(url)
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&json!({"deal_id": deal_id}))
        .await;
    match sent {
        Ok(mut response) => match response.json::<Value>().await {
            Ok(body) => Ok((response.status(), body)),
            Err(_) => Err(Unanswered::ConnectionLost),
        },
        Err(awc::error::SendRequestError::Timeout) => Err(Unanswered::TimedOut),
        Err(_) => Err(Unanswered::ConnectionLost),
    }
}

/// Every acknowledged order is in the store, and the deal's stock is conserved.
pub async fn assert_acknowledged_orders_stored(
    store: &TestStore,
    deal_id: i64,
    acknowledged: &[i64],
) {
    let store = Store::connect(&store.url, 1).await.expect("store");
    for id in acknowledged {
        assert!(
            store.order_by_id(*id).await.expect("store").is_some(),
            "acknowledged order {id} is lost"
        );
    }
    let stock = store
        .stock_check(deal_id)
        .await
        .expect("store")
        .expect("deal");
    assert!(stock.conserved(), "{stock:?}");
    assert!(stock.orders_held >= acknowledged.len() as i64);
    store.close().await;
}
