//! Quotas counted in a cluster's shared store, batched like a group commit: requests for
//! one plan, key and period that arrive while a count is in flight wait, and the next
//! count takes them all in one conditional upsert. The store grants what the quota has
//! left, and those first in line get it. A node has at most one count in flight per key,
//! so the database sees one statement per round trip, not one per request, and the
//! quota stays exact over every node.

use crate::ControlError;
use modelfn_registry::MetadataStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

type LineKey = (String, String, String);

#[derive(Default)]
struct Line {
    waiting: Vec<oneshot::Sender<Result<bool, String>>>,
    counting: bool,
}

/// This node's lines of requests waiting to be counted, by plan, key and period.
#[derive(Default)]
pub(crate) struct QuotaBatcher {
    lines: Arc<Mutex<HashMap<LineKey, Line>>>,
}

fn lock(lines: &Mutex<HashMap<LineKey, Line>>) -> MutexGuard<'_, HashMap<LineKey, Line>> {
    lines.lock().unwrap_or_else(|p| p.into_inner())
}

impl QuotaBatcher {
    /// Counts one request against `quota`; answers whether it is within it.
    pub(crate) async fn take(
        &self,
        meta: &Arc<dyn MetadataStore>,
        plan: &str,
        key: &str,
        period: &str,
        quota: u64,
    ) -> Result<bool, ControlError> {
        let line = (plan.to_string(), key.to_string(), period.to_string());
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut lines = lock(&self.lines);
            let l = lines.entry(line.clone()).or_default();
            l.waiting.push(tx);
            !std::mem::replace(&mut l.counting, true)
        };
        if lead {
            // Its own task: a caller that goes away never leaves the line uncounted.
            tokio::spawn(count(self.lines.clone(), meta.clone(), line, quota));
        }
        rx.await
            .map_err(|_| ControlError::Storage("the quota count was dropped".into()))?
            .map_err(ControlError::Storage)
    }
}

/// Counts a line's waiting requests, a batch per round trip, until none wait.
async fn count(
    lines: Arc<Mutex<HashMap<LineKey, Line>>>,
    meta: Arc<dyn MetadataStore>,
    line: LineKey,
    quota: u64,
) {
    loop {
        let batch = {
            let mut all = lock(&lines);
            match all.get_mut(&line) {
                Some(l) if !l.waiting.is_empty() => std::mem::take(&mut l.waiting),
                Some(_) | None => {
                    all.remove(&line);
                    return;
                }
            }
        };
        let (plan, key, period) = &line;
        let want = batch.len() as u64;
        match meta.take_quota(plan, key, period, want, quota).await {
            Ok(granted) => {
                for (i, tx) in batch.into_iter().enumerate() {
                    let _ = tx.send(Ok((i as u64) < granted));
                }
            }
            Err(e) => {
                for tx in batch {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        }
    }
}
