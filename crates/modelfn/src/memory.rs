//! Memory given back to the system after scale to zero. Once the reaper has stopped idle
//! instances (models unloaded, processes gone), the allocators are asked to return their
//! free pages: mimalloc's (modelfn's own heap) and glibc's (`malloc_trim`; ONNX Runtime
//! allocates through libc).

use modelfn_scheduler::Scheduler;
use std::sync::Arc;
use std::time::Duration;

/// How often the reaper's count is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Purges the allocators a few seconds after the reaper stopped something.
pub fn spawn_purger(scheduler: Arc<Scheduler>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = scheduler.reaped();
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = scheduler.reaped();
            if now == seen {
                continue;
            }
            seen = now;
            // The instances stopped on the last pass have let go of their memory by now
            // (a model's thread ends once its last request is answered).
            let _ = tokio::task::spawn_blocking(purge).await;
        }
    })
}

fn purge() {
    // SAFETY: both only return free pages to the system; neither touches live memory.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        libc::malloc_trim(0);
    }
    tracing::debug!("free memory returned to the system after scale to zero");
}
