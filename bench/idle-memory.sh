#!/usr/bin/env bash
# Idle memory after scale to zero, beside the same server before any load, for each
# build given (the previous build's binary beside this one's, in one run):
#   start; deploy iris and addfive; RSS "before load" (no call yet)
#   wrk on iris 10 s at 64 connections and 5 s at 1000, 200 addfive calls at 16 at
#   once; RSS "under load"; keep-alive 2 s for both
#   wait until every instance has stopped, then 15 s; RSS "after scale to zero"
#
#   OLD=/path/to/previous/modelfn bash bench/idle-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
measure() { # label binary
  local work port pid
  work=$(mktemp -d); port=18501
  "$2" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  export MODELFN_SERVER="http://127.0.0.1:$port" MODELFN_DATA_DIR="$work/data"
  "$2" deploy examples/iris >/dev/null
  "$2" deploy examples/addfive >/dev/null
  sleep 2
  local before; before=$(rss_mib "$pid")
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$(cat examples/iris/request.json)'" >"$work/iris.lua"
  wrk -t2 -c64 -d10s -s "$work/iris.lua" "$MODELFN_SERVER/v1/functions/iris/invoke" >/dev/null
  wrk -t2 -c1000 -d5s -s "$work/iris.lua" "$MODELFN_SERVER/v1/functions/iris/invoke" >/dev/null
  for _ in $(seq 200); do echo "url = \"$MODELFN_SERVER/v1/functions/addfive/invoke\""; echo 'data = "{\"num\": 3}"'; echo 'output = "/dev/null"'; echo next; done | sed '$d' >"$work/add.cfg"
  curl -s -Z --parallel-max 16 -K "$work/add.cfg" >/dev/null 2>&1
  local peak; peak=$(rss_mib "$pid")
  "$2" config iris --keep-alive 2s >/dev/null
  "$2" config addfive --keep-alive 2s >/dev/null
  for _ in $(seq 120); do
    live=$("$2" list --json | python3 -c "import sys, json; print(sum(f.get('stats', {}).get('instances', 0) for f in json.load(sys.stdin)['functions']))")
    [ "$live" = 0 ] && break
    sleep 1
  done
  sleep 15
  local after; after=$(rss_mib "$pid")
  printf '%-10s %10s %10s %14s %8s\n' "$1" "$before" "$peak" "$after" "$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%+.1f", a - b}')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); RSS in MiB"
printf '%-10s %10s %10s %14s %8s\n' build before_load under_load after_to_zero change
[ -n "${OLD:-}" ] && measure previous "$OLD"
measure this "$BIN"
