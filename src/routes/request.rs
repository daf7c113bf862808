//! What a request carries besides its body: ids in the path, the client's address, and pagination
//! (`?page=1&page_size=12`, default 12, at most 100 → `{count, next, previous, results}`).

use actix_web::HttpRequest;
use serde::Deserialize;

use crate::error::{ApiError, FieldErrors};
use crate::wire::Page;

pub const PAGE_SIZE_DEFAULT: i64 = 12;
pub const PAGE_SIZE_MAX: i64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub page_size: i64,
}

impl PageRequest {
    /// Reads and checks `page` and `page_size` from the query string.
    pub fn from_query(query: &PageQuery) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::new();
        let page = match query.page.as_deref().map(str::parse::<i64>) {
            None => 1,
            Some(Ok(page)) if page >= 1 => page,
            Some(_) => {
                errors.insert("page".into(), vec!["must be a whole number from 1".into()]);
                1
            }
        };
        let page_size = match query.page_size.as_deref().map(str::parse::<i64>) {
            None => PAGE_SIZE_DEFAULT,
            Some(Ok(size)) if (1..=PAGE_SIZE_MAX).contains(&size) => size,
            Some(_) => {
                errors.insert(
                    "page_size".into(),
                    vec![format!("must be a whole number from 1 to {PAGE_SIZE_MAX}")],
                );
                PAGE_SIZE_DEFAULT
            }
        };
        if errors.is_empty() {
            Ok(Self { page, page_size })
        } else {
            Err(ApiError::validation(errors))
        }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.page_size)
    }

    /// Wraps one page of results with links to its neighbours.
    pub fn wrap<T>(&self, req: &HttpRequest, count: i64, results: Vec<T>) -> Page<T> {
        let link = |page: i64| {
            let info = req.connection_info();
            let mut pairs: Vec<(String, String)> = url_pairs(req.query_string())
                .into_iter()
                .filter(|(key, _)| key != "page")
                .collect();
            pairs.push(("page".into(), page.to_string()));
            let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{}://{}{}?{}",
                info.scheme(),
                info.host(),
                req.path(),
                query.join("&")
            )
        };
        let next = (self.offset().saturating_add(self.page_size) < count)
            .then(|| link(self.page.saturating_add(1)));
        let previous = (self.page > 1).then(|| link(self.page - 1));
        Page {
            count,
            next,
            previous,
            results,
        }
    }
}

/// The pagination part of a query string (kept as text so a bad value is our 400, not serde's).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

/// The query string's pairs, still percent-encoded (they are only copied into links).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// Parses an id from the path; a non-integer id names nothing that exists.
pub fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(what))
}

/// The client's address as the socket sees it (forwarding headers are not trusted).
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |address| address.ip().to_string())
}
