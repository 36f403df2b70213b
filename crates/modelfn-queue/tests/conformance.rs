//! The queue's behaviour, written against `&dyn InvocationQueue` and run on SQLite and
//! on a real PostgreSQL (the registry's `tests/support/postgres.rs`); then what only a
//! shared PostgreSQL queue shows: two nodes leasing at once, and a dead node's leases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use modelfn_queue::{DeadQuery, EventState, InvocationQueue, NewEvent, QueueError, SqlQueue};
use std::sync::Arc;
use std::time::Duration;

#[path = "../../modelfn-registry/tests/support/postgres.rs"]
mod postgres;

fn event(id: &str, function: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        function: function.into(),
        qualifier: "$LATEST".into(),
        payload: Bytes::from_static(b"{\"n\": 1}"),
        content_type: Some("application/json".into()),
        trace: None,
        key_id: Some("AKID".into()),
        max_attempts: 3,
        max_age: Duration::from_secs(3600),
    }
}

const LEASE: Duration = Duration::from_secs(60);

/// Room for any number of every function's events.
fn any(_: &str) -> usize {
    usize::MAX
}

async fn events_are_leased_once_oldest_first_and_settled(q: &dyn InvocationQueue) {
    for i in 0..5 {
        q.enqueue(event(&format!("e{i}"), "f")).await.unwrap();
    }
    assert!(matches!(
        q.enqueue(event("e0", "f")).await,
        Err(QueueError::Duplicate(_))
    ));
    let first = q.lease(3, LEASE, &any).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first
        .iter()
        .all(|l| l.attempt == 1 && l.key_id.as_deref() == Some("AKID")));
    let second = q.lease(10, LEASE, &any).await.unwrap();
    assert_eq!(second.len(), 2, "a leased event is not leased again");
    q.ack(&first[0].id, 4, Bytes::from_static(b"42"))
        .await
        .unwrap();
    let s = q.status(&first[0].id).await.unwrap().unwrap();
    assert_eq!(
        (s.state, s.version, s.payload_bytes),
        (EventState::Succeeded, Some(4), 0)
    );
    assert_eq!(s.result.as_deref(), Some(&b"42"[..]));
    // Tried again later: not before its delay; a throttle gives its attempt back.
    q.nack(&first[1].id, "boom", Duration::from_secs(3600), true)
        .await
        .unwrap();
    q.nack(&first[2].id, "busy", Duration::ZERO, false)
        .await
        .unwrap();
    let again = q.lease(10, LEASE, &any).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (first[2].id.as_str(), 1)
    );
    let s = q.status(&first[1].id).await.unwrap().unwrap();
    assert_eq!((s.state, s.attempts), (EventState::Queued, 1));
    assert_eq!(s.last_error.as_deref(), Some("boom"));
}

async fn a_function_gets_no_more_than_its_room_and_a_restart_gives_leases_back(
    q: &dyn InvocationQueue,
) {
    q.enqueue(event("a1", "a")).await.unwrap();
    q.enqueue(event("b1", "b")).await.unwrap();
    q.enqueue(event("b2", "b")).await.unwrap();
    // No room for a, room for one of b.
    let room = |f: &str| if f == "a" { 0 } else { 1 };
    let got = q.lease(10, LEASE, &room).await.unwrap();
    assert_eq!(
        got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["b1"]
    );
    // The process that leased b1 is gone: it runs again, as a second attempt.
    assert_eq!(q.recover().await.unwrap(), 1);
    let got = q.lease(10, LEASE, &any).await.unwrap();
    let b = got.iter().find(|l| l.id == "b1").unwrap();
    assert_eq!(got.len(), 3, "a1, b1 again and b2");
    assert_eq!(b.attempt, 2);
    // An expired lease is taken again too.
    q.enqueue(event("c1", "c")).await.unwrap();
    assert_eq!(q.lease(1, Duration::ZERO, &any).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(q.lease(1, LEASE, &any).await.unwrap()[0].attempt, 2);
}

async fn dead_letters_are_read_redriven_and_dropped(q: &dyn InvocationQueue) {
    for id in ["d1", "d2", "k1"] {
        q.enqueue(event(id, if id.starts_with('d') { "d" } else { "k" }))
            .await
            .unwrap();
    }
    for l in q.lease(10, LEASE, &any).await.unwrap() {
        if l.function == "d" {
            q.dead_letter(&l.id, "ValueError: no").await.unwrap();
        }
    }
    let dead = q
        .dead(&DeadQuery {
            function: Some("d".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].payload.as_deref(), Some(&b"{\"n\": 1}"[..]));
    assert_eq!(dead[0].last_error.as_deref(), Some("ValueError: no"));
    let depth = q.depths().await.unwrap();
    let d = depth.iter().find(|d| d.function == "d").unwrap();
    assert_eq!((d.dead, d.queued), (2, 0));
    let one = DeadQuery {
        id: Some("d1".into()),
        ..Default::default()
    };
    assert_eq!(q.redrive(&one, LEASE).await.unwrap(), 1);
    let again = q.lease(10, LEASE, &any).await.unwrap();
    assert_eq!((again.len(), again[0].attempt), (1, 1));
    // A deleted function's waiting events go, or go to the dead letters.
    q.enqueue(event("k2", "k")).await.unwrap();
    assert_eq!(
        q.drop_function("k", Some("function deleted"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        q.dead(&DeadQuery {
            function: Some("k".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        2
    );
    q.enqueue(event("k3", "k")).await.unwrap();
    assert_eq!(q.drop_function("k", None).await.unwrap(), 1);
    assert!(q.status("k3").await.unwrap().is_none());
    assert_eq!(
        q.purge(i64::MAX, i64::MAX).await.unwrap(),
        3,
        "the dead go past their age"
    );
}

async fn a_buried_event_is_dead_at_once_and_redriven_as_any(q: &dyn InvocationQueue) {
    q.bury(event("p1", "s"), 3, "poison record").await.unwrap();
    assert!(
        q.lease(10, LEASE, &any).await.unwrap().is_empty(),
        "never leased"
    );
    let dead = q.dead(&DeadQuery::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].state,
            dead[0].attempts,
            dead[0].last_error.as_deref()
        ),
        (EventState::Dead, 3, Some("poison record"))
    );
    assert_eq!(dead[0].payload.as_deref(), Some(&b"{\"n\": 1}"[..]));
    assert_eq!(q.redrive(&DeadQuery::default(), LEASE).await.unwrap(), 1);
    assert_eq!(q.lease(10, LEASE, &any).await.unwrap().len(), 1);
}

/// Named leases: one holder at a time; renewed by its holder; taken by another once
/// lapsed or released.
async fn leases_have_one_holder(a: &SqlQueue, b: &SqlQueue) {
    use modelfn_queue::Leases;
    let short = Duration::from_millis(300);
    assert!(a.hold("stream:f:s", short).await.unwrap());
    assert!(!b.hold("stream:f:s", short).await.unwrap(), "a holds it");
    assert!(
        a.hold("stream:f:s", short).await.unwrap(),
        "renewed by its holder"
    );
    assert!(b.hold("stream:g:s", LEASE).await.unwrap(), "another name");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        b.hold("stream:f:s", LEASE).await.unwrap(),
        "lapsed: b takes it"
    );
    assert!(!a.hold("stream:f:s", short).await.unwrap());
    b.release("stream:f:s").await.unwrap();
    a.release("stream:g:s").await.unwrap(); // not its lease: no effect
    assert!(!a.hold("stream:g:s", short).await.unwrap());
    assert!(
        a.hold("stream:f:s", short).await.unwrap(),
        "released: a takes it"
    );
}

/// Every suite, each on a fresh queue from `fresh`.
async fn conforms<F, Fut>(fresh: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = SqlQueue>,
{
    events_are_leased_once_oldest_first_and_settled(&fresh("settled").await).await;
    a_function_gets_no_more_than_its_room_and_a_restart_gives_leases_back(&fresh("room").await)
        .await;
    dead_letters_are_read_redriven_and_dropped(&fresh("dead").await).await;
    a_buried_event_is_dead_at_once_and_redriven_as_any(&fresh("buried").await).await;
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    conforms(|name| {
        let file = path.join(format!("{name}.db"));
        async move { SqlQueue::open(&file).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn postgresql_conforms() {
    let pg = postgres::start();
    let pg = &pg;
    conforms(|name| {
        let url = pg.database(name);
        async move { SqlQueue::connect(&url, 4, "node-a").await.unwrap() }
    })
    .await;
}

/// Two nodes on one queue: concurrent leases never hand an event out twice; a node
/// restarting gives back only its own leases; a dead node's leases run again on another
/// once they expire.
#[tokio::test]
async fn nodes_share_one_postgresql_queue() {
    let pg = postgres::start();
    let url = pg.database("shared");
    let a = Arc::new(SqlQueue::connect(&url, 4, "node-a").await.unwrap());
    let b = Arc::new(SqlQueue::connect(&url, 4, "node-b").await.unwrap());
    leases_have_one_holder(&a, &b).await;
    for i in 0..300 {
        let q = if i % 2 == 0 { &a } else { &b };
        q.enqueue(event(&format!("e{i}"), "f")).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let q = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = q.lease(7, LEASE, &any).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|l| l.id));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (300, 300),
        "each event leased exactly once"
    );

    // Node b restarts: it gives back its own leases, not node a's.
    let c = SqlQueue::connect(&url, 2, "node-c").await.unwrap();
    c.enqueue(event("x1", "g")).await.unwrap();
    let held = a.lease(1, Duration::from_millis(300), &any).await.unwrap();
    assert_eq!(held.len(), 1);
    let by_b: u64 = pg
        .psql(
            "shared",
            "SELECT count(*) FROM events WHERE leased_by = 'node-b'",
        )
        .parse()
        .unwrap();
    assert!(by_b > 0 && by_b < 300, "both nodes took work: {by_b} by b");
    assert_eq!(b.recover().await.unwrap(), by_b);
    let st = c.status("x1").await.unwrap().unwrap();
    assert_eq!(st.state, EventState::Leased, "node a's lease is left alone");
    // While node a lives it renews its leases: x1 is not due for the others.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.renew(Duration::from_millis(300)).await.unwrap() >= 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let early = c.lease(500, LEASE, &any).await.unwrap();
    assert!(
        early.iter().all(|l| l.id != "x1"),
        "a renewed lease is not taken"
    );
    // Node a dies holding x1: once its lease expires, another node runs it again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut retaken = c.lease(500, LEASE, &any).await.unwrap();
    retaken.retain(|l| l.id == "x1");
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].attempt, 2);
}
