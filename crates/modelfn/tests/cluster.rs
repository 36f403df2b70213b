//! Three nodes, one cluster: `--database postgres://` on a real PostgreSQL and
//! `--artifacts s3://` on a real S3-protocol server (moto), with the same admin token and
//! key-encryption key on every node. A deploy on one node serves on the others; an alias
//! moved on one node under load across all three fails no call; a node's death leaves
//! the others serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::events::{depth, submit};
use common::{copy_dir, example, invoke, KeepAlive, Server};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../modelfn-registry/tests/support/moto.rs"]
mod moto;
#[path = "../../modelfn-registry/tests/support/postgres.rs"]
mod postgres;

const ROW: &str = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
const TOKEN: &str = "cluster-admin-token-0123456789abcdef0123456789abcdef";

/// Starts a node of the cluster with its own data directory and a short async lease (a
/// dead node's events run elsewhere within it).
fn node(data: &std::path::Path, database: &str, s3: &moto::Moto) -> Server {
    node_with_kek(data, database, s3, &"ab".repeat(32))
}

fn node_with_kek(data: &std::path::Path, database: &str, s3: &moto::Moto, kek: &str) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let cfg = data.with_extension("toml");
    std::fs::write(&cfg, "async_lease = \"3s\"\nasync_backoff = \"100ms\"\n").unwrap();
    let mut cmd = Command::new(common::bin());
    cmd.env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("MODELFN_ADMIN_TOKEN", TOKEN)
        .env("MODELFN_KEK", kek);
    let args = [
        "--database",
        database,
        "--artifacts",
        "s3://modelfn-cluster/prod",
        "--config",
        cfg.to_str().unwrap(),
    ];
    Server::start_command(data, &args, cmd)
}

/// A small round-robin balancer on loopback: each connection it accepts is relayed to
/// the next node in turn (per connection, as HAProxy or a Kubernetes Service does).
/// Stops accepting when dropped; relays end with their connections.
struct Balancer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Balancer {
    fn start(nodes: &[Server]) -> Balancer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backends: Vec<String> = nodes
            .iter()
            .map(|n| n.url.trim_start_matches("http://").to_string())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut next = 0;
            while !stopped.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let backend =
                    std::net::TcpStream::connect(&backends[next % backends.len()]).unwrap();
                next += 1;
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), backend.try_clone().unwrap()),
                    (backend, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Balancer { addr, stop }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits until every node serves `function` (a deploy reaches the others through the
/// change log, in tens of milliseconds, longer on a loaded machine).
fn served_everywhere(nodes: &[Server], function: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    for n in nodes {
        loop {
            let (ok, out, _) = n.cli(&["describe", function, "--json"]);
            if ok && common::json(&out)["stats"].is_object() {
                break;
            }
            assert!(
                Instant::now() < until,
                "{} never served {function}: {out}",
                n.url
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How long until `url` answers 200 (polled every 10 ms, up to 30 s).
fn time_to_serve(url: &str, since: Instant) -> Duration {
    loop {
        let (code, _, _) = invoke(url, ROW);
        if code == 200 {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(30), "{url}: {code}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// PostgreSQL, moto with the bucket, and three nodes on them.
fn cluster() -> (
    postgres::Postgres,
    moto::Moto,
    tempfile::TempDir,
    Vec<Server>,
) {
    let pg = postgres::start();
    let database = pg.database("modelfn");
    let s3 = moto::start();
    moto::make_bucket(&s3, "modelfn-cluster");
    let tmp = tempfile::tempdir().unwrap();
    let nodes: Vec<Server> = (0..3)
        .map(|i| node(&tmp.path().join(format!("node{i}")), &database, &s3))
        .collect();
    (pg, s3, tmp, nodes)
}

#[test]
fn three_nodes_share_functions_and_aliases() {
    let (pg, s3, tmp, nodes) = cluster();
    for n in &nodes {
        assert_eq!(n.token(), TOKEN, "every node has the given admin token");
    }

    // Deployed on node 0, served by 1 and 2: the change log, woken by NOTIFY.
    let pkg = tmp.path().join("iris");
    copy_dir(&example("iris"), &pkg);
    common::set_description(&pkg, "v1");
    let deployed = Instant::now();
    nodes[0].deploy(&pkg);
    let after_deploy = deployed.elapsed();
    for n in &nodes[1..] {
        let t = time_to_serve(&format!("{}/v1/functions/iris/invoke", n.url), deployed);
        eprintln!(
            "served on {} {:?} after the deploy returned (which took {after_deploy:?})",
            n.url,
            t.saturating_sub(after_deploy)
        );
    }
    // Every node lists it, with the package fetched from the bucket by digest.
    for n in &nodes {
        let (ok, out, err) = n.cli(&["list"]);
        assert!(ok && out.contains("iris"), "{out}{err}");
    }
    let (keys, listing) = moto::keys(&s3, "modelfn-cluster");
    assert_eq!(keys.len(), 1, "{listing}");
    // Membership: every node is up, and has applied the store's generation.
    let status = wait_for_nodes(&nodes[1], |c| {
        c["nodes"].as_array().unwrap().len() == 3
            && c["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["state"] == "up" && n["generation"] == c["generation"])
    });
    assert_eq!(status["shared"], true, "{status}");
    let (ok, table, err) = nodes[0].cli(&["cluster", "status"]);
    assert!(
        ok && table.contains("(this)") && table.contains("shared store"),
        "{table}{err}"
    );

    // Invocation records: each node keeps the calls it served; any node lists them all.
    let name_of = |url: &str| {
        let address = url.trim_start_matches("http://");
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == address)
            .map(|n| n["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    let served_by: std::collections::BTreeSet<String> =
        nodes[1..].iter().map(|n| name_of(&n.url)).collect();
    let (ok, mine, err) = nodes[0].cli(&["invocations", "iris"]);
    assert!(
        ok && mine.contains("no invocations recorded"),
        "{mine}{err}"
    );
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out, err) = nodes[0].cli(&["invocations", "iris", "--all-nodes", "--json"]);
        assert!(ok, "{err}");
        let seen: std::collections::BTreeSet<String> = out
            .lines()
            .map(|l| common::json(l)["node"].as_str().unwrap().to_string())
            .collect();
        if seen == served_by {
            break;
        }
        assert!(
            Instant::now() < until,
            "{seen:?} against {served_by:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, table, err) = nodes[0].cli(&["invocations", "iris", "--all-nodes"]);
    assert!(ok && table.starts_with("NODE"), "{table}{err}");
    let (ok, _, err) = nodes[0].cli(&["invocations", "iris", "--all-nodes", "--follow"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    // A node that hangs (listed as up, never answering) costs the list 5 s and is named.
    let ghost = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    pg.psql(
        "modelfn",
        &format!(
            "INSERT INTO nodes VALUES ('ghost', '{}', '0.1.0', 0, (extract(epoch from now()) * 1000)::bigint, 0, 0)",
            ghost.local_addr().unwrap()
        ),
    );
    let asked = Instant::now();
    let (ok, out, err) = nodes[0].cli(&["invocations", "iris", "--all-nodes"]);
    assert!(ok && out.starts_with("NODE"), "{out}{err}");
    assert!(
        err.contains("did not answer") && err.contains("ghost"),
        "{err}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    drop(ghost);
    let (code, body) = common::curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("{}/v1/functions/iris/invocations?nodes=every", nodes[0].url),
    ]);
    assert!(
        code == 400 && body.contains("every") && body.contains("ask for all or this"),
        "{code} {body}"
    );

    // A second version, and an alias on version 1 made on node 1.
    common::set_description(&pkg, "v2");
    nodes[2].deploy(&pkg);
    let (ok, _, err) = nodes[1].cli(&["alias", "set", "iris", "live", "1"]);
    assert!(ok, "{err}");
    for n in &nodes {
        time_to_serve(
            &format!("{}/v1/functions/iris:live/invoke", n.url),
            Instant::now(),
        );
    }

    // Load on all three nodes while node 2 moves the alias to version 2: no call fails,
    // and once the move has reached a node, that node never runs version 1 again.
    let stop = Arc::new(AtomicBool::new(false));
    // Six connections through the balancer: two on each node.
    let balancer = Balancer::start(&nodes);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (stop, url) = (stop.clone(), balancer.addr.clone());
            std::thread::spawn(move || {
                let mut conn = KeepAlive::connect(&url);
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, version, body) =
                        conn.post("/v1/functions/iris:live/invoke", "", ROW);
                    assert_eq!(status, 200, "{url}: {body}");
                    seen.push(version);
                    // Steady load, not saturation: the two cores are shared with
                    // PostgreSQL, whose stall past the pool's 10 s acquire timeout under
                    // six flat-out clients once failed the alias move itself in CI.
                    std::thread::sleep(Duration::from_micros(300));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let (ok, _, err) = nodes[2].cli(&["alias", "set", "iris", "live", "2"]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for c in clients {
        let seen = c.join().unwrap();
        calls += seen.len();
        let first_new = seen
            .iter()
            .position(|v| v == "2")
            .expect("the move arrived");
        assert!(seen[..first_new].iter().all(|v| v == "1"), "{seen:?}");
        assert!(seen[first_new..].iter().all(|v| v == "2"), "{seen:?}");
    }
    eprintln!("{calls} calls across 3 nodes while the alias moved, none failed");

    // A node dies; the others keep serving, and a deploy still reaches the survivors.
    let mut nodes = nodes;
    let dead = nodes.pop().unwrap();
    let dead_address = dead.url.trim_start_matches("http://").to_string();
    drop(dead);
    common::set_description(&pkg, "v3");
    nodes[0].deploy(&pkg);
    let t = time_to_serve(
        &format!("{}/v1/functions/iris:3/invoke", nodes[1].url),
        Instant::now(),
    );
    eprintln!("version 3 served on the other survivor after {t:?}");
    // The dead node shows as lost once it has missed its records.
    let lost = Instant::now();
    wait_for_nodes(&nodes[0], |c| {
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["address"] == dead_address.as_str() && n["state"] == "lost")
    });
    eprintln!(
        "the dead node was listed as lost {:?} after the kill",
        lost.elapsed()
    );
}

/// Polls `cluster status --json` on `node` until `done` holds (up to 30 s); answers it.
fn wait_for_nodes(node: &Server, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, err) = node.cli(&["cluster", "status", "--json"]);
        assert!(ok, "{err}");
        let status = common::json(&out);
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < until, "{status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A hostile function on a cluster node finds none of the node's shared secrets: not in
/// any environment it can read (its own included), nor the node's files, and it cannot
/// reach PostgreSQL or the bucket from its sandbox.
#[test]
fn a_function_on_a_node_sees_none_of_the_clusters_secrets() {
    let (pg, s3, tmp, nodes) = cluster();
    let hostile = tmp.path().join("hostile");
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/hostile"),
        &hostile,
    );
    nodes[0].deploy(&hostile);
    served_everywhere(&nodes, "hostile");
    let data = &nodes[1].data_dir;
    let paths: Vec<String> = ["admin-token", "node-name", "secrets.kek", "modelfn.db"]
        .iter()
        .map(|f| data.join(f).display().to_string())
        .collect();
    let s3_port: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    // The probe does read environments: its own shows what the sandbox gives it.
    let (_, own) = common::call(
        &nodes[1],
        "hostile",
        serde_json::json!({"action": "probe", "secret": "AWS_ENDPOINT_URL="}),
    );
    assert_ne!(own["secret_seen_in"], serde_json::json!([]), "{own}");
    let kek = "ab".repeat(32);
    for secret in [TOKEN, kek.as_str(), "test-secret", "postgres://modelfn@"] {
        let (_, r) = common::call(
            &nodes[1],
            "hostile",
            serde_json::json!({
                "action": "probe",
                "secret": secret,
                "paths": paths,
                "ports": [pg.port, s3_port],
            }),
        );
        assert_eq!(r["secret_seen_in"], serde_json::json!([]), "{secret}: {r}");
        for (path, outcome) in r["paths"].as_object().unwrap() {
            assert_ne!(outcome, "read", "{path} was readable from a sandbox");
        }
        for port in [pg.port, s3_port] {
            assert_eq!(
                r["connect"][port.to_string()],
                "ConnectionRefusedError",
                "{r}"
            );
        }
        assert_ne!(r["key"][1], "test-secret", "the bucket's credentials: {r}");
    }
    // A node started with another key-encryption key cannot unseal the function's key:
    // the function is not served there (404, as on a node that lacks it), `describe` on
    // that node names MODELFN_KEK as the reason, and no second key is made for it.
    let stray = node_with_kek(
        &tmp.path().join("stray"),
        &pg.url("modelfn"),
        &s3,
        &"cd".repeat(32),
    );
    let (code, _, body) = invoke(&format!("{}/v1/functions/hostile/invoke", stray.url), "{}");
    assert_eq!(code, 404, "{body}");
    let (ok, out, err) = stray.cli(&["describe", "hostile"]);
    assert!(
        ok && out.contains("not served here") && out.contains("MODELFN_KEK"),
        "{out}{err}"
    );
    let (ok, out, err) = nodes[0].cli(&["keys", "list", "--json"]);
    assert!(ok, "{err}");
    let own = out.matches("function:hostile").count();
    assert_eq!(own, 1, "{out}");
}

/// Asynchronous events accepted by any node are one queue: a node killed (`kill -9`) with
/// events running loses none; the others run them once its leases lapse.
#[test]
fn a_dead_nodes_async_events_run_on_the_others() {
    const N: usize = 120;
    let (_pg, _s3, _tmp, mut nodes) = cluster();
    let behaviours =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours");
    nodes[0].deploy(&behaviours);
    served_everywhere(&nodes, "behaviours");
    for n in &nodes {
        let url = format!("{}/v1/functions/behaviours/invoke", n.url);
        let (code, _, body) = invoke(&url, r#"{"action": "echo"}"#);
        assert_eq!(code, 200, "{body}");
    }
    let event = r#"{"action": "sleep", "seconds": 0.2}"#;
    let ids: Vec<String> = (0..N)
        .map(|i| submit(&nodes[i % 3], "behaviours", event))
        .collect();
    // Node 2 dies while events run on it.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let running = depth(&nodes[0], "behaviours")["running"]
            .as_u64()
            .unwrap_or(0);
        if running >= 3 {
            break;
        }
        assert!(Instant::now() < until, "no event ever ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Instant::now();
    drop(nodes.pop());
    let until = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let d = depth(&nodes[0], "behaviours");
        if d["succeeded"].as_u64() == Some(N as u64) || Instant::now() > until {
            break d;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["succeeded"].as_u64(), Some(N as u64), "{done}");
    assert_eq!(
        (done["queued"].as_u64(), done["dead"].as_u64()),
        (Some(0), Some(0)),
        "{done}"
    );
    // Any node answers for any event.
    let st = common::events::admin(&nodes[1], &format!("/v1/async/{}", ids[2]));
    assert_eq!(st["state"], "succeeded", "{st}");
    eprintln!(
        "{N} events, a node killed: all ran within {:?} of the kill, {} more than once",
        killed.elapsed(),
        done["reran"]
    );
}

/// A usage plan's quota of 1,000 requests a day holds over three nodes taking a key's
/// calls round robin: exactly 1,000 answered, the rest refused with 429 on every node.
#[test]
fn a_quota_is_exact_across_three_nodes() {
    let (_pg, _s3, _tmp, nodes) = cluster();
    nodes[0].deploy(&example("iris"));
    assert!(nodes[0].cli(&["url", "create", "iris", "--auth", "key"]).0);
    let (ok, out, err) = nodes[1].cli(&["keys", "create", "tenant", "--json"]);
    assert!(ok, "{err}");
    let key = common::json(&out);
    let id = key["access_key_id"].as_str().unwrap();
    let api_key = key["api_key"].as_str().unwrap();
    let plan = [
        "plans", "create", "daily", "--rate", "100000", "--burst", "100000", "--quota", "1000",
        "--target", "url:iris", "--key", id,
    ];
    let (ok, _, err) = nodes[2].cli(&plan);
    assert!(ok, "{err}");
    let header = format!("x-api-key: {api_key}\r\n");
    // Every node knows the plan before the count starts.
    for n in &nodes {
        let mut conn = KeepAlive::connect(n.url.trim_start_matches("http://"));
        let until = Instant::now() + Duration::from_secs(10);
        while conn.post("/urls/iris/", "", ROW).0 != 403 {
            assert!(Instant::now() < until, "{} never required the key", n.url);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Three connections through the balancer: one on each node.
    let balancer = Balancer::start(&nodes);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, header) = (balancer.addr.clone(), header.clone());
            std::thread::spawn(move || {
                let mut conn = KeepAlive::connect(&addr);
                let mut codes = std::collections::BTreeMap::<u16, usize>::new();
                for _ in 0..500 {
                    let (status, _, body) = conn.post("/urls/iris/", &header, ROW);
                    assert!(status == 200 || status == 429, "{status}: {body}");
                    *codes.entry(status).or_default() += 1;
                }
                codes
            })
        })
        .collect();
    let mut total = std::collections::BTreeMap::<u16, usize>::new();
    for c in clients {
        let codes = c.join().unwrap();
        assert!(codes.get(&200).copied().unwrap_or(0) > 0, "{codes:?}");
        for (k, v) in codes {
            *total.entry(k).or_default() += v;
        }
    }
    assert_eq!(total.get(&200), Some(&1000), "{total:?}");
    assert_eq!(total.get(&429), Some(&500), "{total:?}");
}

/// A stream mapping runs on one node at a time (its lease in PostgreSQL). When that node
/// is killed, another takes the mapping over once the lease lapses, reads the records the
/// dead node held unacknowledged first, and every record is processed.
#[test]
fn a_stream_mapping_runs_on_one_node_and_moves_when_it_dies() {
    const N: u64 = 40;
    let (_pg, _s3, tmp, mut nodes) = cluster();
    let redis = common::redis::Redis::start(tmp.path());
    let fdir = tmp.path().join("stream-consumer");
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/stream-consumer"),
        &fdir,
    );
    let template = std::fs::read_to_string(fdir.join("modelfn.toml.in")).unwrap();
    std::fs::remove_file(fdir.join("modelfn.toml.in")).unwrap();
    let head = template.split("[[streams]]").next().unwrap().to_string();
    // What the function did is pushed to Redis: a kill cannot take it back.
    let manifest = format!(
        "{head}network = \"host\"\n\n[environment]\nSINK = \"127.0.0.1:{port}\"\n\n[[streams]]\nredis = \"redis://127.0.0.1:{port}\"\nstream = \"events\"\nbatch_size = 2\n",
        port = redis.port
    );
    std::fs::write(fdir.join("modelfn.toml"), manifest).unwrap();
    let mut cmds = String::new();
    for seq in 1..=N {
        cmds += &format!("XADD events * seq {seq} sleep 0.2\n");
    }
    redis.cli(&cmds);
    nodes[0].deploy(&fdir);

    let runs_it = |n: &Server| {
        !common::events::admin(n, "/v1/streams")["shards"]
            .as_array()
            .unwrap()
            .is_empty()
    };
    let holders = |nodes: &[Server]| -> Vec<usize> {
        (0..nodes.len()).filter(|i| runs_it(&nodes[*i])).collect()
    };
    let until = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let h = holders(&nodes);
        if h.len() == 1 {
            break h[0];
        }
        assert!(h.len() < 2, "the mapping runs on {h:?}");
        assert!(Instant::now() < until, "no node took the mapping");
        std::thread::sleep(Duration::from_millis(100));
    };
    // It stays on one node.
    for _ in 0..5 {
        assert_eq!(holders(&nodes), vec![holder]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let processed = || -> std::collections::BTreeSet<u64> {
        redis
            .cli("LRANGE processed 0 -1\n")
            .lines()
            .filter(|l| l.starts_with('{'))
            .flat_map(|l| {
                common::json(l)["seqs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(60);
    while processed().len() < 4 {
        assert!(Instant::now() < until, "no batch ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed mid-stream: another node takes over and finishes.
    drop(nodes.remove(holder));
    let killed = Instant::now();
    let until = Instant::now() + Duration::from_secs(120);
    while (processed().len() as u64) < N {
        assert!(
            Instant::now() < until,
            "processed {:?} of {N}",
            processed().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = holders(&nodes);
    assert_eq!(h.len(), 1, "one survivor runs it: {h:?}");
    eprintln!(
        "every record of {N} processed {:?} after the holder's kill",
        killed.elapsed()
    );
}

/// Buckets are the cluster's: an object written through one node is read, listed and
/// deleted through the others (it lives in the S3 bucket under `prefix/buckets/`), a
/// large one streams in as a multipart upload, and a write's trigger runs on any node:
/// `examples/batch-csv`'s predictions, written by the function wherever it ran, are read
/// through a third node.
#[test]
fn buckets_are_shared_by_every_node() {
    let (_pg, s3, tmp, nodes) = cluster();
    nodes[0].deploy(&example("iris"));
    nodes[0].deploy(&example("batch-csv"));
    // A write triggers the functions its node serves: every node must serve them.
    served_everywhere(&nodes, "iris");
    served_everywhere(&nodes, "batch-csv");
    let csv = example("batch-csv").join("flowers.csv");
    let (ok, _, err) = nodes[1].cli(&[
        "object",
        "put",
        "uploads/incoming/flowers.csv",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let until = Instant::now() + Duration::from_secs(60);
    let predictions = loop {
        let (ok, out, _) =
            nodes[2].cli(&["object", "get", "uploads/incoming/flowers.predictions.csv"]);
        if ok {
            break out;
        }
        assert!(
            Instant::now() < until,
            "the trigger's predictions never came"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(
        predictions.starts_with("sl,sw,pl,pw,prediction"),
        "{predictions}"
    );
    assert_eq!(predictions.lines().count(), rows, "{predictions}");

    // A 12 MB object (three upload parts) through node 0, the same bytes through node 2.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let file = tmp.path().join("big.bin");
    std::fs::write(&file, &big).unwrap();
    let (ok, out, err) = nodes[0].cli(&[
        "object",
        "put",
        "data/blobs/big.bin",
        file.to_str().unwrap(),
    ]);
    assert!(
        ok && out.contains("stored data/blobs/big.bin"),
        "{out}{err}"
    );
    let back = tmp.path().join("back.bin");
    let (code, _) = common::curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        "-o",
        back.to_str().unwrap(),
        &format!("{}/v1/buckets/data/blobs/big.bin", nodes[2].url),
    ]);
    assert_eq!(code, 200);
    assert!(
        std::fs::read(&back).unwrap() == big,
        "the bytes came back changed"
    );
    let (ok, out, _) = nodes[1].cli(&["object", "list", "data", "--prefix", "blobs/"]);
    assert!(
        ok && out.contains("blobs/big.bin") && out.contains("12582912"),
        "{out}"
    );
    // In the S3 bucket, under the prefix.
    let (keys, listing) = moto::keys(&s3, "modelfn-cluster");
    assert!(
        keys.iter().any(|k| k == "prod/buckets/data/blobs/big.bin"),
        "{listing}"
    );
    // Deleted through node 1, gone for node 0; a second delete finds nothing.
    let (ok, _, err) = nodes[1].cli(&["object", "delete", "data/blobs/big.bin"]);
    assert!(ok, "{err}");
    let (ok, _, _) = nodes[0].cli(&["object", "get", "data/blobs/big.bin"]);
    assert!(!ok, "deleted, yet still read");
    let (ok, _, _) = nodes[1].cli(&["object", "delete", "data/blobs/big.bin"]);
    assert!(!ok, "a second delete found something");
}
