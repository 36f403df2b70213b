#!/usr/bin/env bash
# Function processes (Lambda Runtime API path), measured on this machine:
#  1. the first answer of a new instance: without snap start (a new version's first start,
#     beside `python3 -c "import sklearn, joblib"` with the same layer on the path), and
#     with it (the version's template already initialized: scaled to zero, then called);
#  2. warm invocation of examples/addfive over HTTP (wrk, 1 connection, keep-alive),
#     beside a direct call of the same handler in Python (the overhead is the difference).
#
#   bash bench/process.sh            # RUNS=5 DURATION=10s PORT=18081 by default
#   BIN=/path/to/modelfn bash bench/process.sh   # measure another build (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
PORT=${PORT:-18081}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -n "${BIN:-}" ]; then bin=$BIN; else cargo build --release -q -p modelfn; bin=./target/release/modelfn; fi
data=$(mktemp -d)
work=$(mktemp -d)
$bin serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export MODELFN_SERVER="http://127.0.0.1:$PORT" MODELFN_DATA_DIR="$data"
$bin layer publish sklearn --requirements examples/layers/sklearn/requirements.txt >/dev/null 2>&1
layer=$(ls -d "$data"/artifacts/code/*/python | head -1)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

py=$(sed 's/\x1b\[[0-9;]*m//g' "$data/server.log" | grep -o 'python=[^ ]*' | head -1 | sed 's/^python=//')
echo "machine: $(nproc) cores; functions run $py ($("$py" --version 2>&1))"
echo
# A copy of an example under a new name, with extra manifest lines; snap start off when
# NOSNAP is set (and then no priming).
copy() { # example name extra
  local d="$work/$2"; cp -r "examples/$1" "$d"
  sed -i "s/^name = .*/name = \"$2\"/" "$d/modelfn.toml"
  if [ -n "${NOSNAP:-}" ]; then sed -i '/^snap_start_prime/d' "$d/modelfn.toml"; echo "snap_start = false" >>"$d/modelfn.toml"; fi
  printf '%b' "$3" >>"$d/modelfn.toml"
  echo "$d"
}
# Answers "ms restored?" for one call: the wall time of its first answer, as curl measures
# it (connection to last byte, without curl's own start).
timed() { # name query body
  local out
  if [ -n "$3" ]; then
    out=$(curl -fs -D - -o /dev/null -w 'TIME %{time_total}\n' -X POST "$MODELFN_SERVER/v1/functions/$1/invoke$2" -H 'Content-Type: application/json' -d "$3" | tr -d '\r')
  else
    out=$(curl -fs -D - -o /dev/null -w 'TIME %{time_total}\n' "$MODELFN_SERVER/v1/functions/$1/invoke$2" | tr -d '\r')
  fi
  echo "$(echo "$out" | awk '/^TIME/ {printf "%.1f", $2 * 1000}') $(echo "$out" | awk -F': ' 'tolower($1)=="x-modelfn-restored" {print "restored"}')"
}
# Waits until the function has no instance left (keep_alive = "1s").
drained() {
  for _ in $(seq 100); do
    curl -fs "$MODELFN_SERVER/v1/functions/$1" -H "Authorization: Bearer $(cat "$data/admin-token" 2>/dev/null)" | grep -q '"instances":0' && return
    sleep 0.2
  done
}

iris=$(cat examples/iris-python/request.json)
echo "first answer of a new instance (ms), $RUNS runs each:"
cold=(); small=()
for i in $(seq "$RUNS"); do
  $bin deploy "$(NOSNAP=1 copy iris-python "iris-python-$i" "")" >/dev/null
  cold+=("$(timed "iris-python-$i" "" "$iris" | cut -d' ' -f1)")
  $bin deploy --no-validate "$(NOSNAP=1 copy addfive "addfive-cold-$i" "")" >/dev/null
  small+=("$(timed "addfive-cold-$i" "?num=1" "" | cut -d' ' -f1)")
done
echo "  without snap start (snap_start = false), each a new version's first start:"
echo "    iris-python:                  ${cold[*]}"
echo "    addfive (no imports):         ${small[*]}"
for fn in iris-python addfive; do
  $bin deploy "$(copy "$fn" "$fn-snap" '\n[scaling]\nkeep_alive = "1s"\n')" >/dev/null
  q=""; body="$iris"; [ "$fn" = addfive ] && { q="?num=1"; body=""; }
  first=$(timed "$fn-snap" "$q" "$body" | cut -d' ' -f1)
  restored=()
  for i in $(seq "$RUNS"); do
    drained "$fn-snap"
    r=$(timed "$fn-snap" "$q" "$body")
    case "$r" in *restored) restored+=("${r% *}") ;; *) restored+=("${r% *}(not-restored)") ;; esac
  done
  echo "  with snap start, $fn: the version's first start (template init + fork) $first;"
  echo "    each later new instance, after scale to zero (restored from the template): ${restored[*]}"
done
imp=()
for i in $(seq "$RUNS"); do
  t=$(date +%s%N); PYTHONPATH="$layer" "$py" -c "import sklearn, joblib"; imp+=("$(ms "$t")")
done
echo "  python -c 'import sklearn, joblib': ${imp[*]}"
echo
$bin deploy examples/addfive >/dev/null
curl -fs -X POST "$MODELFN_SERVER/v1/functions/addfive/invoke" -d '{"num": "1"}' >/dev/null
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"num": "15"}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f\n", summary.requests / (summary.duration / 1e6), latency.mean / 1000, latency:percentile(99) / 1000))
end
LUA
read -r _ rps mean p99 <<<"$(wrk -t1 -c1 -d"$DURATION" -s "$work/post.lua" "$MODELFN_SERVER/v1/functions/addfive/invoke" | grep '^RESULT')"
direct=$(cd examples/addfive && "$py" -c "
import timeit, lambda_function
n = 200000
t = timeit.timeit(lambda: lambda_function.lambda_handler({'num': '15'}, None), number=n)
print('%.4f' % (t / n * 1000))")
echo "warm invocation, addfive (ms):"
echo "  over HTTP through modelfn (wrk, 1 connection): mean $mean, p99 $p99, $rps req/s"
echo "  direct call of the handler in Python:          mean $direct"
