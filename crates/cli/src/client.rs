//! A small client for the daemon API.

use anyhow::{Context as _, bail};
use kitedesk_daemon::RuntimeInfo;

use crate::Target;

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: String,
}

impl Client {
    /// Find the daemon (flag, env, or `daemon.json`) and its token
    /// (`KITEDESK_API_TOKEN` or `<data-dir>/api-token`). `None` when no
    /// daemon has published its address.
    pub fn locate(t: &Target) -> anyhow::Result<Option<Client>> {
        let dir = t.data_dir();
        let base = match &t.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => match RuntimeInfo::read(&dir) {
                Some(info) => info.url,
                None => return Ok(None),
            },
        };
        let token = match std::env::var("KITEDESK_API_TOKEN") {
            Ok(t) => t.trim().to_string(),
            Err(_) => std::fs::read_to_string(dir.join("api-token"))
                .with_context(|| {
                    format!(
                        "no API token: set KITEDESK_API_TOKEN or run the daemon with --data-dir {}",
                        dir.display()
                    )
                })?
                .trim()
                .to_string(),
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Some(Client { http, base, token }))
    }

    pub async fn get_json(&self, path_and_query: &str) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{}", self.base, path_and_query);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            bail!(
                "{} ({}): {}",
                body["code"].as_str().unwrap_or("error"),
                status.as_u16(),
                body["message"].as_str().unwrap_or("request failed")
            );
        }
        Ok(body)
    }

    /// A request to `path` on the daemon, with the API token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}
