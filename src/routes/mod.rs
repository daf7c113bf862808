//! The HTTP routes: `/api/v1/…`, the operations endpoints, and the original Topkart paths.

pub mod access;
pub mod auth;
pub mod cluster;
pub mod compat;
pub mod deals;
pub mod events;
pub mod forward;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod pages;
pub mod request;
pub mod statistics;
pub mod top_kart;
pub mod tracking;
pub mod users;
pub mod waitlist;

use actix_web::{HttpRequest, web};

use crate::error::{ApiError, ErrorCode};

/// The routes. One resource per path with its methods, and the order path first: actix tries
/// resources in registration order, and each dynamic path it passes costs a regex match
/// (measured on the order path's profile).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/livez", "GET").route(web::get().to(ops::livez)))
        .service(resource("/readyz", "GET").route(web::get().to(ops::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(ops::metrics)))
        .service(
            web::scope("/api/v1")
                .service(
                    resource("/orders", "POST, GET")
                        .route(web::post().to(orders::place))
                        .route(web::get().to(orders::list)),
                )
                // Before `/orders/{id}`, which would take `statistics` for an id.
                .service(
                    resource("/orders/statistics", "GET")
                        .route(web::get().to(statistics::statistics)),
                )
                .service(
                    resource("/deals", "GET, POST")
                        .route(web::get().to(deals::list))
                        .route(web::post().to(deals::create)),
                )
                .service(
                    resource("/deals/{id}", "GET, PUT, PATCH")
                        .route(web::get().to(deals::get))
                        .route(web::put().to(deals::update))
                        .route(web::patch().to(deals::update)),
                )
                .service(resource("/deals/{id}/events", "GET").route(web::get().to(events::stream)))
                .service(
                    resource("/deals/{id}/waitlist", "POST").route(web::post().to(waitlist::join)),
                )
                .service(
                    resource("/deals/{id}/waitlist/me", "GET, DELETE")
                        .route(web::get().to(waitlist::mine))
                        .route(web::delete().to(waitlist::leave)),
                )
                .service(
                    resource("/orders/{id}", "GET, PATCH")
                        .route(web::get().to(orders::get))
                        .route(web::patch().to(orders::change)),
                )
                .service(
                    resource("/orders/{id}/cancel", "POST").route(web::post().to(orders::cancel)),
                )
                .service(
                    resource("/orders/{id}/status", "PATCH")
                        .route(web::patch().to(orders::set_status)),
                )
                .service(resource("/deals/{id}/close", "POST").route(web::post().to(deals::close)))
                .service(resource("/deals/{id}/open", "POST").route(web::post().to(deals::open)))
                .service(
                    resource("/users", "POST, GET")
                        .route(web::post().to(users::create))
                        .route(web::get().to(users::list)),
                )
                .service(
                    resource("/users/{id}/balance", "POST").route(web::post().to(users::credit)),
                )
                .service(resource("/orders/{id}/pay", "POST").route(web::post().to(orders::pay)))
                .service(
                    resource("/orders/{id}/tracking", "POST, GET")
                        .route(web::post().to(tracking::add))
                        .route(web::get().to(tracking::list)),
                )
                .service(resource("/users/me", "GET").route(web::get().to(users::me)))
                .service(resource("/auth/login", "POST").route(web::post().to(auth::login)))
                .service(resource("/auth/refresh", "POST").route(web::post().to(auth::refresh)))
                .service(resource("/openapi.json", "GET").route(web::get().to(openapi::document)))
                .service(resource("/cluster", "GET").route(web::get().to(cluster::view))),
        )
        .service(compat_scope())
        .configure(top_kart_paths)
        .configure(pages::configure);
}

/// The original Topkart paths, each served with and without its trailing slash (old clients
/// send both; a 404 for the missing slash helped nobody).
fn compat_scope() -> actix_web::Scope {
    let mut scope = web::scope("/topkart");
    let paths: [(
        &str,
        &'static str,
        fn(&str, &'static str) -> actix_web::Resource,
    ); 6] = [
        ("/create/update/deals/", "POST, PUT", |path, allow| {
            resource(path, allow)
                .route(web::post().to(compat::create_deal))
                .route(web::put().to(compat::update_deal))
        }),
        ("/create/users/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(compat::create_user))
        }),
        ("/update/order_status/", "PUT", |path, allow| {
            resource(path, allow).route(web::put().to(compat::update_order_status))
        }),
        ("/get/active/deals/", "GET", |path, allow| {
            resource(path, allow).route(web::get().to(compat::active_deals))
        }),
        ("/place/order/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(compat::place_order))
        }),
        ("/check/order_status/", "GET", |path, allow| {
            resource(path, allow).route(web::get().to(compat::check_order_status))
        }),
    ];
    for (path, allow, make) in paths {
        scope = scope
            .service(make(path, allow))
            .service(make(path.trim_end_matches('/'), allow));
    }
    scope
}

/// The "Top-Kart" paths (deals named by product name), each with and without its slash.
fn top_kart_paths(cfg: &mut web::ServiceConfig) {
    let paths: [(
        &str,
        &'static str,
        fn(&str, &'static str) -> actix_web::Resource,
    ); 5] = [
        ("/create-deal/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(top_kart::create_deal))
        }),
        ("/fetch-deals/", "GET", |path, allow| {
            // The same listing as the original paths' (and v1's).
            resource(path, allow).route(web::get().to(compat::active_deals))
        }),
        ("/create-order/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(top_kart::create_order))
        }),
        ("/update-order/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(top_kart::update_order))
        }),
        ("/track-status/", "POST", |path, allow| {
            resource(path, allow).route(web::post().to(top_kart::track_status))
        }),
    ];
    for (path, allow, make) in paths {
        cfg.service(make(path, allow))
            .service(make(path.trim_end_matches('/'), allow));
    }
}

/// A resource whose unsupported methods answer 405 in the envelope, with the `Allow` header
/// listing `allow` (RFC 9110 requires it).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        let refusal = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on {}", req.method(), req.path()),
        );
        let mut response = actix_web::ResponseError::error_response(&refusal);
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    }))
}

/// Unknown paths and methods, in the envelope.
pub async fn fallback(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
