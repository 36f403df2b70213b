#!/usr/bin/env bash
# What telemetry costs: native iris (S1's POST) at 64 and 1000 connections against two
# servers of the same build, one with metrics, invocation records and traces on (the
# default) and one with `metrics = false`, `records = false` and `traces = false`, warmed up, then measured in turns (on, off, on, off,
# ROUNDS=3 times) so that the machine's drift falls on both. Prints one table; paste it into BENCHMARKS.md.
#
#   bash bench/telemetry.sh            # DURATION=10s by default
#   BIN=/path/to/modelfn bash bench/telemetry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
ulimit -n 65536 2>/dev/null || true
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
start() { # name port "metrics records traces" (true|false each)
  mkdir -p "$work/$1"
  local m r t
  read -r m r t <<<"$3"
  printf 'metrics = %s\nrecords = %s\ntraces = %s\n' "$m" "$r" "$t" >"$work/$1/cfg.toml"
  "$BIN" serve --listen "127.0.0.1:$2" --data-dir "$work/$1/data" --config "$work/$1/cfg.toml" >"$work/$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/readyz" >/dev/null && break; sleep 0.1; done
  MODELFN_SERVER="http://127.0.0.1:$2" MODELFN_DATA_DIR="$work/$1/data" "$BIN" deploy examples/iris >/dev/null
  curl -fs -X POST "http://127.0.0.1:$2/v1/functions/iris/invoke" -d '{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}' >/dev/null
}
# MODES: which servers to compare, of on (everything), notraces (metrics and records),
# records (records only), metrics (metrics only) and off.
MODES=${MODES:-on off}
declare -A settings=([on]="true true true" [notraces]="true true false" [records]="false true false" [metrics]="true false false" [off]="false false false")
declare -A port pid
n=0
for m in $MODES; do
  port[$m]=$((18081 + n))
  start "$m" "${port[$m]}" "${settings[$m]}"
  pid[$m]=${pids[$n]}
  n=$((n + 1))
done
# Warm both up (allocator, page cache, CPU frequency) before anything is measured.
for m in $MODES; do
  wrk -t2 -c64 -d5s -s bench/iris-post.lua "http://127.0.0.1:${port[$m]}/v1/functions/iris/invoke" >/dev/null
done
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk 2 threads, $DURATION per row"
printf '%-9s %6s %6s %10s %9s %9s %7s %11s %11s\n' telemetry conns round req/s p50_ms p99_ms errors cpu_us/req writer_us/req
for c in 64 1000; do
  for round in $(seq "${ROUNDS:-3}"); do
    for m in $MODES; do
      p=${pid[$m]}
      before=$(awk '{print $14 + $15}' /proc/$p/stat)
      writer=$( (grep -l modelfn-records /proc/$p/task/*/comm 2>/dev/null || true) | head -1 | xargs -r dirname)
      wbefore=$( [ -n "$writer" ] && awk '{print $14 + $15}' "$writer/stat" || echo 0)
      line=$(wrk -t2 -c"$c" -d"$DURATION" --timeout 5s -s bench/iris-post.lua "http://127.0.0.1:${port[$m]}/v1/functions/iris/invoke" | grep '^RESULT')
      after=$(awk '{print $14 + $15}' /proc/$p/stat)
      wafter=$( [ -n "$writer" ] && awk '{print $14 + $15}' "$writer/stat" || echo 0)
      read -r _ rps p50 p99 _ errs reqs <<<"$line"
      cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
      wcpu=$(awk -v t=$((wafter - wbefore)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
      printf '%-9s %6s %6s %10s %9s %9s %7s %11s %11s\n' "$m" "$c" "$round" "$rps" "$p50" "$p99" "$errs" "$cpu" "$wcpu"
    done
  done
done
# The counted server's own view of the traffic: what it counted, recorded and dropped.
first=${MODES%% *}
curl -fs -H "Authorization: Bearer $(cat "$work/$first/data/admin-token")" "http://127.0.0.1:${port[$first]}/metrics" \
  | grep -E '^modelfn_function_invocations_total\{.*outcome="success"|^modelfn_records_(written|dropped)_total|^modelfn_traces_kept_total' || true
if [ -d "$work/$first/data/records" ]; then
  du -sh "$work/$first/data/records" | awk '{print "records on disk: " $1}'
fi
