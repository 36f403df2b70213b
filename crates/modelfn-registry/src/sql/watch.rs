//! Change notifications across nodes: on PostgreSQL a trigger on `changes` sends
//! `NOTIFY modelfn_changes` (delivered when the writing transaction commits), and each
//! node LISTENs on its own connection, waking its reconciler at once instead of at the
//! next poll. The poll stays as the fallback: a lost connection, or a notification sent
//! while it reconnects, delays a change by one poll, never loses it.

use super::{Backend, SqlMetadataStore};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The channel the `changes` trigger notifies (see the PostgreSQL migrations).
pub const CHANNEL: &str = "modelfn_changes";

/// A node's subscription to changes; dropping it stops listening.
pub struct ChangeWatch {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChangeWatch {
    /// Notified (coalesced) whenever a change is committed by any node.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl SqlMetadataStore {
    /// Listens for changes committed by any node; `None` on SQLite (one machine, where
    /// the poll is enough). Call inside a tokio runtime.
    pub fn watch_changes(&self) -> Option<ChangeWatch> {
        let url = match (self.backend, &self.url) {
            (Backend::Postgres, Some(url)) => url.clone(),
            (Backend::Sqlite, _) | (Backend::Postgres, None) => return None,
        };
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(listen(url, wake.clone()));
        Some(ChangeWatch { wake, task })
    }
}

/// Holds a LISTEN connection, reconnecting after a failure; wakes on each notification
/// and once after each (re)connect, for what may have been missed meanwhile.
async fn listen(url: String, wake: Arc<Notify>) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    wake.notify_one();
                    while listener.recv().await.is_ok() {
                        wake.notify_one();
                    }
                    tracing::warn!("lost the change notifications' connection; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; retrying"),
            },
            Err(e) => tracing::warn!(
                error = %e,
                "connecting for change notifications failed; polling until it works"
            ),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
