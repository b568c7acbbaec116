//! The HTTP proxy sink: POST an event to a local (or any) server.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kitedesk_core::event::format_time;
use kitedesk_core::verify::{self, Scheme, Secret};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};

use crate::SinkError;
use crate::attempt::{Attempt, CAPTURE_LIMIT, CaptureBuf, Captured, Failure};
use crate::delivery::Delivery;

/// Default request timeout: Kiket and GitHub give a webhook receiver 10 s,
/// so a local app slower than that would fail in production too.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers about the original connection, not the payload: forwarding them
/// would describe the wrong request (RFC 9110 §7.6.1 hop-by-hop headers, plus
/// `host` and `content-length`, which the client sets for the new request).
/// `accept-encoding` and `expect` describe what the original *sender* could
/// handle; we are the client now. Credentials never leave (the ingress
/// already drops them; this is the second fence).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "expect",
    "authorization",
    "proxy-authorization",
    "cookie",
];

/// Every signature header the schemes we know use. Re-signing removes all of
/// them: a provider signature made with the provider's secret can only fail
/// against the local secret (GitHub's legacy SHA-1 `x-hub-signature` too).
const SIGNATURE_HEADERS: &[&str] = &[
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-kiket-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Re-sign forwarded requests with a local secret, so a local app verifying
/// with its development secret accepts them.
#[derive(Debug, Clone)]
pub struct Resign {
    pub scheme: Scheme,
    pub secret: Secret,
}

/// Settings for an [`HttpSink`].
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    pub target: String,
    /// Send the structured CloudEvent (`application/cloudevents+json`)
    /// instead of the original payload.
    pub envelope: bool,
    pub resign: Option<Resign>,
    /// Covers connecting, sending and reading the (capped) response.
    pub timeout: Duration,
}

impl HttpSinkConfig {
    /// Forward the original payload to `target` with the default timeout.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            envelope: false,
            resign: None,
            timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// POSTs events to one URL. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct HttpSink {
    config: HttpSinkConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl HttpSink {
    /// Check the target (an absolute `http` or `https` URL) and build the
    /// client.
    pub fn new(config: HttpSinkConfig) -> Result<Self, SinkError> {
        let invalid = |problem: &str| SinkError::InvalidTarget {
            target: config.target.clone(),
            problem: problem.to_string(),
        };
        let url = reqwest::Url::parse(&config.target).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("only http and https URLs can be forwarded to"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        let client = reqwest::Client::builder()
            // A redirect is reported, not followed: the payload (and its
            // signature) was meant for the configured URL only.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| SinkError::Client {
                target: config.target.clone(),
                source,
            })?;
        Ok(Self {
            config,
            url,
            client,
        })
    }

    pub fn target(&self) -> &str {
        &self.config.target
    }

    pub fn config(&self) -> &HttpSinkConfig {
        &self.config
    }

    pub async fn deliver(&self, delivery: &Delivery) -> Attempt {
        let start = Instant::now();
        let (body, headers) = match self.request_parts(delivery) {
            Ok(parts) => parts,
            Err(failure) => return Attempt::failed(failure, start.elapsed()),
        };
        let request = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body);
        // One deadline for connect, send and the capped body read.
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_elapsed) => {
                return Attempt::failed(Failure::Timeout(self.config.timeout), start.elapsed());
            }
            Ok(Err(e)) => return Attempt::failed(classify(e), start.elapsed()),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = read_capped(response, deadline).await;
        let latency = start.elapsed();
        let mut attempt = if (200..300).contains(&status) {
            Attempt::delivered(latency)
        } else if (300..400).contains(&status) {
            Attempt::failed(Failure::Redirect { status, location }, latency)
        } else {
            Attempt::failed(Failure::Status(status), latency)
        };
        attempt.status = Some(status);
        attempt.body = Some(body);
        attempt
    }

    /// The body and headers to send, per the Forwarding contract.
    fn request_parts(&self, d: &Delivery) -> Result<(Bytes, HeaderMap), Failure> {
        let body = match self.config.envelope {
            true => Bytes::from(d.cloudevent_json()?),
            false => d.payload.clone(),
        };
        let mut h = forwarded_headers(&d.headers);
        if self.config.envelope {
            h.remove(CONTENT_TYPE);
            // Structured mode carries the attributes in the body; binary-mode
            // `ce-` headers from the original request would contradict it.
            let ce: Vec<HeaderName> = h
                .keys()
                .filter(|n| n.as_str().starts_with("ce-"))
                .cloned()
                .collect();
            for n in ce {
                h.remove(n);
            }
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/cloudevents+json"),
            );
        } else if !h.contains_key(CONTENT_TYPE) {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }

        let ev = &d.event;
        set(&mut h, "x-kite-source", d.source_name());
        set(&mut h, "x-kite-event-id", &ev.id);
        set(&mut h, "x-kite-event-type", &ev.ty);
        if let Some(team) = &d.team_id {
            set(&mut h, "x-kite-team-id", team);
        }
        if !self.config.envelope {
            // The original payload as the body plus these headers is a
            // CloudEvents binary-mode message, as the Kite CLI sends it.
            set(&mut h, "ce-specversion", "1.0");
            set(&mut h, "ce-id", &ev.id);
            set(&mut h, "ce-source", &ev.source);
            set(&mut h, "ce-type", &ev.ty);
            set(&mut h, "ce-time", &format_time(ev.time));
        }

        if let Some(resign) = &self.config.resign {
            // Standard Webhooks signs the message id: keep the provider's so
            // the receiver's idempotency key does not change.
            let msg_id = d.headers.get("webhook-id").unwrap_or(&ev.id).to_string();
            for name in SIGNATURE_HEADERS {
                h.remove(*name);
            }
            let now = chrono::Utc::now();
            for (name, value) in verify::sign(resign.scheme, &resign.secret, &body, now, &msg_id) {
                set(&mut h, name, &value);
            }
        }
        Ok((body, h))
    }
}

/// The original provider headers that may be forwarded, in order, repeats
/// kept. Also drops whatever the original `Connection` header named.
fn forwarded_headers(original: &kitedesk_core::Headers) -> HeaderMap {
    let named_by_connection: Vec<String> = original
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in original.iter() {
        let lower = name.to_ascii_lowercase();
        if NOT_FORWARDED.contains(&lower.as_str()) || named_by_connection.contains(&lower) {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                out.append(n, v);
            }
            _ => tracing::warn!(header = %name, "original header is not valid HTTP; not forwarded"),
        }
    }
    out
}

/// Set (replace) one header. Values come from event fields; one that is not
/// a valid header value (a control character) is left out, never sent
/// mangled. `from_bytes`, not `from_static`: the signing names are mixed
/// case (`X-Hub-Signature-256`) and `from_static` panics on those.
fn set(h: &mut HeaderMap, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(n), Ok(v)) => {
            h.insert(n, v);
        }
        _ => tracing::warn!(header = name, "not a valid header; not sent"),
    }
}

/// Read the start of the response body. Once the status has arrived it
/// decides the outcome: a body that is huge, endless or slower than the
/// deadline is cut (and marked truncated), never waited for. Stopping early
/// drops the connection.
async fn read_capped(mut response: reqwest::Response, deadline: tokio::time::Instant) -> Captured {
    let mut body = CaptureBuf::new(CAPTURE_LIMIT);
    // Reads one chunk past the limit, to tell "exactly the limit" from "more".
    while !body.is_truncated() {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.push(&chunk),
            Ok(Ok(None)) => break,
            Ok(Err(_)) | Err(_) => {
                body.mark_truncated();
                break;
            }
        }
    }
    body.finish()
}

fn classify(e: reqwest::Error) -> Failure {
    let message = error_chain(&e);
    if e.is_connect() {
        Failure::Connect(message)
    } else if e.is_timeout() {
        Failure::Request(format!("timed out: {message}"))
    } else {
        Failure::Request(message)
    }
}

/// reqwest's top-level message is generic ("error sending request"); the
/// cause ("Connection refused") is further down the chain.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_not_forwarded() {
        let original: kitedesk_core::Headers = [
            ("Host", "hooks.example"),
            ("Content-Length", "999"),
            ("Connection", "keep-alive, X-Tunnel-Hint"),
            ("X-Tunnel-Hint", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-GitHub-Event", "push"),
            ("Via", "1.1 a"),
            ("via", "1.1 b"),
        ]
        .into_iter()
        .collect();
        let h = forwarded_headers(&original);
        let names: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-github-event", "via"], "{h:?}");
        assert_eq!(h.get_all("via").iter().count(), 2, "repeats are kept");
    }

    #[test]
    fn targets_must_be_http_urls() {
        for bad in ["ftp://x/y", "not a url", "/relative", "file:///etc/passwd"] {
            assert!(
                matches!(
                    HttpSink::new(HttpSinkConfig::new(bad)),
                    Err(SinkError::InvalidTarget { .. })
                ),
                "{bad} must be refused"
            );
        }
        assert!(HttpSink::new(HttpSinkConfig::new("https://localhost:3000/hooks")).is_ok());
    }
}
