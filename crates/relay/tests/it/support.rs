use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use kite_protocol::{ClientMessage, ServerMessage};
use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_relay::{Relay, RelayConfig, RunningRelay, TokenKind, admin};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message;

pub const GH_SECRET: &str = "relay-test-github-secret";
/// Generous bound for anything a test waits for; never a sleep.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub relay: RunningRelay,
    pub team: String,
    pub hook: String,
    pub api: String,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut RelayConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let team = admin::create_team(dir.path(), "acme").await.unwrap().id;
    let hook = admin::create_token(dir.path(), &team, TokenKind::Hook, &[])
        .await
        .unwrap();
    let api = admin::create_token(dir.path(), &team, TokenKind::Api, &[])
        .await
        .unwrap();
    let relay = Relay::start(config(dir.path(), f)).await.unwrap();
    Env {
        dir,
        relay,
        team,
        hook,
        api,
        http: reqwest::Client::new(),
    }
}

pub fn config(dir: &std::path::Path, f: impl FnOnce(&mut RelayConfig)) -> RelayConfig {
    let mut cfg = RelayConfig::new(dir);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.token_cache_ttl = Duration::ZERO;
    cfg.env_override = Some(HashMap::from([(
        "KITEDESK_GITHUB_SECRET".to_string(),
        GH_SECRET.to_string(),
    )]));
    f(&mut cfg);
    cfg
}

impl Env {
    /// POST a plain JSON body to a generic source with the hook token in the path.
    pub async fn post_demo(
        &self,
        source: &str,
        body: &serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let url = format!("{}/{}", self.relay.hook_url(&self.team, source), self.hook);
        self.post(
            &url,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self.http.post(url).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }

    /// A signed GitHub push (delivery id `delivery`).
    pub async fn post_github(
        &self,
        delivery: &str,
        secret: &str,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let body = github_push();
        let sig = verify::sign(
            Scheme::Github,
            &Secret::new(secret),
            &body,
            chrono::Utc::now(),
            delivery,
        );
        let mut url = self.relay.hook_url(&self.team, "github");
        if let Some(t) = token {
            url = format!("{url}/{t}");
        }
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", delivery),
        ];
        for (k, v) in &sig {
            headers.push((k, v.as_str()));
        }
        self.post(&url, &headers, body).await
    }

    pub async fn connect(
        &self,
        scopes: &[&str],
        client_id: Option<&str>,
    ) -> (Client, ServerMessage) {
        let mut c = Client::open(&self.relay.ws_url()).await;
        c.send(&ClientMessage::Connect {
            version: 1,
            token: self.api.clone(),
            team_id: self.team.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            client_id: client_id.map(str::to_string),
        })
        .await;
        let first = c.next().await;
        (c, first)
    }
}

pub fn github_push() -> Vec<u8> {
    serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "acme/api", "html_url": "https://github.com/acme/api", "name": "api", "owner": {"login": "acme"}},
        "pusher": {"name": "alice"},
        "sender": {"login": "alice"},
        "commits": [{"id": "1111111111111111111111111111111111111111", "message": "fix", "added": [], "removed": [], "modified": ["src/main.rs"]}],
        "head_commit": {"id": "1111111111111111111111111111111111111111", "message": "fix"}
    })
    .to_string()
    .into_bytes()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Client {
    pub ws: Ws,
}

impl Client {
    pub async fn open(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client { ws }
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(serde_json::to_string(msg).unwrap()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn ack(&mut self, seq: u64) {
        self.send(&ClientMessage::Ack { seq }).await;
    }

    /// The next raw message (pings included), or None at the end.
    pub async fn raw(&mut self) -> Option<Message> {
        match tokio::time::timeout(WAIT, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(_))) | Ok(None) => None,
            Err(_) => panic!("no frame from the relay within {WAIT:?}"),
        }
    }

    /// The next protocol frame, skipping pings and pongs.
    pub async fn next(&mut self) -> ServerMessage {
        loop {
            match self.raw().await {
                Some(Message::Text(t)) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next `count` event frames, as (seq, CloudEvent).
    pub async fn events(&mut self, count: usize) -> Vec<(u64, serde_json::Value)> {
        let mut out = Vec::new();
        while out.len() < count {
            match self.next().await {
                ServerMessage::Event { seq, event } => out.push((seq, event)),
                other => panic!("expected an event, got {other:?}"),
            }
        }
        out
    }

    /// Wait for the close frame; returns its code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.raw().await {
                Some(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                None => return None,
                Some(_) => continue,
            }
        }
    }
}
