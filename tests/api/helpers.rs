//! `spawn_app(Backend)`: a real Topkart on a free port with a fresh store of its own (a new
//! SQLite file, or a new Postgres database), plus an HTTP client and shortcuts for the tests.
//!
//! Postgres is required: when it is not reachable the test fails, it never skips.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::{Value, json};
use sqlx::Connection;
use topkart::auth::{Role, TokenKind};
use topkart::config::{Secret, Settings};
use topkart::startup::{Application, ShutdownHandle};
use topkart::state::State;
use topkart::store::{NewUser, StockCheck, Store};

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The Postgres server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TOPKART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store of one test's own; dropped by `TestStore::remove`.
pub struct TestStore {
    pub url: String,
    backend: Backend,
    name: String,
    dir: Option<PathBuf>,
}

impl TestStore {
    pub async fn create(backend: Backend) -> Self {
        let name = format!("topkart_t_{}", topkart::auth::random_hex(6));
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}", dir.join("topkart.db").display());
                Self {
                    url,
                    backend,
                    name,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("Postgres is required for these tests ({admin}): {e}")
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base)
                    .to_owned();
                Self {
                    url: format!("{base}/{name}"),
                    backend,
                    name,
                    dir: None,
                }
            }
        }
    }

    pub async fn remove(self) {
        match self.backend {
            Backend::Sqlite => {
                if let Some(dir) = &self.dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Backend::Postgres => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }

    /// The data folder of an SQLite store (where the binary keeps its JWT secret too).
    pub fn data_dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(&self.name))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Settings for a test: port 0, the test's store, cheap password hashing.
pub fn test_settings(store_url: &str, data_dir: PathBuf) -> Settings {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".into();
    settings.store.database_url = store_url.to_owned();
    settings.data_dir = data_dir;
    settings.jwt_secret = Some(Secret(JWT_SECRET.into()));
    settings.admin_username = "admin".into();
    settings.admin_email = "admin@example.com".into();
    settings.admin_password = Some(Secret(ADMIN_PASSWORD.into()));
    // Cheaper hashing for tests only; the code path is the same argon2id.
    settings.passwords.argon2_memory_kib = 64;
    settings.passwords.argon2_iterations = 1;
    settings.db_max_connections = 8;
    settings
}

pub struct TestApp {
    pub base: String,
    pub client: awc::Client,
    pub state: State,
    pub admin_token: String,
    shutdown: ShutdownHandle,
    running: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    test_store: TestStore,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let test_store = TestStore::create(backend).await;
    spawn_app_with(test_store, |_| {}).await
}

pub async fn spawn_app_with(test_store: TestStore, tune: impl FnOnce(&mut Settings)) -> TestApp {
    topkart::telemetry::init_logging_or("warn");
    let mut settings = test_settings(&test_store.url, test_store.data_dir());
    tune(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let shutdown = app.shutdown_handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .connector(
            // Under the server's 5 s keep-alive: a connection the server closed while idle is
            // never reused (awc would report it as "connector has been disconnected").
            awc::Connector::new()
                .limit(2_000)
                .conn_keep_alive(Duration::from_secs(3)),
        )
        .finish();
    let admin = state
        .store
        .user_by_login("admin")
        .await
        .expect("store answers")
        .expect("bootstrap admin exists");
    let admin_token = state
        .keys
        .issue(admin.0.id, Role::Admin, TokenKind::Access, None, now_ms())
        .0;
    TestApp {
        base,
        client,
        state,
        admin_token,
        shutdown,
        running,
        test_store,
    }
}

/// A response's status and JSON body (`Value::Null` when the body is not JSON).
pub type Reply = (StatusCode, Value);

impl TestApp {
    /// The URL of the app's store, for tests that reach into it directly.
    pub fn store_url(&self) -> String {
        self.test_store.url.clone()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = response.unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let bytes = response.body().limit(10 * 1024 * 1024).await.expect("body");
        (
            response.status(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Sends raw bytes with a content type of our choosing.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &'static str,
    ) -> Reply {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method, self.url(path))
            .insert_header(("Content-Type", content_type));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = request.send_body(body).await.expect("request");
        let bytes = response.body().await.expect("body");
        (
            response.status(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }

    /// A POST sent on a task of its own (so that many go at once): its answer, awaited later.
    pub fn post_on_task(
        &self,
        path: String,
        token: String,
        body: Value,
    ) -> impl std::future::Future<Output = Reply> + 'static {
        let (client, url) = (self.client.clone(), self.url(&path));
        let task = spawn(async move {
            let mut response = client
                .post(url)
                .bearer_auth(token)
                .send_json(&body)
                .await
                .expect("answered");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (response.status(), body)
        });
        async move { task.await.expect("task") }
    }

    /// Places a single-unit order for the deal with the token.
    pub async fn order(&self, token: &str, deal_id: i64) -> Reply {
        self.post("/api/v1/orders", Some(token), json!({"deal_id": deal_id}))
            .await
    }

    /// Creates `count` customers straight in the store (one shared hash) and signs their
    /// tokens; the registration and login routes have tests of their own.
    pub async fn customers(&self, count: usize) -> Vec<Customer> {
        let hash = self.state.hasher.hash("customer-password");
        let mut customers = Vec::with_capacity(count);
        for _ in 0..count {
            let name = format!("c{}", topkart::auth::random_hex(6));
            let user = NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                phone_number: None,
                password_hash: hash.clone(),
                user_type: "customer".into(),
            };
            let user = self
                .store()
                .create_user(&user, now_ms())
                .await
                .expect("customer created");
            let token = self
                .state
                .keys
                .issue(user.id, Role::Customer, TokenKind::Access, None, now_ms())
                .0;
            customers.push(Customer { id: user.id, token });
        }
        customers
    }

    /// Creates a deal of `units` units, open now for an hour, with `extra` fields merged in.
    pub async fn create_deal(&self, units: i64, extra: Value) -> i64 {
        let mut body = json!({
            "product_name": "Noise-cancelling headphones",
            "actual_price": "199.00",
            "final_price": "99.00",
            "total_units": units,
            "expires_at": rfc3339(now_ms() + 3_600_000),
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, deal) = self
            .post("/api/v1/deals", Some(&self.admin_token), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "deal created: {deal}");
        deal["id"].as_i64().expect("deal id")
    }

    pub async fn stock(&self, deal_id: i64) -> StockCheck {
        self.store()
            .stock_check(deal_id)
            .await
            .expect("store answers")
            .expect("deal exists")
    }

    /// The deal as the API shows it.
    pub async fn deal(&self, deal_id: i64) -> Value {
        let (status, deal) = self.get(&format!("/api/v1/deals/{deal_id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        deal
    }

    /// Shuts the app down gracefully and removes its store.
    pub async fn finish(self) {
        self.shutdown.shutdown().await;
        let _ = self.running.await;
        self.test_store.remove().await;
    }

    /// Shuts the app down gracefully and hands back its store (for a restart).
    pub async fn stop_keeping_store(self) -> TestStore {
        self.shutdown.shutdown().await;
        let _ = self.running.await;
        self.test_store
    }
}

pub struct Customer {
    pub id: i64,
    pub token: String,
}

pub fn rfc3339(at: i64) -> String {
    topkart::wire::rfc3339(at)
}

/// Asserts a response is the error envelope with `code`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.0, status, "status for {}", reply.1);
    assert_eq!(reply.1["status"], "error", "envelope: {}", reply.1);
    assert_eq!(reply.1["code"], code, "code: {}", reply.1);
    assert!(
        reply.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message: {}",
        reply.1
    );
}

/// Runs a future on the current (actix) runtime and returns its handle.
pub fn spawn<F: std::future::Future + 'static>(
    future: F,
) -> actix_web::rt::task::JoinHandle<F::Output>
where
    F::Output: 'static,
{
    actix_web::rt::spawn(future)
}

/// Defines each named `async fn name(backend: Backend)` test once per store.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[actix_web::test] async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[actix_web::test] async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })*
        }
    };
}
