//! Memory given back to the system after scale to zero. Once the reaper has stopped idle
//! instances (models unloaded, processes gone), the allocators are asked to return their
//! free pages: mimalloc's (modelfn's own heap) and glibc's (`malloc_trim`; ONNX Runtime
//! allocates through libc). mimalloc keeps a heap per thread, and only a thread can purge
//! its own: each tokio worker does, the next time it parks ([`on_park`]).

use modelfn_scheduler::Scheduler;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Purges asked for so far; each worker purges its heap when it has seen fewer.
static PURGES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Called by each tokio worker before it parks: purges its own heap once per purge asked
/// for (one atomic load otherwise).
pub fn on_park() {
    let asked = PURGES.load(Ordering::Relaxed);
    SEEN.with(|seen| {
        if seen.get() != asked {
            seen.set(asked);
            // SAFETY: returns this thread's free pages to the system; live memory is untouched.
            unsafe { libmimalloc_sys::mi_collect(true) };
        }
    });
}

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
            let handle = tokio::runtime::Handle::current();
            let _ = tokio::task::spawn_blocking(move || {
                purge();
                // Wake every worker, so that each parks again and purges its heap: tasks
                // spawned from outside the runtime wake parked workers, and each holds
                // its worker a moment, so that the others take the rest.
                for _ in 0..16 {
                    drop(handle.spawn(async {
                        std::thread::sleep(Duration::from_millis(2));
                    }));
                }
            })
            .await;
        }
    })
}

fn purge() {
    PURGES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: both only return free pages to the system; neither touches live memory.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        libc::malloc_trim(0);
    }
    tracing::debug!("free memory returned to the system after scale to zero");
}
