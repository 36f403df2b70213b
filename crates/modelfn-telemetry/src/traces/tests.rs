use super::*;
use modelfn_core::{InvocationReport, InvokeError, Origin};
use std::io::{Read, Write};

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

/// A collector stub: answers every request 200 and hands each body over.
fn collector() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < i + 4 + len {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[i + 4..].to_vec());
                }
            };
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((head, body));
        }
    });
    (url, rx)
}

#[test]
fn kept_traces_reach_an_otlp_collector() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let (url, bodies) = collector();
    let tracer = Tracer::new(&TraceConfig {
        otlp: Some(OtlpConfig {
            endpoint: Some(url),
            service_name: "modelfn-test".into(),
        }),
        ..quiet()
    })
    .unwrap();
    invoke(&tracer, "cold-otlp", None, true, None);
    let (head, body) = bodies.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(head.starts_with("POST /v1/traces"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"),
        "{head}"
    );
    let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
    let rs = &req.resource_spans[0];
    let service = rs
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.key == "service.name")
        .unwrap();
    assert!(format!("{:?}", service.value).contains("modelfn-test"));
    let spans = &rs.scope_spans[0].spans;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"instance start"), "{names:?}");
    let root = spans.iter().find(|s| s.name == "invoke iris").unwrap();
    let kept = tracer.find("cold-otlp").unwrap();
    assert_eq!(modelfn_core::trace::hex(&root.trace_id), kept.trace_id);
    assert!(spans.iter().all(|s| s.trace_id == root.trace_id));
    drop(tracer);
}
