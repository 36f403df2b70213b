use super::*;
use modelfn_core::{InvocationReport, InvokeError, Origin};

fn origin() -> Origin {
    let received = Instant::now();
    Origin {
        door: "native",
        alias: Some(Arc::from("prod")),
        key_id: Some(Arc::from("AKID1")),
        received: Some(received),
        auth: Some((received, received + Duration::from_micros(30))),
    }
}

/// One invocation of `function`, observed as the scheduler would.
fn invoke(
    tracer: &Tracer,
    request_id: &str,
    trace: Option<&str>,
    cold: bool,
    batch: Option<BatchRun>,
) {
    let o = origin();
    let who = Observed {
        function: "iris",
        version: 2,
        request_id,
        memory_mb: 128,
        pool: PoolKind::Shared,
        origin: &o,
        trace,
    };
    let ran_at = Instant::now() + Duration::from_millis(2);
    let report = InvocationReport {
        version: 2,
        cold_start: cold,
        init_duration: cold.then_some(Duration::from_millis(1)),
        restored: false,
        queue_wait: Duration::from_micros(100),
        duration: Duration::from_micros(400),
    };
    tracer.observe(
        &who,
        Phase::Ran {
            report: &report,
            ran_at,
            batch,
            timed_out: None,
            max_memory_used_mb: None,
            error: None,
        },
    );
}

fn names(t: &TraceView) -> Vec<&str> {
    t.spans.iter().map(|s| s.name.as_str()).collect()
}

fn quiet() -> TraceConfig {
    TraceConfig {
        per_second: 0,
        ratio: 0.0,
        ..TraceConfig::default()
    }
}

#[test]
fn cold_starts_are_always_kept_and_show_their_instance_start() {
    let tracer = Tracer::new(&quiet()).unwrap();
    invoke(&tracer, "warm-1", None, false, None);
    invoke(&tracer, "cold-1", None, true, None);
    assert!(tracer.find("warm-1").is_none(), "nothing else is kept");
    let t = tracer.find("cold-1").unwrap();
    assert!(t.cold);
    assert_eq!(
        names(&t),
        [
            "invoke iris",
            "authenticate",
            "route",
            "queue",
            "instance start",
            "model load",
            "run"
        ]
    );
    let root = &t.spans[0];
    assert_eq!(root.attributes["faas.coldstart"], true);
    assert_eq!(root.attributes["modelfn.alias"], "prod");
    assert_eq!(root.attributes["modelfn.key_id"], "AKID1");
    // Children name the root; the model load is inside the instance start.
    for s in &t.spans[1..] {
        let parent = s.parent_span_id.as_deref().unwrap();
        let want = if s.name == "model load" {
            &t.spans[4].span_id
        } else {
            &root.span_id
        };
        assert_eq!(parent, want, "{}", s.name);
        assert!(
            s.start_us >= root.start_us
                && s.start_us + s.duration_us as i64 <= root.start_us + root.duration_us as i64 + 1,
            "{} inside the root",
            s.name
        );
    }
    let start = t.spans.iter().find(|s| s.name == "instance start").unwrap();
    assert!(
        (900..=1100).contains(&start.duration_us),
        "{}",
        start.duration_us
    );
}

#[test]
fn a_callers_sampled_flag_decides_and_its_span_is_the_parent() {
    let tracer = Tracer::new(&quiet()).unwrap();
    let yes = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1";
    let no = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4737;Parent=00f067aa0ba902b7;Sampled=0";
    let batch = BatchRun {
        rows: 12,
        requests: 3,
        started: Instant::now() + Duration::from_micros(2100),
        took: Duration::from_micros(200),
    };
    invoke(&tracer, "r-yes", Some(yes), false, Some(batch));
    invoke(&tracer, "r-no", Some(no), true, None);
    assert!(tracer.find("r-no").is_none(), "the caller said no");
    let t = tracer.find("r-yes").unwrap();
    assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        t.spans[0].parent_span_id.as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert!(!names(&t).contains(&"instance start"));
    let b = t.spans.iter().find(|s| s.name == "batch").unwrap();
    assert_eq!(b.attributes["modelfn.batch.rows"], 12);
    let run = t.spans.iter().find(|s| s.name == "run").unwrap();
    assert_eq!(b.parent_span_id.as_deref(), Some(run.span_id.as_str()));
}

#[test]
fn the_allowance_keeps_a_few_each_second_and_the_ring_the_newest() {
    let tracer = Tracer::new(&TraceConfig {
        keep: 3,
        per_second: 2,
        ratio: 0.0,
        otlp: None,
    })
    .unwrap();
    for i in 0..5 {
        invoke(&tracer, &format!("r{i}"), None, false, None);
    }
    let kept: Vec<String> = tracer
        .recent(None, 10)
        .into_iter()
        .map(|t| t.request_id)
        .collect();
    // The second may turn between two calls: then a third is kept, never more.
    assert!(kept.len() == 2 || kept.len() == 3, "{kept:?}");
    for i in 0..4 {
        invoke(&tracer, &format!("c{i}"), None, true, None);
    }
    let kept: Vec<String> = tracer
        .recent(None, 10)
        .into_iter()
        .map(|t| t.request_id)
        .collect();
    assert_eq!(kept, ["c3", "c2", "c1"]);
    let not_run = Observed {
        function: "iris",
        version: 2,
        request_id: "thr",
        memory_mb: 128,
        pool: PoolKind::Shared,
        origin: &Origin::default(),
        trace: None,
    };
    let e = InvokeError::Throttled {
        message: "busy".into(),
        retry_after: Duration::from_secs(1),
    };
    tracer.observe(&not_run, Phase::NotRun(&e));
    let t = tracer.find("thr").unwrap();
    assert_eq!(t.outcome, Outcome::Throttled);
    assert_eq!(names(&t), ["invoke iris", "route"]);
}

#[test]
fn a_ratio_keeps_that_share_of_request_ids() {
    let tracer = Tracer::new(&TraceConfig {
        keep: 10_000,
        per_second: 0,
        ratio: 0.25,
        otlp: None,
    })
    .unwrap();
    for i in 0..4000u32 {
        // Request ids as the gateway makes them: version-4 UUIDs of random bits.
        use std::hash::BuildHasher;
        let r = std::collections::hash_map::RandomState::new();
        let t = format!("{:016x}{:016x}", r.hash_one(i), r.hash_one(i + 1));
        let id = format!(
            "{}-{}-4{}-a{}-{}",
            &t[..8],
            &t[8..12],
            &t[13..16],
            &t[17..20],
            &t[20..]
        );
        invoke(&tracer, &id, None, false, None);
    }
    let kept = tracer.recent(None, 10_000).len();
    assert!((800..=1200).contains(&kept), "{kept} of 4000");
}
