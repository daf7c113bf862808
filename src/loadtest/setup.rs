//! The scenario's world, built over the API: an admin session, deals, registered buyers, and
//! the plan of requests the drivers send.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use actors::clock::now_ms;
use serde_json::{Value, json};

use super::args::{LoadtestArgs, Scenario};

/// An admin's session on the Topkart under test.
pub struct Api {
    pub base: String,
    pub client: awc::Client,
    pub admin_token: String,
    /// What marks this run's deals and buyers in the engine's store: `loadtest-<8 hex>`.
    pub tag: String,
}

impl Api {
    pub async fn login(base: &str, username: &str, password: &str) -> Result<Self, String> {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .connector(awc::Connector::new().limit(64))
            .finish();
        let mut api = Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
            admin_token: String::new(),
            tag: format!("loadtest-{}", crate::auth::random_hex(4)),
        };
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/auth/login",
                false,
                Some(json!({"username": username, "password": password})),
            )
            .await?;
        if status != 200 {
            return Err(format!("admin login failed ({status}): {body}"));
        }
        api.admin_token = body["access_token"]
            .as_str()
            .ok_or("no access_token in the login answer")?
            .to_owned();
        Ok(api)
    }

    /// One request; `as_admin` adds the admin's token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        as_admin: bool,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let method =
            actix_web::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if as_admin {
            request =
                request.insert_header(("Authorization", format!("Bearer {}", self.admin_token)));
        }
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|error| format!("{path}: {error}"))?;
        let bytes = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        Ok((
            response.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Creates a deal of `units` units, selling now for 11 hours, its name marked with the
    /// run's tag (`[loadtest-…] name`).
    pub async fn create_deal(&self, name: &str, units: i64) -> Result<i64, String> {
        let now = now_ms();
        let body = json!({"product_name": format!("[{}] {name}", self.tag), "actual_price": "100.00", "final_price": "49.00", "total_units": units,
            "starts_at": crate::wire::rfc3339(now - 1_000), "expires_at": crate::wire::rfc3339(now + 11 * 3_600_000)});
        let (status, deal) = self.call("POST", "/api/v1/deals", true, Some(body)).await?;
        if status != 201 {
            return Err(format!("creating a deal failed ({status}): {deal}"));
        }
        deal["id"].as_i64().ok_or_else(|| "no deal id".to_owned())
    }

    /// Registers `count` buyers and logs each in; returns their `Authorization` header values,
    /// checked once here so that sending a request only clones one. Their names carry the
    /// run's tag (`loadtest-…-hot-deal-b7`, e-mail at `loadtest.invalid`, a domain that never exists).
    pub async fn register_buyers(
        &self,
        count: usize,
        scenario: &str,
    ) -> Result<Vec<HeaderValue>, String> {
        let password = format!("{}-password", self.tag);
        let mut tokens = Vec::with_capacity(count);
        let mut progress = Progress::new("buyers registered", count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(16) {
            let mut pending = Vec::new();
            for i in chunk {
                let name = format!("{}-{scenario}-b{i}", self.tag);
                let signup = json!({"username": name, "email": format!("{name}@loadtest.invalid"), "password": password});
                let login = json!({"username": name, "password": password});
                pending.push(async move {
                    let (status, body) = self
                        .call("POST", "/api/v1/users", false, Some(signup))
                        .await?;
                    if status != 201 {
                        return Err(format!("registering a buyer failed ({status}): {body}"));
                    }
                    let (status, body) = self
                        .call("POST", "/api/v1/auth/login", false, Some(login))
                        .await?;
                    let token = body["access_token"].as_str().filter(|_| status == 200);
                    let token =
                        token.ok_or_else(|| format!("buyer login failed ({status}): {body}"))?;
                    HeaderValue::try_from(format!("Bearer {token}"))
                        .map_err(|_| "the server's access token is not a valid header value".into())
                });
            }
            for result in join_all(pending).await {
                tokens.push(result?);
            }
            progress.show(tokens.len());
        }
        Ok(tokens)
    }

    /// Closes the run's deals once it is verified: they leave `GET /deals`, and the store
    /// keeps them (and their orders) marked with the run's tag.
    pub async fn close_deals(&self, deal_ids: &[i64]) -> Result<(), String> {
        for chunk in deal_ids.chunks(32) {
            let closed = join_all(
                chunk
                    .iter()
                    .map(|id| async move {
                        let path = format!("/api/v1/deals/{id}/close");
                        self.call("POST", &path, true, None).await
                    })
                    .collect(),
            )
            .await;
            for result in closed {
                let (status, body) = result?;
                if status != 200 {
                    return Err(format!(
                        "closing a deal of the run failed ({status}): {body}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Set-up progress on stderr, a line at most every second (set-up can take many seconds).
struct Progress {
    what: &'static str,
    total: usize,
    last: std::time::Instant,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        Self {
            what,
            total,
            last: std::time::Instant::now(),
        }
    }

    fn show(&mut self, done: usize) {
        if self.last.elapsed() >= Duration::from_secs(1) || (done == self.total && done >= 100) {
            eprintln!("   set-up: {done}/{} {}", self.total, self.what);
            self.last = std::time::Instant::now();
        }
    }
}

/// Awaits every future concurrently on the current thread; outputs in the input's order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, result) in pending.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *result = Some(output),
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results
        .into_iter()
        .map(|result| result.expect("every future finished"))
        .collect()
}

/// What a driver sends.
#[derive(Debug, Clone)]
pub enum PlanKind {
    /// Single-unit orders spread over these deals.
    Orders { deal_ids: Vec<i64> },
    /// 90 % `GET /api/v1/deals`, 10 % orders on the deal.
    BrowseAndBuy { deal_id: i64 },
    /// `GET /livez`.
    Health,
}

/// The requests of a scenario, shared by every driver thread.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: PlanKind,
    /// `Authorization` header values, one per buyer.
    pub buyers: Arc<Vec<HeaderValue>>,
    /// Pre-serialised order bodies, one per deal, in the order of `deal_ids`.
    pub bodies: Arc<Vec<Bytes>>,
}

/// One request of the plan.
pub struct PlannedRequest<'a> {
    pub path: &'static str,
    pub authorization: Option<&'a HeaderValue>,
    pub body: Option<Bytes>,
    /// The deal an order is for (None for reads).
    pub deal_index: Option<usize>,
}

impl Plan {
    fn new(kind: PlanKind, buyers: Vec<HeaderValue>) -> Self {
        let deal_ids: Vec<i64> = match &kind {
            PlanKind::Orders { deal_ids } => deal_ids.clone(),
            PlanKind::BrowseAndBuy { deal_id } => vec![*deal_id],
            PlanKind::Health => Vec::new(),
        };
        let bodies = deal_ids
            .iter()
            .map(|id| Bytes::from(format!("{{\"deal_id\":{id},\"quantity\":1}}")))
            .collect();
        Self {
            kind,
            buyers: Arc::new(buyers),
            bodies: Arc::new(bodies),
        }
    }

    pub fn deal_ids(&self) -> Vec<i64> {
        match &self.kind {
            PlanKind::Orders { deal_ids } => deal_ids.clone(),
            PlanKind::BrowseAndBuy { deal_id } => vec![*deal_id],
            PlanKind::Health => Vec::new(),
        }
    }

    /// The `sequence`-th request: buyers round-robin, deals spread by a multiplicative hash.
    pub fn request(&self, sequence: u64) -> PlannedRequest<'_> {
        let buyer = || {
            self.buyers
                .get(sequence as usize % self.buyers.len().max(1))
        };
        let order = |deal_index: usize| PlannedRequest {
            path: "/api/v1/orders",
            authorization: buyer(),
            body: Some(self.bodies[deal_index].clone()),
            deal_index: Some(deal_index),
        };
        match &self.kind {
            PlanKind::Health => PlannedRequest {
                path: "/livez",
                authorization: None,
                body: None,
                deal_index: None,
            },
            PlanKind::Orders { deal_ids } => order(
                (sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % deal_ids.len(),
            ),
            PlanKind::BrowseAndBuy { .. } if sequence % 10 == 9 => order(0),
            PlanKind::BrowseAndBuy { .. } => PlannedRequest {
                path: "/api/v1/deals?page_size=12",
                authorization: None,
                body: None,
                deal_index: None,
            },
        }
    }
}

/// A scenario ready to run.
pub struct Prepared {
    pub scenario: Scenario,
    pub plan: Plan,
    /// Orders placed during set-up (the sold-out storm's sell-out), per deal index.
    pub setup_orders: Vec<i64>,
}

pub async fn prepare(
    api: &Api,
    scenario: Scenario,
    args: &LoadtestArgs,
) -> Result<Prepared, String> {
    let started = std::time::Instant::now();
    let needs_buyers = scenario != Scenario::Baseline;
    let buyers = if needs_buyers {
        eprintln!(
            "   set-up: {} buyers and the deals, marked {}",
            args.buyers.max(1),
            api.tag
        );
        api.register_buyers(args.buyers.max(1), scenario.name())
            .await?
    } else {
        Vec::new()
    };
    let mut setup_orders = Vec::new();
    let kind = match scenario {
        Scenario::Baseline | Scenario::All => PlanKind::Health,
        Scenario::HotDeal => PlanKind::Orders {
            deal_ids: vec![api.create_deal("hot deal", args.units).await?],
        },
        Scenario::SoldOutStorm => {
            let units = 10;
            let deal_id = api.create_deal("sold-out deal", units).await?;
            for i in 0..units as usize {
                let mut request = api.client.post(format!("{}/api/v1/orders", api.base));
                request =
                    request.insert_header(("Authorization", buyers[i % buyers.len()].clone()));
                let response = request
                    .send_json(&json!({"deal_id": deal_id}))
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status() != 201 {
                    return Err(format!(
                        "selling out the storm's deal failed: {}",
                        response.status()
                    ));
                }
            }
            setup_orders.push(units);
            PlanKind::Orders {
                deal_ids: vec![deal_id],
            }
        }
        Scenario::ManyDeals => {
            let per_deal = (args.units / args.deals.max(1) as i64).max(1);
            let mut deal_ids = Vec::with_capacity(args.deals);
            let mut progress = Progress::new("deals created", args.deals);
            for chunk in (0..args.deals).collect::<Vec<_>>().chunks(32) {
                let created = join_all(
                    chunk
                        .iter()
                        .map(|i| api.create_deal_named(*i, per_deal))
                        .collect(),
                )
                .await;
                for id in created {
                    deal_ids.push(id?);
                }
                progress.show(deal_ids.len());
            }
            PlanKind::Orders { deal_ids }
        }
        Scenario::BrowseAndBuy => PlanKind::BrowseAndBuy {
            deal_id: api.create_deal("browsed deal", args.units).await?,
        },
    };
    eprintln!("   set up in {:.1} s", started.elapsed().as_secs_f64());
    Ok(Prepared {
        scenario,
        plan: Plan::new(kind, buyers),
        setup_orders,
    })
}

impl Api {
    async fn create_deal_named(&self, index: usize, units: i64) -> Result<i64, String> {
        self.create_deal(&format!("deal {index}"), units).await
    }
}
