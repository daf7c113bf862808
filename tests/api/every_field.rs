//! One 400 names every wrong field: for each request body (users, deals, orders, a wallet
//! credit, and the original APIs' paths), seeded random bodies with several fields made wrong
//! at once — unreadable values (a wrong kind, money with three decimals, a word for an instant)
//! beside values that read but break a rule (an empty name, a negative count) — must each
//! answer 400 `VALIDATION_ERROR` naming every one of those fields, naming no field that was
//! right, and changing nothing in the store.

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::helpers::{Backend, TestApp, assert_error, rfc3339, spawn_app};

/// Bodies tried per endpoint.
const BODIES: usize = 25;

/// One field of a body: a right value, and wrong ones of both sorts.
struct Field {
    name: &'static str,
    right: Value,
    wrong: Vec<Value>,
}

fn field(name: &'static str, right: Value, wrong: Vec<Value>) -> Field {
    Field { name, right, wrong }
}

/// An endpoint's body, with the fields a wrong one may drag along (a rule comparing two
/// fields names the other one when one of them is wrong and still readable).
struct Endpoint {
    path: String,
    fields: Vec<Field>,
    dragged: &'static [(&'static str, &'static str)],
}

fn user_fields() -> Vec<Field> {
    vec![
        field(
            "username",
            json!("grace"),
            vec![json!(""), json!("a b"), json!(5)],
        ),
        field(
            "email",
            json!("grace@example.com"),
            vec![json!("nope"), json!(7), json!([])],
        ),
        field(
            "password",
            json!("long-enough-secret"),
            vec![json!("short"), json!(12345678)],
        ),
        field(
            "phone_number",
            json!("+44 20 7946 0000"),
            vec![json!("call me"), json!(5)],
        ),
    ]
}

fn deal_fields(final_price: &'static str, units: &'static str) -> Vec<Field> {
    let in_an_hour = json!(rfc3339(now_ms() + 3_600_000));
    vec![
        field(
            "product_name",
            json!("Lamp"),
            vec![json!(""), json!(42), json!("x".repeat(300))],
        ),
        field(
            "actual_price",
            json!("50.00"),
            vec![json!("2.005"), json!("abc"), json!(-1), json!(true)],
        ),
        field(
            final_price,
            json!("29.99"),
            vec![json!("2.005"), json!("-3.00"), json!({})],
        ),
        field(
            units,
            json!(10),
            vec![json!(-1), json!("many"), json!(2_000_000_000)],
        ),
        field(
            "expires_at",
            in_an_hour,
            vec![
                json!("yesterday"),
                json!(5),
                json!(rfc3339(now_ms() - 60_000)),
            ],
        ),
    ]
}

fn order_fields() -> Vec<Field> {
    vec![
        field(
            "deal_id",
            json!(1),
            vec![json!("x"), json!(1.5), json!([1])],
        ),
        field(
            "quantity",
            json!(1),
            vec![json!(0), json!(-2), json!("two"), json!(10_001)],
        ),
    ]
}

/// A body with `wrong` fields given wrong values (a random wrong one each), the rest right.
fn body(fields: &[Field], wrong: &[&str], rng: &mut StdRng) -> Value {
    let mut body = Map::new();
    for field in fields {
        let value = if wrong.contains(&field.name) {
            field.wrong.choose(rng).expect("wrong values").clone()
        } else {
            field.right.clone()
        };
        body.insert(field.name.to_owned(), value);
    }
    Value::Object(body)
}

/// Sends `BODIES` seeded bodies with 2 or more wrong fields to the endpoint and checks each
/// answer; `extra` adds fields every body of it carries.
async fn every_wrong_field_named(
    app: &TestApp,
    token: &str,
    endpoint: &Endpoint,
    seed: u64,
    extra: &Value,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..BODIES {
        let count = rng.random_range(2..=endpoint.fields.len());
        let mut names: Vec<&str> = endpoint.fields.iter().map(|field| field.name).collect();
        names.sort_by_key(|_| rng.random::<u32>());
        let wrong = &names[..count];
        let mut sent = body(&endpoint.fields, wrong, &mut rng);
        for (key, value) in extra.as_object().expect("object") {
            sent[key] = value.clone();
        }
        let reply = app.post(&endpoint.path, Some(token), sent.clone()).await;
        assert_eq!(
            (reply.0, reply.1["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR")),
            "seed {seed} round {round}: {} {sent}: {}",
            endpoint.path,
            reply.1
        );
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let named: Vec<&String> = reply.1["errors"]
            .as_object()
            .unwrap_or_else(|| panic!("{} names its fields: {}", endpoint.path, reply.1))
            .keys()
            .collect();
        for field in wrong {
            assert!(
                named.iter().any(|name| name == field),
                "seed {seed} round {round}: {} {sent} names {field}: {}",
                endpoint.path,
                reply.1
            );
        }
        for name in &named {
            let dragged = endpoint
                .dragged
                .iter()
                .any(|(by, along)| along == name && wrong.contains(by));
            assert!(
                wrong.contains(&name.as_str()) || dragged,
                "seed {seed} round {round}: {} {sent} names {name}, which was right: {}",
                endpoint.path,
                reply.1
            );
        }
    }
}

/// Deals, orders and users in the store, to show that nothing changed.
async fn counts(app: &TestApp) -> ((usize, i64), i64) {
    let (_, users) = app
        .store()
        .list_users(&Default::default(), 1, 0)
        .await
        .expect("store");
    (crate::validation::store_counts(app).await, users)
}

async fn every_body_names_every_wrong_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token.clone();
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = app.customers(1).await.remove(0);
    let before = counts(&app).await;
    // A readable but wrong actual price makes a right final price above it wrong too.
    let prices: &[(&str, &str)] = &[
        ("actual_price", "final_price"),
        ("actual_price", "discounted_price"),
    ];
    let admin_bodies = [
        Endpoint {
            path: "/api/v1/deals".into(),
            fields: deal_fields("final_price", "total_units"),
            dragged: prices,
        },
        Endpoint {
            path: "/topkart/create/update/deals/".into(),
            fields: deal_fields("final_price", "total_units"),
            dragged: prices,
        },
        Endpoint {
            path: "/create-deal/".into(),
            fields: deal_fields("discounted_price", "units"),
            dragged: prices,
        },
        Endpoint {
            path: "/api/v1/users".into(),
            fields: user_fields(),
            dragged: &[],
        },
    ];
    for (seed, endpoint) in admin_bodies.iter().enumerate() {
        every_wrong_field_named(&app, &admin, endpoint, seed as u64, &json!({})).await;
    }
    let mut original_user = user_fields();
    original_user.push(field(
        "user_type",
        json!("customer"),
        vec![json!("robot"), json!(3)],
    ));
    let original_user = Endpoint {
        path: "/topkart/create/users/".into(),
        fields: original_user,
        dragged: &[],
    };
    every_wrong_field_named(&app, &admin, &original_user, 10, &json!({})).await;

    let mut orders = order_fields();
    orders[0].right = json!(deal_id);
    let order_bodies = [
        Endpoint {
            path: "/api/v1/orders".into(),
            fields: orders,
            dragged: &[],
        },
        Endpoint {
            path: "/topkart/place/order/".into(),
            fields: order_fields(),
            dragged: &[],
        },
        Endpoint {
            path: "/create-order/".into(),
            fields: vec![
                field("product_name", json!("Lamp"), vec![json!(3), json!([])]),
                field("price", json!("29.99"), vec![json!("2.005"), json!("x")]),
                field("buyer_name", json!("someone"), vec![json!(4), json!({})]),
                field("quantity", json!(1), vec![json!(0), json!("two")]),
            ],
            dragged: &[],
        },
    ];
    for (seed, endpoint) in order_bodies.iter().enumerate() {
        every_wrong_field_named(
            &app,
            &customer.token,
            endpoint,
            20 + seed as u64,
            &json!({}),
        )
        .await;
    }
    assert_eq!(counts(&app).await, before, "a refused body changes nothing");
    app.finish().await;
}

/// A wallet credit has one field: its wrong values are named, nothing is credited.
async fn a_credit_names_its_amount(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = app.customers(1).await.remove(0);
    for amount in [json!("2.005"), json!("x"), json!(-1), json!(0)] {
        let reply = app
            .post(
                &format!("/api/v1/users/{}/balance", customer.id),
                Some(&app.admin_token),
                json!({"amount": amount}),
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(reply.1["errors"]["amount"].is_array(), "{}", reply.1);
    }
    app.finish().await;
}

crate::on_both_stores!(
    every_body_names_every_wrong_field,
    a_credit_names_its_amount
);
