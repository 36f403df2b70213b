#!/usr/bin/env bash
# A cluster on this machine: 1, 2 and 3 modelfn nodes sharing a real PostgreSQL and an
# S3-protocol server (moto), behind HAProxy (round robin, keep-alive), measured with wrk
# (2 threads, 64 connections) on native iris. Beside them, in the same run:
#   - the balancer's own ceiling: HAProxy in front of the bare hyper server (a fixed
#     body, bench/tools `ceiling`), the most any backend could get through it here;
#   - one node alone on SQLite without the balancer (no cluster at all);
#   - a keyed request (a function URL with an x-api-key in a usage plan with a quota) on
#     one connection: SQLite (quota counted in memory) against PostgreSQL (one
#     conditional upsert per request), the latency a cluster's exact quota adds.
# cpu_us/req is the CPU of every server process in the path (nodes, HAProxy) over the
# run, divided by the requests served.
#
#   bash bench/cluster.sh          # DURATION=10s by default
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
P=${PORT:-19080}
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; fi
ulimit -n 65536 2>/dev/null || true
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
cargo build --release -q --manifest-path bench/tools/Cargo.toml --target-dir target/bench-tools
tools=target/bench-tools/release
venv=target/s3-venv
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r crates/modelfn-registry/tests/s3-requirements.txt
fi
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort | tail -1)")

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${pgpid:-}" ]; then kill -INT "$pgpid" 2>/dev/null || true; sleep 2; fi
  rm -rf "$work"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }
# PostgreSQL refuses to run as root: under root it runs as nobody.
AS=(); [ "$(id -u)" = 0 ] && AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)

# PostgreSQL, a fresh cluster (as nobody under root), fsync on as a user would run it.
mkdir -p "$work/pg"; [ "$(id -u)" = 0 ] && chown 65534:65534 "$work/pg"
"${AS[@]}" "$pgbin/initdb" -U modelfn -A trust -E UTF8 --locale=C -D "$work/pg/data" >/dev/null
"${AS[@]}" "$pgbin/postgres" -D "$work/pg/data" -p $((P + 50)) -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$work/pg" -c max_connections=200 >"$work/pg.log" 2>&1 &
pgpid=$!
for _ in $(seq 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p $((P + 50)) && break; sleep 0.1; done
"$pgbin/createdb" -h 127.0.0.1 -p $((P + 50)) -U modelfn modelfn
db="postgres://modelfn@127.0.0.1:$((P + 50))/modelfn"

# moto, with the bucket.
"$venv/bin/moto_server" -H 127.0.0.1 -p $((P + 51)) >/dev/null 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$((P + 51))/"
curl -fs -X PUT "http://127.0.0.1:$((P + 51))/bench" >/dev/null
export AWS_ENDPOINT_URL="http://127.0.0.1:$((P + 51))" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  MODELFN_ADMIN_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
  MODELFN_KEK=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

IRIS='{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}'
declare -A NODE_PID
for i in 1 2 3; do
  "$BIN" serve --listen "127.0.0.1:$((P + i))" --data-dir "$work/node$i" \
    --database "$db" --artifacts s3://bench/prod >"$work/node$i.log" 2>&1 &
  NODE_PID[$i]=$!; pids+=($!)
done
for i in 1 2 3; do wait_up "http://127.0.0.1:$((P + i))/readyz"; done
MODELFN_SERVER="http://127.0.0.1:$((P + 1))" MODELFN_DATA_DIR="$work/node1" "$BIN" deploy examples/iris >/dev/null
for i in 1 2 3; do
  for _ in $(seq 100); do
    curl -fs -X POST "http://127.0.0.1:$((P + i))/v1/functions/iris/invoke" -d "$IRIS" >/dev/null && break
    sleep 0.05
  done
done

haproxy_with() { # haproxy_with PORT BACKEND_PORT... ; starts HAProxy, sets HAPID
  local port=$1; shift
  {
    echo "global"; echo "  maxconn 4000"; echo "  nbthread 2"
    echo "defaults"; echo "  mode http"; echo "  timeout connect 5s"; echo "  timeout client 30s"; echo "  timeout server 30s"
    echo "  option http-keep-alive"
    echo "frontend f"; echo "  bind 127.0.0.1:$port"; echo "  default_backend b"
    echo "backend b"; echo "  balance roundrobin"; echo "  http-reuse always"
    local n=0
    for b in "$@"; do n=$((n + 1)); echo "  server s$n 127.0.0.1:$b"; done
  } >"$work/haproxy.cfg"
  haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
  HAPID=$!
  wait_up "http://127.0.0.1:$port/healthz"
}

ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
HZ=$(getconf CLK_TCK)
row() { # row NAME URL LUA CONNS PID...
  local name=$1 url=$2 lua=$3 c=$4; shift 4
  local t=2; [ "$c" -lt 2 ] && t=1
  local before; before=$(ticks "$@")
  local line; line=$(wrk -t"$t" -c"$c" -d"$DURATION" --timeout 5s -s "$lua" "$url" | grep '^RESULT')
  local after; after=$(ticks "$@")
  read -r _ rps p50 p99 max errs reqs <<<"$line"
  local cpu; cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "-" }')
  printf '%-34s %6s %9s %8s %8s %8s %7s %11s\n' "$name" "$c" "$rps" "$p50" "$p99" "$max" "$errs" "$cpu"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); HAProxy $(haproxy -v | head -1 | awk '{print $3}'), PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}'), wrk 2 threads, $DURATION per row"
printf '%-34s %6s %9s %8s %8s %8s %7s %11s\n' target conns req/s p50_ms p99_ms max_ms errors cpu_us/req
LB=$((P + 60))
for k in 1 2 3; do
  backends=(); nodes=()
  for i in $(seq "$k"); do backends+=($((P + i))); nodes+=("${NODE_PID[$i]}"); done
  haproxy_with "$LB" "${backends[@]}"
  row "haproxy -> $k node(s) (PostgreSQL)" "http://127.0.0.1:$LB/v1/functions/iris/invoke" bench/iris-post.lua 64 "$HAPID" "${nodes[@]}"
  kill "$HAPID"; wait "$HAPID" 2>/dev/null || true
done
"$tools/ceiling" "127.0.0.1:$((P + 40))" >/dev/null 2>&1 &
cpid=$!; pids+=($cpid)
wait_up "http://127.0.0.1:$((P + 40))/"
haproxy_with "$LB" $((P + 40))
row "haproxy -> bare hyper (ceiling)" "http://127.0.0.1:$LB/" bench/iris-post.lua 64 "$HAPID" "$cpid"
kill "$HAPID" "$cpid"; wait "$HAPID" "$cpid" 2>/dev/null || true

# One node on SQLite, no balancer: the single-machine baseline.
for i in 2 3; do kill "${NODE_PID[$i]}"; done
"$BIN" serve --listen "127.0.0.1:$((P + 10))" --data-dir "$work/solo" >"$work/solo.log" 2>&1 &
solo=$!; pids+=($solo)
wait_up "http://127.0.0.1:$((P + 10))/readyz"
export MODELFN_SERVER="http://127.0.0.1:$((P + 10))" MODELFN_DATA_DIR="$work/solo"
"$BIN" deploy examples/iris >/dev/null
curl -fs -X POST "$MODELFN_SERVER/v1/functions/iris/invoke" -d "$IRIS" >/dev/null
row "1 node, SQLite, no balancer" "$MODELFN_SERVER/v1/functions/iris/invoke" bench/iris-post.lua 64 "$solo"

# A keyed request with a quota: SQLite (in memory) against PostgreSQL (in the database).
keyed() { # keyed NAME SERVER DATA_DIR PID...
  local name=$1 server=$2 data=$3; shift 3
  MODELFN_SERVER=$server MODELFN_DATA_DIR=$data "$BIN" url create iris --auth key >/dev/null
  local key; key=$(MODELFN_SERVER=$server MODELFN_DATA_DIR=$data "$BIN" keys create "bench-$RANDOM" --json)
  local id api; id=$(echo "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_key_id"])')
  api=$(echo "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  MODELFN_SERVER=$server MODELFN_DATA_DIR=$data "$BIN" plans create "bench-$RANDOM" --rate 1000000 --burst 1000000 \
    --quota 100000000 --target url:iris --key "$id" >/dev/null
  sed "s/^wrk.headers\[\"Content-Type\"\].*/&\nwrk.headers[\"x-api-key\"] = \"$api\"/" bench/iris-post.lua >"$work/keyed.lua"
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$server/urls/iris/" -H "x-api-key: $api" -d "$IRIS")" = 200 ] && break
    sleep 0.05
  done
  row "$name" "$server/urls/iris/" "$work/keyed.lua" 1 "$@"
  row "$name" "$server/urls/iris/" "$work/keyed.lua" 64 "$@"
}
keyed "keyed + quota, SQLite (memory)" "$MODELFN_SERVER" "$work/solo" "$solo"
# shellcheck disable=SC2046
keyed "keyed + quota, PostgreSQL" "http://127.0.0.1:$((P + 1))" "$work/node1" "${NODE_PID[1]}" $(pgrep -P "$pgpid") "$pgpid"
echo "(the PostgreSQL rows' cpu_us/req includes PostgreSQL's own processes)"
