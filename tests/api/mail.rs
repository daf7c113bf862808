//! E-mail (issue 12, acceptance 4), on both stores, against a real SMTP server on loopback
//! (Python's aiosmtpd, started by the test, writing a Maildir): one confirmation per
//! acknowledged order of a 1,000-order burst and none for the refused; a receipt for a payment;
//! with the SMTP server down the mail is owed in the store, survives a SIGKILL of the engine,
//! and all of it arrives once the server is up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use futures_util::future::join_all;
use serde_json::json;

use crate::engine_process::{EngineProcess, admin_token, register_buyer};
use crate::helpers::{Backend, TestStore, rfc3339, spawn_app_with};

/// An SMTP server on a loopback port, keeping every message it takes in a Maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    /// Starts aiosmtpd on `port` (0: a free one) and waits until it answers (bounded).
    pub fn start(port: u16, maildir: &Path) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd runs (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            maildir: maildir.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, as text.
    pub fn messages(&self) -> Vec<String> {
        read_maildir(&self.maildir)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

pub fn read_maildir(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .collect()
}

/// A new, empty Maildir of the test's own (removed with the server).
fn maildir() -> PathBuf {
    std::env::temp_dir().join(format!("topkart-mail-{}", topkart::auth::random_hex(6)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

/// A header's value in a message's text.
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// The order a message is about, from its Message-ID (`<order-N.kind@domain>`), with the kind.
fn about(message: &str) -> (i64, String) {
    let id = header(message, "Message-ID").unwrap_or_else(|| panic!("a Message-ID: {message}"));
    let rest = id.trim_start_matches("<order-");
    let (number, rest) = rest.split_once('.').expect("order-N.kind");
    let kind = rest.split('@').next().unwrap_or_default().to_owned();
    (number.parse().expect("an order number"), kind)
}

/// Polls the server until it holds `count` messages (bounded), and returns them.
async fn arrived(server: &SmtpServer, count: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let messages = server.messages();
        if messages.len() >= count {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages arrived",
            messages.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_burst_sends_one_confirmation_per_acknowledged_order(backend: Backend) {
    let maildir = maildir();
    let smtp = SmtpServer::start(0, &maildir);
    let test_store = TestStore::create(backend).await;
    let url = smtp.url();
    let app = spawn_app_with(test_store, |settings| {
        settings.mail.smtp_url = Some(topkart::config::Secret(url))
    })
    .await;
    let deal_id = app.create_deal(100, json!({"final_price": "7.25"})).await;
    let buyers = app.customers(1_000).await;
    let answers = join_all(buyers.iter().map(|buyer| {
        let order = json!({"deal_id": deal_id});
        app.post_on_task("/api/v1/orders".into(), buyer.token.clone(), order)
    }))
    .await;
    let placed: BTreeSet<i64> = answers
        .iter()
        .filter_map(|(status, body)| {
            (*status == StatusCode::CREATED).then(|| body["id"].as_i64().expect("id"))
        })
        .collect();
    assert_eq!(placed.len(), 100);
    let messages = arrived(&smtp, 100, Duration::from_secs(30)).await;
    let mut confirmed = BTreeSet::new();
    for message in &messages {
        let (order_id, kind) = about(message);
        assert_eq!(kind, "confirmed", "{message}");
        let order = app
            .store()
            .order_by_id(order_id)
            .await
            .expect("store")
            .expect("a stored order");
        let user = app
            .store()
            .user_by_id(order.customer_id)
            .await
            .expect("store")
            .expect("its customer");
        assert!(
            header(message, "To").is_some_and(|to| to.contains(&user.email)),
            "to its customer: {message}"
        );
        assert!(
            header(message, "Subject").is_some_and(|s| s.contains(&format!("#{order_id}"))),
            "{message}"
        );
        assert!(
            message.contains(&format!("#{order_id}")) && message.contains("7.25"),
            "the order and the amount: {message}"
        );
        assert!(
            header(message, "Date").is_some() && header(message, "From").is_some(),
            "{message}"
        );
        assert!(
            confirmed.insert(order_id),
            "one confirmation per order: {order_id} twice"
        );
    }
    assert_eq!(
        confirmed, placed,
        "exactly the acknowledged orders are confirmed"
    );
    // A payment's receipt.
    let deal_id = app
        .create_deal(
            5,
            json!({"final_price": "3.00", "payment_window_secs": 600}),
        )
        .await;
    let buyer = &buyers[0];
    let (status, order) = app.order(&buyer.token, deal_id).await;
    assert_eq!(status, StatusCode::CREATED);
    let order_id = order["id"].as_i64().expect("id");
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{}/balance", buyer.id),
            Some(&app.admin_token),
            json!({"amount": "3.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let messages = arrived(&smtp, 102, Duration::from_secs(30)).await;
    let about_it: Vec<String> = messages
        .iter()
        .map(|m| about(m))
        .filter(|(id, _)| *id == order_id)
        .map(|(_, kind)| kind)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(about_it, ["confirmed", "receipt"]);
    // A served waitlist entry's notice: one unit, bought, waited for, freed.
    let deal_id = app.create_deal(1, json!({"final_price": "4.00"})).await;
    let (status, order) = app.order(&buyers[1].token, deal_id).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/api/v1/deals/{deal_id}/waitlist");
    let (status, _) = app.post(&path, Some(&buyers[2].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let cancel = format!("/api/v1/orders/{}/cancel", order["id"]);
    let (status, _) = app.post(&cancel, Some(&buyers[1].token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let messages = arrived(&smtp, 104, Duration::from_secs(30)).await;
    let served: Vec<&String> = messages
        .iter()
        .filter(|m| about(m).1 == "waitlist")
        .collect();
    assert_eq!(served.len(), 1, "one notice for the served entry");
    let (order_id, _) = about(served[0]);
    let order = app
        .store()
        .order_by_id(order_id)
        .await
        .expect("store")
        .expect("the served order");
    assert_eq!((order.customer_id, order.deal_id), (buyers[2].id, deal_id));
    assert!(served[0].contains("4.00"), "{}", served[0]);
    // A row is marked once its last message is out: the backlog empties just after (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store().mail_backlog().await.expect("store") > 0 {
        assert!(Instant::now() < deadline, "the outbox never emptied");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    app.finish().await;
}

/// The SMTP server is down while orders are placed: their mail is owed in the store; the engine
/// is killed; the server comes up and the engine restarts: every message arrives, once.
async fn mail_owed_while_smtp_is_down_survives_a_sigkill(backend: Backend) {
    let store = TestStore::create(backend).await;
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let mut engine = EngineProcess::start_with_env(&store, &[("TOPKART_SMTP_URL", &smtp_url)]);
    let admin = admin_token(&engine).await;
    let deal = json!({"product_name": "Mailed", "actual_price": "2.00", "final_price": "1.50", "total_units": 1_000,
        "expires_at": rfc3339(actors::clock::now_ms() + 3_600_000)});
    let (status, deal) = engine
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().expect("id");
    let mut placed = BTreeSet::new();
    for i in 0..20 {
        let (_, token) = register_buyer(
            &engine,
            &format!("mailed{i}_{}", topkart::auth::random_hex(3)),
        )
        .await;
        for _ in 0..3 {
            let (status, order) = engine
                .call(
                    "POST",
                    "/api/v1/orders",
                    Some(&token),
                    Some(json!({"deal_id": deal_id})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{order}");
            placed.insert(order["id"].as_i64().expect("id"));
        }
    }
    let db = topkart::store::Store::connect(&store.url, 2)
        .await
        .expect("store");
    assert!(
        db.mail_backlog().await.expect("store") > 0,
        "mail is owed while the server is down"
    );
    // The operator sees it: the outbox's depth and its oldest row's age, in the metrics.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = outbox_metrics(&engine).await;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        let rows = value("topkart_mail_outbox_rows ");
        let age = value("topkart_mail_outbox_oldest_age_seconds ");
        if rows.is_some_and(|rows| rows > 0.0) && age.is_some_and(|age| age > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics show the owed mail: {rows:?} rows, oldest {age:?} s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    engine.child.kill().expect("SIGKILL");
    let _ = engine.child.wait();

    let maildir = maildir();
    let smtp = SmtpServer::start(port, &maildir);
    let engine = EngineProcess::start_with_env(&store, &[("TOPKART_SMTP_URL", &smtp_url)]);
    let messages = arrived(&smtp, placed.len(), Duration::from_secs(60)).await;
    let confirmed: BTreeSet<i64> = messages.iter().map(|m| about(m).0).collect();
    assert_eq!(
        confirmed, placed,
        "every acknowledged order's confirmation arrived"
    );
    assert_eq!(messages.len(), placed.len(), "each once");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.mail_backlog().await.expect("store") > 0 {
        assert!(Instant::now() < deadline, "the outbox never emptied");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await;
    drop(engine);
    store.remove().await;
}

/// With no SMTP server configured nothing is sent: the owed rows are logged and settled in a
/// sweep, so the outbox does not grow.
async fn without_smtp_owed_mail_is_settled_not_kept(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    for buyer in app.customers(3).await {
        let (status, _) = app.order(&buyer.token, deal_id).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store().mail_backlog().await.expect("store") > 0 {
        assert!(
            Instant::now() < deadline,
            "the owed rows were never settled"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Settled rows are purged once old enough (the mailer does it a day after): the outbox
    // holds what is owed, not everything ever sent.
    let store = app.store();
    let now = actors::clock::now_ms();
    assert_eq!(
        store.purge_sent_mail(now - 60_000).await.expect("store"),
        0,
        "too new to go"
    );
    assert!(store.purge_sent_mail(now + 1).await.expect("store") >= 1);
    assert_eq!(store.purge_sent_mail(now + 1).await.expect("store"), 0);
    app.finish().await;
}

crate::on_both_stores!(
    without_smtp_owed_mail_is_settled_not_kept,
    a_burst_sends_one_confirmation_per_acknowledged_order,
    mail_owed_while_smtp_is_down_survives_a_sigkill,
);

/// The engine's `/metrics` text.
async fn outbox_metrics(engine: &EngineProcess) -> String {
    let mut response = engine
        .client
        .get(format!("{}/metrics", engine.base))
        .send()
        .await
        .expect("metrics");
    let body = response.body().await.expect("metrics body");
    String::from_utf8_lossy(&body).into_owned()
}
