//! The web UI routes: sign-in exchange, SPA fallback, static files, path
//! traversal, and `POST /api/test-events/{source}`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::harness::{GH_SECRET, HOST, Harness};

async fn raw(h: &Harness, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", HOST)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn token_in_the_url_becomes_an_httponly_cookie_and_is_removed() {
    let h = Harness::new().await;
    let token = h.api.token().to_string();
    let (status, headers, _) = raw(
        &h,
        get(&format!("/events/3?source=github&token={token}&q=x")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "/events/3?source=github&q=x",
        "same URL, token removed, other parameters kept"
    );
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("kitedesk_token={token};")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }

    // The cookie opens the API (the guard accepts it).
    let (status, _, _) = raw(
        &h,
        Request::get("/api/health")
            .header("host", HOST)
            .header("cookie", format!("kitedesk_token={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session cookie authorizes the API"
    );
}

#[tokio::test]
async fn a_wrong_token_sets_no_cookie_and_says_so() {
    let h = Harness::new().await;
    let (status, headers, _) = raw(&h, get("/?token=kd_wrong")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers.get(header::SET_COOKIE).is_none(),
        "no cookie for a wrong token"
    );
    assert_eq!(headers[header::LOCATION], "/?signin=failed");

    // A right token on a non-loopback Host (DNS rebinding) is not accepted either.
    let token = h.api.token().to_string();
    let (status, headers, _) = raw(
        &h,
        Request::get(format!("/?token={token}"))
            .header("host", "evil.example:7710")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers.get(header::SET_COOKIE).is_none(),
        "no cookie for a foreign Host"
    );
}

#[tokio::test]
async fn client_routes_get_the_app_and_api_paths_never_do() {
    let h = Harness::new().await;
    let (root_status, root_headers, root) = raw(&h, get("/")).await;
    if root_status == StatusCode::SERVICE_UNAVAILABLE {
        // Built without ui/dist: every UI path says how to build it.
        assert!(root.contains("make ui"), "{root}");
    } else {
        assert_eq!(root_status, StatusCode::OK);
        assert!(
            root.contains("<div id=\"app\">"),
            "index.html is served at /"
        );
        assert_eq!(root_headers[header::CACHE_CONTROL], "no-cache");
        assert!(root_headers.contains_key(header::CONTENT_SECURITY_POLICY));
        for route in [
            "/events/12",
            "/deliveries?status=dead",
            "/dashboard",
            "/secrets",
            "/settings",
        ] {
            let (status, headers, body) = raw(&h, get(route)).await;
            assert_eq!(status, StatusCode::OK, "{route}");
            assert_eq!(
                headers[header::CONTENT_TYPE],
                "text/html; charset=utf-8",
                "{route}"
            );
            assert_eq!(body, root, "{route} falls back to index.html");
        }
        // A hashed asset named by index.html: long-lived cache, right type.
        let js = root
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .expect("index.html references its script");
        let (status, headers, body) = raw(&h, get(js)).await;
        assert_eq!(status, StatusCode::OK, "{js}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(!body.is_empty());
        let (status, _, _) = raw(&h, get("/assets/missing-0000.js")).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a missing asset is a 404, not the app"
        );
    }

    let (status, _, body) = raw(&h, get("/api/nope")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the API guard answers, not the app"
    );
    assert!(body.contains("\"code\""), "{body}");
    for path in ["/hooks/github/extra", "/health/x"] {
        let (status, _, body) = raw(&h, get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            body.contains("\"code\""),
            "{path} answers JSON, not the app: {body}"
        );
    }
}

#[tokio::test]
async fn no_path_traversal() {
    let h = Harness::new().await;
    for path in [
        "/../Cargo.toml",
        "/assets/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2fCargo.toml",
        "/..%5c..%5cCargo.toml",
    ] {
        let (status, _, body) = raw(&h, get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} must be refused");
        assert!(!body.contains("root:"), "{path} leaked a file");
        assert!(!body.contains("[workspace]"), "{path} leaked a file");
    }
}

#[tokio::test]
async fn test_events_go_through_the_ingress_signed() {
    let h = Harness::new().await;
    let before = h.count().await;
    let (status, body) = h
        .send(
            Request::post("/api/test-events/github")
                .header("host", HOST)
                .header("authorization", format!("Bearer {}", h.api.token()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(
        body["verified"], true,
        "signed with the source's secret ({GH_SECRET}), so it verifies"
    );
    assert_eq!(h.count().await, before + 1);
    let id = body["id"].as_i64().unwrap();
    let (_, ev) = h.get(&format!("/api/events/{id}")).await;
    assert_eq!(ev["type"], "com.github.push");

    // Behind the guard like the rest of the API.
    let (status, _) = h
        .send(
            Request::post("/api/test-events/github")
                .header("host", HOST)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = h
        .send(
            Request::post("/api/test-events/nope")
                .header("host", HOST)
                .header("authorization", format!("Bearer {}", h.api.token()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_source");
}
