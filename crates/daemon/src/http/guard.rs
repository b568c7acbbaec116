//! Local API protection: `Host` must be a loopback name (DNS rebinding),
//! a browser `Origin` must be this daemon (CSRF), and the API token must be
//! presented as a bearer header or the session cookie.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use crate::api::{Api, ApiError};

/// The cookie the web UI trades the token for.
pub(crate) const COOKIE: &str = "kitedesk_token";

pub(crate) async fn require_local_and_token(
    State(api): State<Api>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(e) = check(&api, &req) {
        return e.into_response();
    }
    next.run(req).await
}

fn check(api: &Api, req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "bad_host",
                "missing Host header",
            )
        })?;
    if !is_loopback_host(host) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "bad_host",
            format!("Host {host:?} is not this machine; the API answers only to localhost"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let same = origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "bad_origin",
                format!("cross-origin request from {origin:?} refused"),
            ));
        }
    }
    let presented = bearer(headers).or_else(|| cookie(headers));
    match presented {
        Some(t) if bool::from(t.as_bytes().ct_eq(api.token().as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "unauthorized",
            "the API token is wrong",
        )),
        None => Err(ApiError::unauthorized(
            "unauthorized",
            "send the API token as Authorization: Bearer <token> (see KITEDESK_API_TOKEN or <data-dir>/api-token)",
        )),
    }
}

fn bearer(h: &axum::http::HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn cookie(h: &axum::http::HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `localhost`, `127.0.0.1` (any 127/8), `[::1]`, with or without a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:7710",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:7710",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:7710",
            "localhost.evil.com",
            "10.0.0.1:7710",
            "[::2]:1",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
