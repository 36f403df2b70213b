//! A burst: N requests on N connections, all released at the same instant; prints how
//! many succeeded (2xx) and the latency distribution.
//! `burst URL N BODY [CONTENT_TYPE]`
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: burst URL N BODY [CONTENT_TYPE]");
        std::process::exit(2);
    }
    let url: hyper::Uri = args[1].parse().expect("a URL");
    let n: usize = args[2].parse().expect("a count");
    let body = Bytes::from(args[3].clone());
    let ct = args.get(4).cloned().unwrap_or_else(|| "application/json".into());
    let authority = url.authority().expect("host:port").to_string();
    // Connect everyone first, then release every request at once.
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (url, body, ct, authority, barrier) = (url.clone(), body.clone(), ct.clone(), authority.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await.ok();
            let conn = match stream {
                Some(s) => hyper::client::conn::http1::handshake(TokioIo::new(s)).await.ok(),
                None => None,
            };
            barrier.wait().await;
            let t0 = Instant::now();
            let Some((mut sender, connection)) = conn else {
                return (false, t0.elapsed());
            };
            tokio::spawn(connection);
            let req = Request::post(url)
                .header("host", authority)
                .header("content-type", ct)
                .body(Full::new(body))
                .expect("request");
            let ok = match tokio::time::timeout(Duration::from_secs(30), sender.send_request(req)).await {
                Ok(Ok(resp)) => {
                    let ok = resp.status().is_success();
                    let _ = resp.into_body().collect().await;
                    ok
                }
                _ => false,
            };
            (ok, t0.elapsed())
        }));
    }
    barrier.wait().await;
    let t0 = Instant::now();
    let mut lat = Vec::with_capacity(n);
    let mut ok = 0;
    for t in tasks {
        let (good, d) = t.await.unwrap_or((false, Duration::ZERO));
        ok += usize::from(good);
        lat.push(d);
    }
    let all = t0.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1].as_secs_f64() * 1e3;
    println!(
        "RESULT {ok} {n} {:.1} {:.1} {:.1} {:.1}",
        pct(0.5),
        pct(0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        all.as_secs_f64() * 1e3
    );
}
