#!/usr/bin/env bash
# Function processes (Lambda Runtime API path), measured on this machine:
#  1. cold start of examples/iris-python to its first answer (a new version each time),
#     beside `python3 -c "import sklearn, joblib"` with the same layer on the path;
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
echo "cold start to first answer, iris-python (ms), $RUNS runs:"
cold=()
for i in $(seq "$RUNS"); do
  d="$work/iris-$i"; cp -r examples/iris-python "$d"
  sed -i "s/^name = .*/name = \"iris-python-$i\"/" "$d/modelfn.toml"
  $bin deploy "$d" >/dev/null
  t=$(date +%s%N)
  curl -fs -X POST "$MODELFN_SERVER/v1/functions/iris-python-$i/invoke" -H 'Content-Type: application/json' -d @examples/iris-python/request.json >/dev/null
  cold+=("$(ms "$t")")
done
echo "  modelfn iris-python:            ${cold[*]}"
# The platform's own share of a cold start: a handler with no imports.
small=()
for i in $(seq "$RUNS"); do
  d="$work/addfive-$i"; cp -r examples/addfive "$d"
  sed -i "s/^name = .*/name = \"addfive-cold-$i\"/" "$d/modelfn.toml"
  $bin deploy --no-validate "$d" >/dev/null
  t=$(date +%s%N)
  curl -fs "$MODELFN_SERVER/v1/functions/addfive-cold-$i/invoke?num=1" >/dev/null
  small+=("$(ms "$t")")
done
echo "  modelfn addfive (no imports):   ${small[*]}"
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
