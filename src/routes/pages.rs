//! The web pages the engine serves itself, their assets embedded in the binary (no CDN, no
//! download at build time): the API browser at `/docs` (Swagger UI, vendored in
//! `assets/swagger-ui/`) and the admin console at `/admin` (`assets/admin/`).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "docs",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../assets/docs.html"),
    },
    Asset {
        path: "docs/docs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/docs.js"),
    },
    Asset {
        path: "docs/swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        path: "docs/swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        path: "admin",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../assets/admin/index.html"),
    },
    Asset {
        path: "admin/console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/admin/console.js"),
    },
    Asset {
        path: "admin/console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/admin/console.css"),
    },
];

/// The console loads only its own files and talks only to this engine.
const CONSOLE_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Registers every page and asset (with and without the trailing slash for the pages).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for asset in ASSETS {
        let serve = move || async move { serve(asset) };
        cfg.route(&format!("/{}", asset.path), web::get().to(serve));
        if !asset.path.contains('/') {
            cfg.route(&format!("/{}/", asset.path), web::get().to(serve));
        }
    }
}

fn serve(asset: &'static Asset) -> Result<HttpResponse, ApiError> {
    let mut response = HttpResponse::Ok();
    response
        .content_type(asset.content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The pages change with the engine's version: cached briefly, revalidated after.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    if asset.path.starts_with("admin") {
        response.insert_header((header::CONTENT_SECURITY_POLICY, CONSOLE_POLICY));
    }
    Ok(response.body(asset.body))
}
