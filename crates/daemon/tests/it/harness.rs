use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use kitedesk_core::Manifest;
use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_daemon::{Api, Daemon, DaemonConfig};
use tower::ServiceExt as _;

pub const GH_SECRET: &str = "gh-test-secret-0123456789";
pub const STRIPE_SECRET: &str = "whsec_stripe_test_secret";
pub const HOST: &str = "127.0.0.1:7710";

pub const MANIFEST: &str = r#"{
  "sources": [
    {"name": "github", "type": "github", "verify": {"secretEnv": ["GH_NEW", "GH_OLD"]}},
    {"name": "stripe", "type": "stripe", "verify": {"secretEnv": "STRIPE_SECRET"}},
    {"name": "kiket", "type": "kiket", "verify": {"secretEnv": "KIKET_SECRET"}},
    {"name": "myapp", "type": "generic", "verify": {"allowUnsigned": true}}
  ],
  "ingress": {"maxBodyBytes": 65536}
}"#;

pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub api: Api,
    pub app: Router,
}

pub fn config(dir: &std::path::Path, manifest: &str, env: &[(&str, &str)]) -> DaemonConfig {
    let mut c = DaemonConfig::new(
        dir.to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Manifest::from_json(manifest.as_bytes()).unwrap(),
    );
    c.env_override = Some(
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    );
    // Never the developer's own keychain (a locked one could prompt).
    c.keychain = Some(std::sync::Arc::new(kitedesk_secrets::MemoryKeychain::new()));
    c
}

pub fn default_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GH_NEW", GH_SECRET),
        ("STRIPE_SECRET", STRIPE_SECRET),
        ("KIKET_SECRET", "kiket-secret"),
    ]
}

impl Harness {
    pub async fn new() -> Harness {
        Self::with(MANIFEST, &default_env()).await
    }

    pub async fn with(manifest: &str, env: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = HOST.parse().unwrap();
        let (api, app) = Daemon::app(config(dir.path(), manifest, env), addr)
            .await
            .unwrap();
        Harness {
            _dir: dir,
            api,
            app,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    /// An authorized API GET.
    pub async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        self.send(
            Request::get(path)
                .header("host", HOST)
                .header("authorization", format!("Bearer {}", self.api.token()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn post_hook(
        &self,
        source: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (StatusCode, serde_json::Value) {
        let mut b = Request::post(format!("/hooks/{source}")).header("host", HOST);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        self.send(b.body(Body::from(body.to_vec())).unwrap()).await
    }

    pub async fn count(&self) -> i64 {
        self.api.store().count().await.unwrap()
    }
}

/// A real GitHub push payload from @octokit/webhooks-examples.
pub fn github_push() -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/fixtures/github");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("push"))
        .collect();
    files.sort();
    std::fs::read(&files[0]).unwrap()
}

/// Headers GitHub sends, signed with `secret`.
pub fn github_headers(body: &[u8], delivery: &str, secret: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        ("x-github-event", "push".to_string()),
        ("x-github-delivery", delivery.to_string()),
    ];
    for (k, v) in verify::sign(
        Scheme::Github,
        &Secret::new(secret),
        body,
        chrono::Utc::now(),
        delivery,
    ) {
        h.push((k, v));
    }
    h
}
