//! The store's connection cut exactly after the order batch's commit was sent: a loopback
//! proxy between the engine and Postgres reads the protocol's messages, recognises the writer's
//! batch statement, and — once armed — either lets the statement run to its commit and drops
//! the server's answer (the batch committed; the engine never hears so), or drops the statement
//! itself (it never reached the server). Either way the engine's connection is closed under it
//! with the outcome unknown to it, and it must learn the truth from the store: 201 for the
//! batch that committed, 503 for the one that did not, its units in memory equal to the store's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use topkart::store::Store;

use crate::engine_process::{EngineProcess, scenario};
use crate::helpers::{Backend, TestStore};

/// What the proxy does to the next batch statement it sees executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Forward the statement, let it commit, drop the server's answer, close the connection.
    AfterCommit,
    /// Drop the statement before the server sees it, close the connection.
    BeforeServer,
}

/// Text only the order writer's batch statement holds.
const BATCH_MARKER: &[u8] = b"WITH inserted AS";

/// A Postgres proxy on loopback that cuts one batch's connection when armed.
struct CuttingProxy {
    port: u16,
    armed: Arc<Mutex<Option<Cut>>>,
    /// Counts the cuts made.
    cuts: watch::Receiver<usize>,
}

impl CuttingProxy {
    /// Starts the proxy on a thread and runtime of its own: the test's own thread blocks while
    /// an engine starts (and connects through the proxy).
    fn start(upstream: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let armed = Arc::new(Mutex::new(None));
        let (cut_made, cuts) = watch::channel(0usize);
        let cut_made = Arc::new(cut_made);
        let shared = armed.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("proxy listener");
                while let Ok((client, _)) = listener.accept().await {
                    let (armed, upstream, cut_made) =
                        (shared.clone(), upstream.clone(), cut_made.clone());
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(&upstream).await {
                            relay(client, server, armed, cut_made).await;
                        }
                    });
                }
            });
        });
        Self { port, armed, cuts }
    }

    fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some(cut);
    }

    /// Waits (bounded) until `count` cuts were made.
    async fn cuts_made(&mut self, count: usize) {
        tokio::time::timeout(
            Duration::from_secs(30),
            self.cuts.wait_for(|made| *made >= count),
        )
        .await
        .expect("the proxy cut the batch's connection in time")
        .expect("proxy runs");
    }
}

/// One protocol message: its type byte (none for the startup packet) and its whole bytes.
async fn read_message(from: &mut (impl AsyncRead + Unpin), typed: bool) -> Option<(u8, Vec<u8>)> {
    let mut bytes = Vec::new();
    let kind = if typed {
        let kind = from.read_u8().await.ok()?;
        bytes.push(kind);
        kind
    } else {
        0
    };
    let length = from.read_u32().await.ok()?;
    bytes.extend_from_slice(&length.to_be_bytes());
    let mut body = vec![0u8; (length as usize).checked_sub(4)?];
    from.read_exact(&mut body).await.ok()?;
    bytes.extend_from_slice(&body);
    Some((kind, bytes))
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<Option<Cut>>>,
    cut_made: Arc<watch::Sender<usize>>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set once the batch's statement went to the server with its answer to be dropped.
    let (swallow, mut swallowing) = watch::channel(false);
    let answers = async move {
        // The server's messages are all typed (the test's URL asks for no TLS).
        while let Some((kind, bytes)) = read_message(&mut server_read, true).await {
            if *swallowing.borrow_and_update() {
                if kind == b'Z' {
                    // ReadyForQuery: the statement's implicit transaction has committed.
                    return true;
                }
                continue;
            }
            if write_all(&mut client_write, &bytes).await.is_err() {
                return false;
            }
        }
        false
    };
    let requests = async move {
        // The startup packet is the one untyped message.
        let Some((_, startup)) = read_message(&mut client_read, false).await else {
            return None;
        };
        write_all(&mut server_write, &startup).await.ok()?;
        let mut batch_connection = false;
        while let Some((kind, bytes)) = read_message(&mut client_read, true).await {
            if kind == b'P' && contains(&bytes, BATCH_MARKER) {
                batch_connection = true;
            }
            if kind == b'E' && batch_connection {
                let cut = armed.lock().unwrap().take();
                match cut {
                    Some(Cut::BeforeServer) => return Some(Cut::BeforeServer),
                    Some(Cut::AfterCommit) => {
                        let _ = swallow.send(true);
                        write_all(&mut server_write, &bytes).await.ok()?;
                        // The implicit transaction commits at the Sync that follows.
                        loop {
                            let (kind, bytes) = read_message(&mut client_read, true).await?;
                            write_all(&mut server_write, &bytes).await.ok()?;
                            if kind == b'S' {
                                break;
                            }
                        }
                        // Keep the server's side open until its answer has been read.
                        std::future::pending::<()>().await;
                    }
                    None => {}
                }
            }
            write_all(&mut server_write, &bytes).await.ok()?;
        }
        None
    };
    // Whichever ends first ends the connection: both halves are dropped, the engine's socket
    // closes with no answer.
    let cut = tokio::select! {
        committed = answers => committed.then_some(Cut::AfterCommit),
        cut = requests => cut,
    };
    if cut.is_some() {
        cut_made.send_modify(|made| *made += 1);
    }
}

async fn write_all(to: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The test store's URL, pointed at the proxy (plain TCP: the proxy reads the messages).
fn through(store: &TestStore, port: u16) -> String {
    let database = store.url.rsplit('/').next().expect("database name");
    format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable")
}

/// The available units the engine shows and the store holds, and whether the store's are
/// conserved.
async fn units(engine: &EngineProcess, store: &TestStore, deal_id: i64) -> (i64, i64, bool) {
    let (status, deal) = engine
        .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deal}");
    let db = Store::connect(&store.url, 1).await.expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    db.close().await;
    (
        deal["available_units"].as_i64().expect("available_units"),
        stock.total_units - stock.units_held,
        stock.conserved(),
    )
}

/// A batch that committed while its answer was lost is answered 201 (and is stored); one that
/// never reached the server is answered 503 with its units back. Memory equals the store.
#[actix_web::test]
async fn a_commit_whose_answer_is_lost_is_answered_by_what_the_store_holds() {
    let store = TestStore::create(Backend::Postgres).await;
    let upstream = {
        let admin = crate::helpers::postgres_admin_url();
        let host = admin
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next());
        host.unwrap_or("127.0.0.1:5432").to_owned()
    };
    let mut proxy = CuttingProxy::start(upstream);
    let url = through(&store, proxy.port);
    let engine = EngineProcess::start_with_env(&store, &[("DATABASE_URL", &url)]);
    let (deal_id, buyers) = scenario(&engine, 10, 2).await;
    let order = json!({"deal_id": deal_id, "quantity": 2});

    proxy.arm(Cut::AfterCommit);
    let (status, stored) = engine
        .call(
            "POST",
            "/api/v1/orders",
            Some(&buyers[0]),
            Some(order.clone()),
        )
        .await;
    proxy.cuts_made(1).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the batch committed, so its order is answered as stored: {stored}"
    );
    let order_id = stored["id"].as_i64().expect("a 201 names its order");
    let (status, read) = engine
        .call(
            "GET",
            &format!("/api/v1/orders/{order_id}"),
            Some(&buyers[0]),
            None,
        )
        .await;
    assert_eq!(
        (status, read["quantity"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(units(&engine, &store, deal_id).await, (8, 8, true));

    proxy.arm(Cut::BeforeServer);
    let (status, failed) = engine
        .call(
            "POST",
            "/api/v1/orders",
            Some(&buyers[1]),
            Some(order.clone()),
        )
        .await;
    proxy.cuts_made(2).await;
    assert_eq!(
        (status, failed["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("STORE_UNAVAILABLE")),
        "the batch never reached the server, so its order failed: {failed}"
    );
    assert_eq!(
        units(&engine, &store, deal_id).await,
        (8, 8, true),
        "the failed order's units are back on the shelf, in memory as in the store"
    );

    // Nothing armed: the deal sells its last units and sells out, in memory as in the store.
    for (i, quantity) in [(1, 4), (0, 4)] {
        let (status, body) = engine
            .call(
                "POST",
                "/api/v1/orders",
                Some(&buyers[i]),
                Some(json!({"deal_id": deal_id, "quantity": quantity})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, sold_out) = engine
        .call("POST", "/api/v1/orders", Some(&buyers[1]), Some(order))
        .await;
    assert_eq!(
        (status, sold_out["code"].as_str()),
        (StatusCode::CONFLICT, Some("SOLD_OUT"))
    );
    assert_eq!(units(&engine, &store, deal_id).await, (0, 0, true));
    drop(engine);
    store.remove().await;
}
