//! A connection's task, polled again at once when it wakes itself during its own poll.
//!
//! hyper wakes a connection's task from inside that task's poll on every request with a
//! body: the handler asking for the body wakes the dispatcher (hyper's `want` signal),
//! and the body's data wakes the handler. tokio takes a wake that comes while the task is
//! running for a yield: the task goes to the back of the worker's queue, and a parked
//! sibling worker is woken (a `futex` call) to come and steal it. At one connection that
//! sibling wakes for nothing on every request and goes back to sleep: a context switch
//! each way. [`Repoll`] notes such a wake and polls the future again before returning,
//! as many as [`REPOLLS`] times; a wake from anywhere else (the socket, the model's
//! answer, a timer), or one past that bound, goes to the runtime as before.

use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Polls in a row for wakes from inside the poll; past them the task yields to the
/// runtime like any other (hyper yields every 16 requests read in one poll, and tokio's
/// cooperative budget wakes a task that spent it: neither may keep the worker).
pub const REPOLLS: usize = 4;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// The waker the wrapped future sees.
struct Signal {
    state: AtomicU8,
    /// The runtime's waker for the task, as of its last poll.
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // While the future is being polled, a wake only asks for one more poll (a second
        // one asks for the same poll); otherwise it wakes the task.
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

/// `future`, polled again while it wakes itself during its poll (at most [`REPOLLS`]
/// times in one poll of the task).
pub struct Repoll<F> {
    future: Pin<Box<F>>,
    signal: Arc<Signal>,
    waker: Waker,
}

impl<F: Future> Repoll<F> {
    pub fn new(future: F) -> Self {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        Repoll {
            future: Box::pin(future),
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Every field is `Unpin` (the future is boxed).
        let this = self.get_mut();
        this.signal.task.register(cx.waker());
        let mut inner = Context::from_waker(&this.waker);
        for _ in 0..REPOLLS {
            this.signal.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(out) = this.future.as_mut().poll(&mut inner) {
                this.signal.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
            // A wake after this swap goes to the runtime; one before it is ours.
            if this.signal.state.swap(IDLE, Ordering::AcqRel) != WOKEN {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself during its first `n` polls, then finishes.
    struct SelfWaking {
        left: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts the wakes it is given.
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn task_cx() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_wake_during_the_poll_is_a_poll_more_not_a_wake_of_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut f = Repoll::new(SelfWaking {
            left: REPOLLS - 1,
            polls: polls.clone(),
        });
        let (count, waker) = task_cx();
        let out = Pin::new(&mut f).poll(&mut Context::from_waker(&waker));
        assert!(out.is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), REPOLLS);
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "the task was not woken");
    }

    #[test]
    fn two_wakes_during_one_poll_ask_for_one_poll_more() {
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let mut f = Repoll::new(std::future::poll_fn(move |cx| {
            if p.fetch_add(1, Ordering::Relaxed) == 0 {
                cx.waker().wake_by_ref();
                cx.waker().wake_by_ref();
            }
            Poll::<()>::Pending
        }));
        let (count, waker) = task_cx();
        assert!(Pin::new(&mut f)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_the_runtime_after_the_bound() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut f = Repoll::new(SelfWaking {
            left: 100,
            polls: polls.clone(),
        });
        let (count, waker) = task_cx();
        let out = Pin::new(&mut f).poll(&mut Context::from_waker(&waker));
        assert!(out.is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), REPOLLS);
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "woken once, to yield");
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        // Pending without waking itself: the waker it was given is kept.
        let kept: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let k = kept.clone();
        let mut f = Repoll::new(std::future::poll_fn(move |cx| {
            *k.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        let (count, waker) = task_cx();
        assert!(Pin::new(&mut f)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        let later = kept.lock().unwrap().take().unwrap();
        std::thread::spawn(move || later.wake()).join().unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "the task was woken");
    }
}
