//! What the generated OpenAPI document is given after utoipa built it: the bearer scheme, a
//! description for every response and the server, the original paths' bodies as they are
//! accepted, and the live stock events' data schema.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The stream's `data` is described as JSON text whose schema is `StockEvent`
/// (`contentSchema`), so a client generator knows what each event carries.
pub(super) struct StockEventData;

impl Modify for StockEventData {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::{Ref, RefOr};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(event))) =
            components.schemas.get_mut("StockStreamEvent")
        {
            if let Some(RefOr::T(Schema::Object(data))) = event.properties.get_mut("data") {
                data.content_schema =
                    Some(Box::new(RefOr::Ref(Ref::from_schema_name("StockEvent"))));
            }
        }
    }
}

pub(super) struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every response gets a description (OpenAPI 3 requires one; an operation that gave none gets
/// its status's meaning in this API), and the document names its server: the engine that
/// serves it, whatever its address.
pub(super) struct Described;

impl Modify for Described {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![utoipa::openapi::server::Server::new("/")]);
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        if response.description.is_empty() {
                            response.description = meaning(status).to_owned();
                        }
                    }
                }
            }
        }
    }
}

/// The original Topkart paths take v1's bodies with the original's two differences
/// (docs/API.md): a deal's `expires_at` is optional there (12 hours from its start), and a
/// user's `user_type` is required. Their bodies are v1's schemas so changed, under names of
/// their own, so the document describes what each path accepts.
pub(super) struct OriginalBodies;

impl Modify for OriginalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let deal = |required: &mut Vec<String>| required.retain(|field| field != "expires_at");
        let user = |required: &mut Vec<String>| required.push("user_type".to_owned());
        original_body(
            openapi,
            "/topkart/create/update/deals/",
            "CreateDeal",
            "OriginalCreateDeal",
            deal,
        );
        original_body(
            openapi,
            "/topkart/create/users/",
            "CreateUser",
            "OriginalCreateUser",
            user,
        );
    }
}

/// Gives `path`'s POST body a copy of the `schema` component, its required fields changed, as
/// the component `name`. `tests/api/openapi.rs` checks the result.
fn original_body(
    openapi: &mut utoipa::openapi::OpenApi,
    path: &str,
    schema: &str,
    name: &str,
    change: impl Fn(&mut Vec<String>),
) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::{Ref, RefOr};
    let Some(schemas) = openapi
        .components
        .as_mut()
        .map(|components| &mut components.schemas)
    else {
        return;
    };
    let Some(RefOr::T(Schema::Object(mut object))) = schemas.get(schema).cloned() else {
        return;
    };
    change(&mut object.required);
    schemas.insert(name.to_owned(), RefOr::T(Schema::Object(object)));
    let body = openapi
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut());
    if let Some(RefOr::T(body)) = body {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name(name)));
            }
        }
    }
}

/// What a status means in this API, for responses documented without a description.
fn meaning(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "400" => "Invalid input: VALIDATION_ERROR names every wrong field; MALFORMED_JSON",
        "401" => "Not signed in, or the token is invalid or expired (WWW-Authenticate says how)",
        "403" => "Signed in, but not allowed",
        "404" => "No such resource",
        "405" => "Method not allowed (Allow lists the methods)",
        "409" => "Refused by the state of the deal or order; the code says why",
        "413" => "The request body is too large",
        "422" => "IDEMPOTENCY_MISMATCH: the key was used with another request",
        "429" => "RATE_LIMITED, with Retry-After",
        "503" => "OVERLOADED, STORE_UNAVAILABLE or DEAL_UNAVAILABLE, with Retry-After",
        "504" => {
            "OUTCOME_UNKNOWN: the store's answer was lost and it did not say in time whether the change was made, or the deal's owner stopped answering (cluster mode); read it back before retrying. With Retry-After"
        }
        _ => "See the error envelope's code",
    }
}
