//! The web UI: the built `ui/dist` embedded at compile time (see
//! `build.rs`), served with SPA fallback, plus the `?token=` sign-in
//! exchange and `POST /api/test-events/{source}` for the first-run page.
//!
//! * `/assets/*` are content-hashed by Vite: cached for a year, immutable.
//!   Everything else (`index.html`) is `no-cache` so a new build shows at once.
//! * Paths are looked up in the embedded table, never on disk, and any path
//!   with a `..` segment, a backslash or a NUL is refused outright
//!   ([`kitedesk_core::static_path`]).
//! * Paths under `/api`, `/hooks` and `/health` never fall back to the UI.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use kitedesk_core::static_path::static_path;

use super::guard::{COOKIE, is_loopback_host};
use crate::api::{Api, ApiError};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// Served in place of the UI when the binary was built without `ui/dist`.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Kite Desk</title>\
<style>body{font:15px system-ui;max-width:44rem;margin:3rem auto;padding:0 1rem}code{background:#8882;padding:.1rem .3rem}</style>\
<h1>Kite Desk is running, but its web UI was not built</h1>\
<p>This binary was compiled before <code>ui/dist</code> existed. Run <code>make ui</code> \
(or <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</code>), then rebuild <code>kitedesk</code>.</p>\
<p>The JSON API under <code>/api</code> and the ingress under <code>/hooks</code> work as usual.</p>";

/// Defense in depth on top of never rendering payloads as HTML: no inline
/// scripts, no foreign origins, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Routes that belong behind the API guard (merged into the `/api` router).
pub(crate) fn api_routes() -> Router<Api> {
    Router::new().route("/test-events/{source}", post(test_event))
}

#[derive(Debug, serde::Deserialize)]
struct TestEventQuery {
    event: Option<String>,
}

async fn test_event(
    State(api): State<Api>,
    Path(source): Path<String>,
    Query(q): Query<TestEventQuery>,
) -> Result<Response, ApiError> {
    let outcome = api.send_test_event(&source, q.event.as_deref()).await?;
    let status = if outcome.status == "accepted" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// The router's fallback: the UI for every other GET.
pub(crate) async fn fallback(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    if ["/api", "/hooks", "/health"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        return ApiError::not_found("no_route", format!("nothing at {path}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the UI answers GET only",
        )
        .into_response();
    }
    if let Some(resp) = sign_in(&api, &uri, &headers) {
        return resp;
    }
    let Some(rel) = static_path(path) else {
        return ApiError::not_found("not_found", "no such file").into_response();
    };
    if embedded::ASSETS.is_empty() {
        return page(StatusCode::SERVICE_UNAVAILABLE, NOT_BUILT.as_bytes());
    }
    if let Some(body) = asset(&rel) {
        return file(&rel, body);
    }
    // Files that look like build output (`/assets/…`, `/x.js`) are a 404;
    // anything else is a client route for the SPA.
    let last = rel.rsplit('/').next().unwrap_or("");
    if rel.starts_with("assets/") || last.contains('.') {
        return ApiError::not_found("not_found", format!("no file {path}")).into_response();
    }
    match asset("index.html") {
        Some(body) => page(StatusCode::OK, body),
        None => page(StatusCode::SERVICE_UNAVAILABLE, NOT_BUILT.as_bytes()),
    }
}

fn asset(rel: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .binary_search_by(|(p, _)| (*p).cmp(rel))
        .ok()
        .map(|i| embedded::ASSETS[i].1)
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file(rel: &str, body: &'static [u8]) -> Response {
    if rel == "index.html" {
        return page(StatusCode::OK, body);
    }
    let cache = if rel.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, content_type(rel)),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn page(status: StatusCode, body: &'static [u8]) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `?token=T`: a valid token becomes the session cookie; either way the
/// browser is sent (303) to the same URL without the token, so it does not
/// linger in the address bar or the history. A wrong token adds
/// `signin=failed` so the UI can say why it is not signed in.
fn sign_in(api: &Api, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let query = uri.query()?;
    let token = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .ok()?
        .0
        .into_iter()
        .find(|(k, _)| k == "token")?
        .1;
    let mut rest: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("token"))
        .collect();
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_loopback_host);
    let valid = host_ok && {
        use subtle::ConstantTimeEq as _;
        bool::from(token.trim().as_bytes().ct_eq(api.token().as_bytes()))
    };
    if !valid {
        rest.push("signin=failed");
    }
    let location = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    let mut resp = (
        StatusCode::SEE_OTHER,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    if valid {
        // A year: the token itself is long-lived; re-signing in every day
        // would only train people to paste it around.
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000",
            api.token()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("assets/a-1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/a-1.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
