#![expect(clippy::unwrap_used, reason = "tests")]
//! The relay over real sockets: HTTP ingress and the Kite WebSocket
//! protocol, with tokio-tungstenite as the client.

mod ingress;
mod limits;
mod protocol;
mod smee;
mod support;
mod ws;
