//! Stream sources against a real Redis (Debian's `redis-server`, started here on
//! loopback): with 4 shards, 4 ordered invocations run at once and each shard's records
//! are processed in order; a poison record is isolated by bisection and lands in the
//! dead-letter store while its neighbours succeed; and after a `kill -9`, the records a
//! batch held unacknowledged are given again, so every record is processed at least once,
//! in order per partition key with a parallelization factor of 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::events::admin;
use common::redis::Redis;
use common::{copy_dir, curl, json, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The consumer function with its `[[streams]]` table pointed at `redis`.
fn consumer(dir: &Path, redis: &Redis, table: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/stream-consumer");
    let fdir = dir.join("stream-consumer");
    copy_dir(&src, &fdir);
    let manifest = std::fs::read_to_string(fdir.join("modelfn.toml.in")).unwrap();
    let manifest = manifest.replace("@PORT@", &redis.port.to_string()) + table;
    std::fs::remove_file(fdir.join("modelfn.toml.in")).unwrap();
    std::fs::write(fdir.join("modelfn.toml"), manifest).unwrap();
    fdir
}

/// Waits until the shards' counters add up to `records` processed and `dead` dead.
fn wait_for_shards(s: &Server, records: u64, dead: u64) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let v = admin(s, "/v1/streams");
        let sum = |f: &str| {
            v["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s[f].as_u64().unwrap())
                .sum::<u64>()
        };
        if (sum("records") >= records && sum("dead") >= dead) || Instant::now() > until {
            assert!(sum("records") >= records && sum("dead") >= dead, "{v}");
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The consumer's BATCH lines, in the order they were logged.
fn batches(s: &Server) -> Vec<serde_json::Value> {
    let (ok, out, err) = s.cli(&[
        "logs",
        "stream-consumer",
        "--grep",
        "BATCH ",
        "--limit",
        "100000",
    ]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|l| l.split_once("BATCH ").map(|(_, j)| json(j)))
        .collect()
}

/// The most batches running at once, from their start and end times.
fn most_at_once(batches: &[serde_json::Value]) -> usize {
    let mut edges: Vec<(f64, i32)> = batches
        .iter()
        .flat_map(|b| {
            [
                (b["start"].as_f64().unwrap(), 1),
                (b["end"].as_f64().unwrap(), -1),
            ]
        })
        .collect();
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn four_shards_run_at_once_in_order_and_a_poison_record_is_bisected_out() {
    const PER_SHARD: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    // Records first: the mapping starts at the oldest (trim_horizon).
    let mut cmds = String::new();
    for shard in 0..4 {
        for seq in 1..=PER_SHARD {
            let poison = if shard == 2 && seq == 15 {
                " poison 1"
            } else {
                ""
            };
            cmds += &format!("XADD orders:{shard} * seq {seq} sleep 0.3{poison}\n");
        }
    }
    redis.cli(&cmds);
    let s = Server::start(&dir.path().join("data"));
    s.deploy(&consumer(dir.path(), &redis, ""));
    let shards = wait_for_shards(&s, 4 * PER_SHARD - 1, 1);

    let all = batches(&s);
    let mut per_shard: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for b in &all {
        let seqs = b["seqs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap());
        per_shard
            .entry(b["shard"].as_str().unwrap().to_string())
            .or_default()
            .extend(seqs);
    }
    for (shard, seqs) in &per_shard {
        let want: Vec<u64> = (1..=PER_SHARD)
            .filter(|n| !(shard == "orders:2" && *n == 15))
            .collect();
        assert_eq!(
            seqs, &want,
            "{shard}: in order, each once, all but the poison"
        );
    }
    assert_eq!(per_shard.len(), 4);
    assert_eq!(
        most_at_once(&all),
        4,
        "one batch in flight per shard, all 4 at once"
    );
    // The poison's batch was split down to it: its neighbours ran in smaller batches.
    let poisoned: Vec<Vec<u64>> = all
        .iter()
        .filter(|b| b["shard"] == "orders:2")
        .map(|b| serde_json::from_value(b["seqs"].clone()).unwrap())
        .collect();
    assert!(poisoned.contains(&vec![14]), "{poisoned:?}");
    assert!(poisoned.contains(&vec![16, 17, 18, 19, 20]), "{poisoned:?}");

    // The poison record is in the dead-letter store, as the event it made.
    let dead = admin(&s, "/v1/dlq?function=stream-consumer");
    let events = dead["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{dead}");
    assert_eq!(events[0]["payload"]["Records"][0]["fields"]["seq"], "15");
    assert_eq!(events[0]["attempts"], 3, "1 + max_retries (2)");
    assert!(
        events[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("ValueError: poison record"),
        "{dead}"
    );
    // Lag and counters, per shard.
    let poisoned_shard = shards["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shard"] == "orders:2")
        .unwrap()
        .clone();
    assert_eq!(poisoned_shard["dead"], 1, "{shards}");
    let auth = format!("Authorization: Bearer {}", s.token());
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = curl(&["-H", &auth, &format!("{}/metrics", s.url)]);
        let done = metrics.contains(
            "modelfn_stream_records_total{function=\"stream-consumer\",shard=\"orders:2\"} 29",
        ) && metrics.contains(
            "modelfn_stream_lag_records{function=\"stream-consumer\",shard=\"orders:2\"} 0",
        );
        if done {
            assert!(metrics.contains(
                "modelfn_stream_dead_records_total{function=\"stream-consumer\",shard=\"orders:2\"} 1"
            ));
            break;
        }
        assert!(Instant::now() < until, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, table, err) = s.cli(&["streams", "stream-consumer"]);
    assert!(ok, "{err}");
    let row = table
        .lines()
        .find(|l| l.contains("orders:2"))
        .unwrap_or_default();
    assert!(
        row.contains(" 29 ") && row.contains("reading redis://127.0.0.1:"),
        "{table}"
    );
    // Deleting the function stops its mapping.
    let (ok, _, err) = s.cli(&["delete", "stream-consumer"]);
    assert!(ok, "{err}");
    let until = Instant::now() + Duration::from_secs(10);
    while !admin(&s, "/v1/streams")["shards"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < until, "the mapping outlived its function");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn after_a_kill_unacknowledged_records_are_given_again_in_order_per_key() {
    const N: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let mut cmds = String::new();
    for seq in 1..=N {
        cmds += &format!("XADD events * seq {seq} key k{} sleep 0.3\n", seq % 8);
    }
    redis.cli(&cmds);
    // One shard, two lanes; what the function did is pushed to Redis (a kill of the
    // server cannot lose it, as it can lose log lines not yet written).
    let table = "\n[[streams]]\nredis = \"redis://127.0.0.1:@PORT@\"\nstream = \"events\"\nbatch_size = 3\nparallelization_factor = 2\n"
        .replace("@PORT@", &redis.port.to_string());
    let fdir = consumer(dir.path(), &redis, "");
    let manifest = std::fs::read_to_string(fdir.join("modelfn.toml")).unwrap();
    let head = manifest.split("[[streams]]").next().unwrap().to_string();
    let sink = format!(
        "network = \"host\"\n\n[environment]\nSINK = \"127.0.0.1:{}\"\n",
        redis.port
    );
    std::fs::write(fdir.join("modelfn.toml"), head + &sink + &table).unwrap();
    let processed = || -> Vec<serde_json::Value> {
        redis
            .cli("LRANGE processed 0 -1\n")
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(json)
            .collect()
    };

    let data = dir.path().join("data");
    let s = Server::start(&data);
    s.deploy(&fdir);
    // Killed mid-stream, while a batch is in flight (given, not acknowledged).
    let pending = || -> u64 {
        let out = redis.cli("XPENDING events modelfn:stream-consumer\n");
        out.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(60);
    while processed().len() < 4 || pending() == 0 {
        assert!(Instant::now() < until, "no batch ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    let in_flight = pending();
    assert!(in_flight > 0, "the kill came between batches");
    let before = processed().len();
    let s = Server::start(&data);
    wait_for_shards(&s, 1, 0);
    let until = Instant::now() + Duration::from_secs(120);
    let all = loop {
        let all = processed();
        let seen: std::collections::BTreeSet<u64> = all
            .iter()
            .flat_map(|b| b["seqs"].as_array().unwrap().clone())
            .map(|v| v.as_u64().unwrap())
            .collect();
        if seen.len() as u64 == N || Instant::now() > until {
            assert_eq!(seen.len() as u64, N, "every record processed at least once");
            break all;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Per key, first sightings in order; repeats only of what a kill left in flight
    // (two lanes of one batch of 3).
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut total = 0;
    for b in &all {
        for (k, seq) in b["keys"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["seqs"].as_array().unwrap())
        {
            per_key
                .entry(k.as_str().unwrap().to_string())
                .or_default()
                .push(seq.as_u64().unwrap());
            total += 1;
        }
    }
    for (key, seqs) in &per_key {
        let mut first = Vec::new();
        for s in seqs {
            if !first.contains(s) {
                first.push(*s);
            }
        }
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(first, sorted, "{key}: in order");
    }
    let again = total - N as usize;
    assert!(again <= 6, "{again} records processed twice");
    assert!(most_at_once(&all) <= 2, "two lanes at most");
    println!(
        "{N} records, a kill -9 after {before} batches with {in_flight} records in flight: {again} processed again"
    );
}
