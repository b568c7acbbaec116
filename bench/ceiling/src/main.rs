//! `kitedesk-bench-ceiling [ADDR]`: answer every `POST /hooks/{source}`
//! with 202 and a short JSON body after reading the request body in full.
//! Prints `listening on <addr>` once bound (ADDR defaults to 127.0.0.1:0).

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::routing::post;

async fn hook(
    body: Bytes,
) -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    // Touch the body so the read cannot be optimised away.
    std::hint::black_box(body.len());
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"accepted"}"#,
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    // Same body limit as the daemon's largest configurable one (25 MB), so
    // 1 MB payloads are accepted.
    let app = Router::new()
        .route("/hooks/{source}", post(hook))
        .layer(axum::extract::DefaultBodyLimit::max(25 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
