//! The records' queue: a bounded double buffer. The request path pushes a record under a
//! short lock onto the end of a `Vec`; the writer swaps that `Vec` for its emptied spare
//! at each drain. The two buffers take turns, so the request path writes into memory
//! the writer has just read (warm in cache), where a ring of 32,768 slots (12.6 MB)
//! had every record land on a line evicted long ago (BENCHMARKS.md, "a smaller records
//! queue"). The bound is the same: a buffer holds at most `cap` records, and a record
//! past it is refused, never waited for.

use std::sync::{Mutex, MutexGuard};

/// Items each buffer has room for from the start: 4,096 records is 400,000 a second
/// between two drains. A buffer that must grow past it copies itself under the lock.
const WARM: usize = 4096;

/// A bounded buffer of `T`s between many producers and one consumer.
pub(super) struct Inbox<T> {
    state: Mutex<State<T>>,
    cap: usize,
}

struct State<T> {
    items: Vec<T>,
    /// No more items are taken; the consumer takes what is left and stops.
    closed: bool,
}

impl<T> Inbox<T> {
    pub(super) fn new(cap: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                items: Vec::with_capacity(cap.min(WARM)),
                closed: false,
            }),
            cap,
        }
    }

    /// The consumer's first spare buffer, with the room the inbox's own has.
    pub(super) fn spare(&self) -> Vec<T> {
        Vec::with_capacity(self.cap.min(WARM))
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `item`; gives it back when the buffer is full or closed.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        let mut s = self.state();
        if s.closed || s.items.len() >= self.cap {
            return Err(item);
        }
        s.items.push(item);
        Ok(())
    }

    /// Swaps what is waiting into `spare` (which must be empty; its capacity becomes the
    /// next buffer). Answers false once closed: what `spare` holds then is the last.
    pub(super) fn take(&self, spare: &mut Vec<T>) -> bool {
        debug_assert!(spare.is_empty());
        let mut s = self.state();
        std::mem::swap(&mut s.items, spare);
        !s.closed
    }

    /// Refuses further items; the consumer's next `take` is its last.
    pub(super) fn close(&self) {
        self.state().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_bounded_and_the_buffers_take_turns() {
        let inbox = Inbox::new(3);
        for i in 0..3 {
            assert!(inbox.push(i).is_ok());
        }
        assert_eq!(inbox.push(3), Err(3), "a full buffer refuses");
        let mut spare = Vec::with_capacity(8);
        assert!(inbox.take(&mut spare));
        assert_eq!(spare, [0, 1, 2]);
        assert!(spare.capacity() < 8, "the buffer that was filled came out");
        spare.clear();
        // Room again, in the spare that went in.
        assert!(inbox.push(4).is_ok());
        let mut next = Vec::new();
        assert!(inbox.take(&mut next));
        assert_eq!(next, [4]);
        assert!(next.capacity() >= 8);
    }

    #[test]
    fn a_closed_inbox_gives_up_what_it_holds_and_refuses_the_rest() {
        let inbox = Inbox::new(10);
        assert!(inbox.push("a").is_ok());
        inbox.close();
        assert_eq!(inbox.push("b"), Err("b"));
        let mut last = Vec::new();
        assert!(!inbox.take(&mut last), "closed: this take is the last");
        assert_eq!(last, ["a"]);
    }

    #[test]
    fn many_threads_push_and_nothing_is_lost_or_duplicated() {
        let inbox = std::sync::Arc::new(Inbox::new(100_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        assert!(inbox.push(t * 1000 + i).is_ok());
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        let mut spare = Vec::new();
        loop {
            let done = threads.iter().all(|t| t.is_finished());
            inbox.take(&mut spare);
            seen.append(&mut spare);
            if done {
                inbox.take(&mut spare);
                seen.append(&mut spare);
                break;
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..4000).collect::<Vec<_>>());
    }
}
