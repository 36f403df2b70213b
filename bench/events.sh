#!/usr/bin/env bash
# Events beyond one request: fan-out and stream sources, on a release build.
#
# 1. Fan-out: `modelfn map` over N items at concurrency 64, beside a peer measured
#    in the same run, the same invocations made synchronously by wrk at 64 connections
#    for as long. Items (requests) per second and server CPU per item (request).
# 2. Stream sources: records pushed into a 4-shard Redis stream (a local redis-server),
#    consumed by a Python function, at batch sizes 1, 10 and 100: records per second
#    from the first record read to the last acknowledged, and server CPU per record.
#
#   bash bench/events.sh          # MAP_ITEMS=20000 STREAM_RECORDS=20000
set -euo pipefail
cd "$(dirname "$0")/.."
MAP_ITEMS=${MAP_ITEMS:-20000}
STREAM_RECORDS=${STREAM_RECORDS:-20000}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
work=$(mktemp -d)
port=18491
rport=18492
trap 'kill "$pid" 2>/dev/null; redis-cli -p $rport shutdown nosave >/dev/null 2>&1; wait 2>/dev/null; rm -rf "$work"' EXIT
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize yes >/dev/null
"$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
export MODELFN_SERVER="http://127.0.0.1:$port" MODELFN_DATA_DIR="$work/data"
token=$(cat "$work/data/admin-token")
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

echo
echo "== fan-out: modelfn map at concurrency 64, beside wrk's synchronous calls at 64 connections"
printf '%-9s %-18s %10s %10s %12s\n' function how items per_s cpu_us/item
for f in iris addfive; do
  "$BIN" deploy "examples/$f" >/dev/null
  body=$(tr -d '\n' <"examples/$f/request.json")
  n=$MAP_ITEMS
  [ "$f" = addfive ] && n=$((MAP_ITEMS / 4))
  for _ in $(seq "$n"); do echo "$body"; done >"$work/items.jsonl"
  "$BIN" map "$f" -i "$work/items.jsonl" -c 64 -o /dev/null 2>/dev/null   # warm
  before=$(cpu); t0=$(date +%s.%N)
  "$BIN" map "$f" -i "$work/items.jsonl" -c 64 -o "$work/out.jsonl" 2>/dev/null
  t1=$(date +%s.%N); after=$(cpu)
  ok=$(grep -c '"ok":true' "$work/out.jsonl" || true)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) < 1 ? 1 : (b - a) }')
  awk -v f="$f" -v n="$ok" -v a="$t0" -v b="$t1" -v t=$((after - before)) -v hz="$hz" 'BEGIN {
    printf "%-9s %-18s %10d %10.0f %12.1f\n", f, "map", n, n / (b - a), t / hz * 1e6 / n }'
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$body'" >"$work/$f.lua"
  cat >>"$work/$f.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d\n", summary.requests, summary.errors.status, summary.duration))
end
LUA
  before=$(cpu)
  line=$(wrk -t2 -c64 -d"${secs}s" -s "$work/$f.lua" "http://127.0.0.1:$port/v1/functions/$f/invoke" | grep '^RESULT')
  after=$(cpu)
  read -r _ reqs errs us <<<"$line"
  awk -v f="$f" -v n=$((reqs - errs)) -v us="$us" -v t=$((after - before)) -v hz="$hz" 'BEGIN {
    printf "%-9s %-18s %10d %10.0f %12.1f\n", f, "wrk (synchronous)", n, n / (us / 1e6), t / hz * 1e6 / n }'
done

echo
echo "== stream sources: $STREAM_RECORDS records in 4 shards, a Python consumer"
printf '%-10s %10s %10s %12s %10s\n' batch_size records per_s cpu_us/rec invocations
for batch in 1 10 100; do
  stream="bench$batch"
  fdir="$work/consumer$batch"
  cp -r crates/modelfn/tests/functions/stream-consumer "$fdir"
  sed "s/@PORT@/$rport/; s/stream = \"orders\"/stream = \"$stream\"/; s/batch_size = 10/batch_size = $batch/; s/name = \"stream-consumer\"/name = \"consumer$batch\"/" \
    "$fdir/modelfn.toml.in" >"$fdir/modelfn.toml"
  rm "$fdir/modelfn.toml.in"
  "$BIN" deploy "$fdir" >/dev/null
  shards() { curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/streams"; }
  until shards | python3 -c "import sys, json; s = [x for x in json.load(sys.stdin)['shards'] if x['function'] == 'consumer$batch']; sys.exit(0 if len(s) == 4 and all(x['connected'] for x in s) else 1)"; do sleep 0.1; done
  before=$(cpu); t0=$(date +%s.%N)
  for i in $(seq 0 $((STREAM_RECORDS - 1))); do echo "XADD $stream:$((i % 4)) * seq $i"; done | redis-cli -p $rport >/dev/null
  deadline=$(( $(date +%s) + 600 ))
  while :; do
    done_n=$(shards | python3 -c "import sys, json; print(sum(s['records'] for s in json.load(sys.stdin)['shards'] if s['function'] == 'consumer$batch'))")
    [ "$done_n" -ge "$STREAM_RECORDS" ] && break
    [ "$(date +%s)" -gt "$deadline" ] && { echo "batch $batch: only $done_n records in 600 s"; exit 1; }
    sleep 0.2
  done
  t1=$(date +%s.%N); after=$(cpu)
  invocations=$(shards | python3 -c "import sys, json; print(sum(s['batches'] for s in json.load(sys.stdin)['shards'] if s['function'] == 'consumer$batch'))")
  awk -v b="$batch" -v n="$STREAM_RECORDS" -v a="$t0" -v c="$t1" -v t=$((after - before)) -v hz="$hz" -v inv="$invocations" 'BEGIN {
    printf "%-10s %10d %10.0f %12.1f %10d\n", b, n, n / (c - a), t / hz * 1e6 / n, inv }'
  "$BIN" delete "consumer$batch" >/dev/null
done
