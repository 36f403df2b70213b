#!/usr/bin/env bash
# HTTP throughput of the native iris function (S1's POST) at 1, 64 and 1000 concurrent
# connections, measured with wrk (2 threads, keep-alive), beside GET /healthz of the same
# server (the cost of HTTP alone). Prints one table; paste it into BENCHMARKS.md.
#
#   bash bench/http.sh            # DURATION=10s PORT=18080 by default
#   BIN=/path/to/modelfn bash bench/http.sh   # measure another build (no cargo build)
#
# cpu_us/req is the server's own CPU (utime + stime from /proc/PID/stat) over the run,
# divided by the requests served.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
ulimit -n 65536 2>/dev/null || true
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
data=$(mktemp -d)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
MODELFN_SERVER="http://127.0.0.1:$PORT" MODELFN_DATA_DIR="$data" "$BIN" deploy examples/iris >/dev/null
url="http://127.0.0.1:$PORT/v1/functions/iris/invoke"
curl -fs -X POST "$url" -H 'Content-Type: application/json' -d '{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}' >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk $(wrk -v 2>&1 | head -1 | awk "{print \$2}"), 2 threads (1 at 1 connection), $DURATION per row"
cpu_ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
printf '%-22s %6s %10s %9s %9s %9s %7s %9s %11s\n' target conns req/s p50_ms p99_ms max_ms errors rss_MiB cpu_us/req
for target in iris healthz; do
  for c in 1 64 1000; do
    if [ "$target" = iris ]; then script=bench/iris-post.lua; u=$url; else script=bench/get.lua; u="http://127.0.0.1:$PORT/healthz"; fi
    t=2; [ "$c" -lt 2 ] && t=1
    before=$(cpu_ticks)
    line=$(wrk -t"$t" -c"$c" -d"$DURATION" --timeout 5s -s "$script" "$u" | grep '^RESULT')
    after=$(cpu_ticks)
    rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)
    read -r _ rps p50 p99 max errs reqs <<<"$line"
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "-" }')
    printf '%-22s %6s %10s %9s %9s %9s %7s %9s %11s\n' "$target" "$c" "$rps" "$p50" "$p99" "$max" "$errs" "$rss" "$cpu"
  done
done
