//! The daemon's event bus: a bounded broadcast of [`DaemonEvent`]s. Slow
//! subscribers see `Lagged` and recover from the store; nothing blocks the
//! writer.

use std::sync::Arc;

use kitedesk_store::StoredEvent;
use tokio::sync::broadcast;

/// Everything components announce to each other.
#[derive(Debug, Clone)]
pub enum DaemonEvent {
    /// A new event was committed to the history (never sent for duplicates).
    Stored(Arc<StoredEvent>),
    /// A connection (relay link) changed state.
    Connection(Arc<crate::links::Connection>),
    /// The notification settings changed to this value: announced here so
    /// the notifier applies each value in order with the events stored
    /// before and after (the notifier's watch may hold a later one by the
    /// time the notifier reads this).
    NotificationSettings(Arc<kitedesk_notify::NotificationSettings>),
    /// The daemon is stopping: long-lived readers (live feeds) end so the
    /// server's graceful shutdown can finish.
    ShuttingDown,
}

/// Capacity of the broadcast ring: about a second of peak ingest.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<DaemonEvent>,
}

impl Bus {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    pub fn publish(&self, event: DaemonEvent) {
        // No subscriber is fine: the history already has the event.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.tx.subscribe()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}
