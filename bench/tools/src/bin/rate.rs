//! Open-loop load at a fixed rate: request i is due at start + i/RATE, on one of CONNS
//! keep-alive connections (round robin), whatever earlier answers are doing. Latency is
//! counted from when a request was due, not when it was sent, so a stall is not hidden
//! (no coordinated omission). Prints the latency distribution, failures, and how many
//! answers each `x-modelfn-version` had.
//! `rate URL RATE SECONDS CONNS BODY`
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> Option<Sender> {
    let s = tokio::net::TcpStream::connect(authority).await.ok()?;
    s.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: rate URL RATE SECONDS CONNS BODY");
        std::process::exit(2);
    }
    let url: hyper::Uri = args[1].parse().expect("a URL");
    let rate: f64 = args[2].parse().expect("requests per second");
    let seconds: f64 = args[3].parse().expect("seconds");
    let conns: usize = args[4].parse().expect("connections");
    let body = Bytes::from(args[5].clone());
    let authority = url.authority().expect("host:port").to_string();
    let mut pool = Vec::new();
    for _ in 0..conns {
        pool.push(Arc::new(Mutex::new(connect(&authority).await)));
    }
    let total = (rate * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (conn, url, body, authority) = (pool[i % conns].clone(), url.clone(), body.clone(), authority.clone());
        tasks.push(tokio::spawn(async move {
            // One request at a time per connection (HTTP/1.1); a late one waits here,
            // and the wait counts.
            let mut guard = conn.lock().await;
            if guard.as_ref().is_none_or(|s| s.is_closed()) {
                *guard = connect(&authority).await;
            }
            let Some(sender) = guard.as_mut() else {
                return (None, due.elapsed());
            };
            let req = Request::post(url)
                .header("host", authority)
                .header("content-type", "application/json")
                .body(Full::new(body))
                .expect("request");
            let out = match tokio::time::timeout(Duration::from_secs(30), sender.send_request(req)).await {
                Ok(Ok(resp)) => {
                    let ok = resp.status().is_success();
                    let version = resp
                        .headers()
                        .get("x-modelfn-version")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string();
                    let _ = resp.into_body().collect().await;
                    ok.then_some(version)
                }
                _ => None,
            };
            (out, due.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0usize;
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let (out, d) = t.await.unwrap_or((None, Duration::ZERO));
        match out {
            Some(v) => *versions.entry(v).or_default() += 1,
            None => failed += 1,
        }
        lat.push(d);
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1].as_secs_f64() * 1e3;
    let versions: Vec<String> = versions.iter().map(|(v, n)| format!("{v}:{n}")).collect();
    println!(
        "RESULT sent={total} failed={failed} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} versions={}",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        versions.join(",")
    );
}
