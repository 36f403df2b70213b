//! Zero-downtime switches: 200 clients call a function for 30 s while it gets 3 deploys
//! (updates of `$LATEST`), 5 alias moves, 3 weight changes and 2 model swaps. No call
//! may fail, and every answer's `x-modelfn-version` must name a version that the alias
//! (or `$LATEST`) routed to at some moment while that call was in flight. Run on a
//! native ONNX function and on a Python one, both following a model-store model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, example, Server};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;
/// Of them, these call `$LATEST`; the rest call the alias `live`.
const LATEST_CLIENTS: usize = 50;
const RUN: Duration = Duration::from_secs(30);

/// One switching test at a time: each holds its 200 clients on the machine alone.
static ALONE: Mutex<()> = Mutex::new(());

/// What a target routed to, from when the change was asked for until the next one was
/// answered (a call in flight across a change may see either side).
#[derive(Default)]
struct Timeline(Mutex<Vec<Routed>>);

/// Versions routed to, from a change asked for until the next one was answered.
type Routed = (Instant, Option<Instant>, BTreeSet<u64>);

impl Timeline {
    fn start(&self, versions: &[u64]) {
        let mut t = self.0.lock().unwrap();
        t.push((Instant::now(), None, versions.iter().copied().collect()));
    }

    /// Records a change around `change()`.
    fn change(&self, versions: &[u64], change: impl FnOnce()) {
        let issued = Instant::now();
        change();
        let done = Instant::now();
        let mut t = self.0.lock().unwrap();
        if let Some(last) = t.last_mut() {
            last.1 = Some(done);
        }
        t.push((issued, None, versions.iter().copied().collect()));
    }

    /// Every version routed to at some moment in `[from, to]`.
    fn valid(&self, from: Instant, to: Instant) -> BTreeSet<u64> {
        let t = self.0.lock().unwrap();
        t.iter()
            .filter(|(start, end, _)| *start <= to && end.is_none_or(|e| e >= from))
            .flat_map(|(_, _, v)| v.iter().copied())
            .collect()
    }
}

struct Call {
    sent: Instant,
    answered: Instant,
    latest: bool,
    outcome: Result<u64, String>,
}

/// One keep-alive HTTP/1.1 exchange: the status line's code, the version header, the body.
fn exchange(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, Option<u64>, String)> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(request.as_bytes())?;
    let (mut len, mut version, mut status) = (0usize, None, 0u16);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let lower = line.trim_end().to_ascii_lowercase();
        if lower.is_empty() {
            break;
        }
        if let Some(v) = lower.strip_prefix("content-length: ") {
            len = v.parse().unwrap_or(0);
        } else if let Some(v) = lower.strip_prefix("x-modelfn-version: ") {
            version = v.parse().ok();
        } else if let Some(rest) = lower.strip_prefix("http/1.1 ") {
            status = rest.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
    let mut buf = vec![0; len];
    reader.read_exact(&mut buf)?;
    Ok((status, version, String::from_utf8_lossy(&buf).into_owned()))
}

fn client(
    addr: String,
    path: String,
    body: String,
    latest: bool,
    stop: Arc<AtomicBool>,
) -> Vec<Call> {
    let mut calls = Vec::new();
    let connect = || {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        (BufReader::new(s.try_clone().unwrap()), s)
    };
    let (mut reader, mut writer) = connect();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let outcome = match exchange(&mut reader, &mut writer, &path, &body) {
            Ok((200, Some(v), _)) => Ok(v),
            Ok((code, v, b)) => Err(format!("HTTP {code}, version {v:?}: {b}")),
            Err(e) => {
                (reader, writer) = connect();
                Err(format!("I/O: {e}"))
            }
        };
        calls.push(Call {
            sent,
            answered: Instant::now(),
            latest,
            outcome,
        });
    }
    calls
}

/// Deploys `pkg` again with a new description: a new version.
fn redeploy(s: &Server, pkg: &Path, n: u64) {
    common::set_description(pkg, &format!("build {n}"));
    s.deploy(pkg);
}

fn cli_ok(s: &Server, args: &[&str]) {
    let (ok, out, err) = s.cli(args);
    assert!(ok, "{args:?}: {out} {err}");
}

/// Runs the whole schedule on `function` (deployed once as version 1, with a second
/// model revision at `swap_to`) and checks every call.
fn switch_under_load(
    s: &Server,
    pkg: &Path,
    function: &str,
    model: &str,
    swap_to: &Path,
    body: &str,
) {
    redeploy(s, pkg, 2);
    cli_ok(s, &["alias", "set", function, "live", "1"]);
    let alias = Arc::new(Timeline::default());
    let latest = Arc::new(Timeline::default());
    alias.start(&[1]);
    latest.start(&[2]);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = s.url.trim_start_matches("http://").to_string();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let on_latest = i < LATEST_CLIENTS;
            let path = if on_latest {
                format!("/v1/functions/{function}/invoke")
            } else {
                format!("/v1/functions/{function}:live/invoke")
            };
            let (addr, body, stop) = (addr.clone(), body.to_string(), stop.clone());
            std::thread::spawn(move || client(addr, path, body, on_latest, stop))
        })
        .collect();
    let t0 = Instant::now();
    let swap = swap_to.to_str().unwrap();
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| alias.change(&[2], || cli_ok(s, &["alias", "set", function, "live", "2"]))),
        Box::new(|| latest.change(&[3], || redeploy(s, pkg, 3))),
        Box::new(|| {
            alias.change(&[2, 3], || {
                cli_ok(s, &["alias", "set", function, "live", "2:50,3:50"])
            })
        }),
        Box::new(|| cli_ok(s, &["model", "put", model, swap])),
        Box::new(|| alias.change(&[3], || cli_ok(s, &["alias", "set", function, "live", "3"]))),
        Box::new(|| latest.change(&[4], || redeploy(s, pkg, 4))),
        Box::new(|| {
            alias.change(&[3, 4], || {
                cli_ok(s, &["alias", "set", function, "live", "3:80,4:20"])
            })
        }),
        Box::new(|| alias.change(&[4], || cli_ok(s, &["alias", "set", function, "live", "4"]))),
        Box::new(|| cli_ok(s, &["model", "rollback", model])),
        Box::new(|| latest.change(&[5], || redeploy(s, pkg, 5))),
        Box::new(|| {
            alias.change(&[4, 5], || {
                cli_ok(s, &["alias", "set", function, "live", "4:30,5:70"])
            })
        }),
        Box::new(|| alias.change(&[5], || cli_ok(s, &["alias", "set", function, "live", "5"]))),
        Box::new(|| alias.change(&[4], || cli_ok(s, &["alias", "set", function, "live", "4"]))),
    ];
    let every = RUN / (steps.len() as u32 + 1);
    for (i, step) in steps.iter().enumerate() {
        let due = every * (i as u32 + 1);
        std::thread::sleep(due.saturating_sub(t0.elapsed()));
        step();
    }
    std::thread::sleep(RUN.saturating_sub(t0.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let calls: Vec<Call> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();

    let failed: Vec<&String> = calls
        .iter()
        .filter_map(|c| c.outcome.as_ref().err())
        .collect();
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &calls {
        if let Ok(v) = c.outcome {
            seen.insert(v);
            let timeline = if c.latest { &latest } else { &alias };
            let valid = timeline.valid(c.sent, c.answered);
            if !valid.contains(&v) {
                wrong.push(format!(
                    "{} got {v}, valid {valid:?}",
                    if c.latest { "$LATEST" } else { "live" }
                ));
            }
        }
    }
    eprintln!(
        "{function}: {} calls in {:.1} s, {} failed, {} on a version not routed to; versions seen {seen:?}",
        calls.len(),
        t0.elapsed().as_secs_f64(),
        failed.len(),
        wrong.len()
    );
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        wrong.is_empty(),
        "{} wrong, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        seen,
        BTreeSet::from([1, 2, 3, 4, 5]),
        "every version served at some point"
    );
}

#[test]
fn a_native_function_switches_under_load_without_failing_a_call() {
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pkg = work.path().join("flow");
    copy_dir(&example("iris"), &pkg);
    std::fs::remove_file(pkg.join("model.onnx")).unwrap();
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml"))
        .unwrap()
        .replace("name = \"iris\"", "name = \"flow\"")
        .replace(
            "file = \"model.onnx\"",
            "file = \"store:flow-model\"\ntest_event = \"request.json\"",
        );
    std::fs::write(pkg.join("modelfn.toml"), manifest).unwrap();
    let forest = example("iris").join("model.onnx");
    cli_ok(
        &s,
        &["model", "put", "flow-model", forest.to_str().unwrap()],
    );
    redeploy(&s, &pkg, 1);
    let lightgbm = example("lightgbm-iris").join("model.onnx");
    switch_under_load(
        &s,
        &pkg,
        "flow",
        "flow-model",
        &lightgbm,
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    );
}

#[test]
fn a_python_function_switches_under_load_without_failing_a_call() {
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pkg = work.path().join("pyflow");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("modelfn.toml"),
        "name = \"pyflow\"\nruntime = \"python3\"\nhandler = \"lambda_function.lambda_handler\"\ntimeout_ms = 20000\n\n[model]\nfile = \"store:py-model\"\ntest_event = \"event.json\"\n",
    )
    .unwrap();
    std::fs::write(pkg.join("event.json"), "{\"x\": 1}").unwrap();
    std::fs::write(
        pkg.join("lambda_function.py"),
        "import os\n\
         MODEL = open(os.environ['MODELFN_MODEL_PATH'], 'rb').read()\n\
         def lambda_handler(event, context):\n\
         \x20   return {'x': event['x'], 'model': len(MODEL)}\n",
    )
    .unwrap();
    let one = work.path().join("one.bin");
    let two = work.path().join("two.bin");
    std::fs::write(&one, b"model one").unwrap();
    std::fs::write(&two, b"model number two").unwrap();
    cli_ok(&s, &["model", "put", "py-model", one.to_str().unwrap()]);
    redeploy(&s, &pkg, 1);
    switch_under_load(&s, &pkg, "pyflow", "py-model", &two, "{\"x\": 1}");
}
