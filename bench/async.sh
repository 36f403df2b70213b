#!/usr/bin/env bash
# Asynchronous invocations: how many events a second are accepted (202, each stored with a
# synchronous commit) and completed, for a native model (iris) and a Python function
# (addfive), wrk 2 threads at 32 connections on invoke-async for DURATION, then the time
# until the queue is empty. Server CPU is per accepted-and-completed event.
#
#   bash bench/async.sh             # DURATION=10s
#   BIN=/path/to/modelfn bash bench/async.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port=18481
"$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
export MODELFN_SERVER="http://127.0.0.1:$port" MODELFN_DATA_DIR="$work/data"
"$BIN" deploy examples/iris >/dev/null
"$BIN" deploy examples/addfive >/dev/null
token=$(cat "$work/data/admin-token")
waiting() { # function -> queued + running
  curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/async" \
    | python3 -c "import sys, json; d = [f for f in json.load(sys.stdin)['functions'] if f['function'] == '$1']; print(d[0]['queued'] + d[0]['running'] if d else 0)"
}
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk 2 threads, 32 connections, $DURATION"
printf '%-9s %10s %12s %12s %10s %12s\n' function accepted accepted/s completed/s drain_s cpu_us/event
for f in iris addfive; do
  body=$(cat "examples/$f/request.json")
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$body'" >"$work/$f.lua"
  cat >>"$work/$f.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d\n", summary.requests, summary.errors.status))
end
LUA
  before=$(awk '{print $14 + $15}' /proc/$pid/stat)
  t0=$(date +%s.%N)
  line=$(wrk -t2 -c32 -d"$DURATION" -s "$work/$f.lua" "http://127.0.0.1:$port/v1/functions/$f/invoke-async" | grep '^RESULT')
  t1=$(date +%s.%N)
  read -r _ reqs errs <<<"$line"
  while [ "$(waiting "$f")" != 0 ]; do sleep 0.2; done
  t2=$(date +%s.%N)
  after=$(awk '{print $14 + $15}' /proc/$pid/stat)
  accepted=$((reqs - errs))
  awk -v f="$f" -v n="$accepted" -v a="$t0" -v b="$t1" -v c="$t2" -v t=$((after - before)) -v hz="$hz" 'BEGIN {
    printf "%-9s %10d %12.0f %12.0f %10.1f %12.1f\n", f, n, n / (b - a), n / (c - a), c - b, t / hz * 1e6 / n }'
done
curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" | grep -E '^modelfn_async_events\{.*(succeeded|dead)' || true
